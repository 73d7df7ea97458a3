"""The controller's Prometheus metrics, in a registry of its own (one per controller, so tests never share one).

Names are fixed (dashboards chart them; Flux broke its users by renaming): `reconciler_*` below.
A resource's `reconciler_resource_info` series and an old revision's `reconciler_applied_revision_info`
series are removed when they stop being true. Labels are names and outcomes only: never a value, a
secret or an error text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from reconciler.core.model import ResourceKey
from reconciler.core.plan import ActionKind, Plan

SYNCED, OUT_OF_SYNC = "Synced", "OutOfSync"


class ControllerMetrics:
    """Every series the controller exports, and the small bookkeeping that removes stale ones."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # PROMETHEUS_DISABLE_CREATED_SERIES, whenever prometheus_client was imported
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sync_total = Counter(
            "reconciler_sync", "Syncs of an environment to a commit, by result.", ["env", "result"], registry=r
        )
        self.duration = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Time spent per phase (validate, plan, apply, drift).",
            ["env", "phase"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
        )
        self.drift_resources = Gauge(
            "reconciler_drift_resources",
            "Resources found drifted by the last drift check.",
            ["env", "system", "policy"],
            registry=r,
        )
        self.resource_info = Gauge(
            "reconciler_resource_info",
            "Each managed resource, with whether it matches the applied revision.",
            ["env", "system", "kind", "name", "sync_status"],
            registry=r,
        )
        self.git_requests = Counter(
            "reconciler_git_request", "Requests to the git remote.", ["request_type"], registry=r
        )
        self.applied_revision = Gauge(
            "reconciler_applied_revision_info",
            "The revision applied to each environment.",
            ["env", "revision"],
            registry=r,
        )
        self.leader = Gauge("reconciler_leader", "1 while this replica leads, else 0.", registry=r)
        self.slack_messages = Counter(
            "reconciler_slack_messages", "Slack API calls, by method and result.", ["method", "result"], registry=r
        )
        self.api_requests = Counter(
            "reconciler_api_requests",
            "Requests to the managed systems' APIs, by answer.",
            ["system", "status"],
            registry=r,
        )
        self._lock = threading.Lock()
        self._resources: dict[str, dict[ResourceKey, str]] = {}
        self._revisions: dict[str, str] = {}
        self._drift_labels: dict[str, set[tuple[str, str]]] = {}

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ---- hooks given to others --------------------------------------------------------------

    def git_request(self, request_type: str) -> None:
        self.git_requests.labels(request_type=request_type).inc()

    def slack_message(self, method: str, result: str) -> None:
        """The Slack notifier's callback: one call to `method` (chat.postMessage, ...) ended with `result`."""
        self.slack_messages.labels(method=method, result=result).inc()

    def api_request(self, system: str, status: int | None) -> None:
        """The HTTP clients' listener: one answer (None: no answer, a timeout or a lost connection)."""
        self.api_requests.labels(system=system, status=str(status) if status is not None else "error").inc()

    # ---- state of environments ---------------------------------------------------------------

    def applied(self, env: str, revision: str) -> None:
        with self._lock:
            old = self._revisions.get(env)
            if old is not None and old != revision:
                self.applied_revision.remove(env, old)
            self._revisions[env] = revision
            self.applied_revision.labels(env=env, revision=revision).set(1)

    def resources(self, env: str, plan: Plan, *, applied: bool = False) -> None:
        """Every resource of `env` as `plan` saw it: unchanged ones in sync, the others out of sync (all in sync
        once `applied`; deleted ones gone). Series of resources no longer there are removed."""
        status: dict[ResourceKey, str] = {key: SYNCED for key in plan.unchanged}
        for action in plan.actions:
            if action.kind == ActionKind.DELETE and applied:
                status.pop(action.key, None)
                continue
            status[action.key] = SYNCED if applied else OUT_OF_SYNC
        self.set_resources(env, status)

    def set_resources(self, env: str, status: dict[ResourceKey, str]) -> None:
        with self._lock:
            before = self._resources.get(env, {})
            for key, old in before.items():
                if status.get(key) != old:
                    self.resource_info.remove(env, key.system, key.kind, key.name, old)
            for key, now in status.items():
                self.resource_info.labels(
                    env=env, system=key.system, kind=key.kind, name=key.name, sync_status=now
                ).set(1)
            self._resources[env] = dict(status)

    def drift(self, env: str, counts: Iterable[tuple[str, str, int]]) -> None:
        """The drift check's result for `env`: (system, policy, how many), zero for pairs no longer drifted."""
        with self._lock:
            seen: set[tuple[str, str]] = set()
            for system, policy, count in counts:
                self.drift_resources.labels(env=env, system=system, policy=policy).set(count)
                seen.add((system, policy))
            for system, policy in self._drift_labels.get(env, set()) - seen:
                self.drift_resources.labels(env=env, system=system, policy=policy).set(0)
            self._drift_labels[env] = self._drift_labels.get(env, set()) | seen
