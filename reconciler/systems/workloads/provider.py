"""Workloads provider: image versions of dbt and Dagster code locations on Kubernetes, health-gated.

Observe reads each carrier object once (Deployments and ConfigMaps). Apply patches only the
one field it owns, waits for the rollout (observed generation, updated and available
replicas), then asks Dagster whether the code location loaded. A rollout that never becomes
available, or a location that fails to load, fails the apply with the reason and, where the
environment asks for it, rolls back to the previous image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.clients.kube.client import KubeClient, KubeError, KubeNotFound, cluster_client
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, ActionKind
from reconciler.errors import ApiError, CancelledError, SpecError, SpecProblem
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.spec.secrets import SecretRef
from reconciler.systems.workloads import rules
from reconciler.systems.workloads.dagster import DagsterClient, DagsterError, LocationStatus
from reconciler.systems.workloads.loading import WorkloadsSelection
from reconciler.systems.workloads.spec import ConfigMapKey, ContainerEnv, ContainerImage


class WorkloadsProvider:
    """Images in one environment's cluster."""

    system = rules.SYSTEM
    prune = False  # reconciler changes image fields; it never deletes workloads

    def __init__(self, kube: KubeClient, dagster: DagsterClient | None, selection: WorkloadsSelection) -> None:
        self.kube = kube
        self.dagster = dagster
        self.selection = selection
        self._carriers = {ref.key: ref for ref in rules.carriers(selection)}

    def close(self) -> None:
        if self.dagster is not None:
            self.dagster.close()

    def desired(self, fingerprints: Callable[[SecretRef], str]) -> list[DesiredResource]:
        return rules.desired_resources(self.selection)

    # ---- observe ------------------------------------------------------------------------

    def _read(self, ref: rules.CarrierRef, cache: dict[tuple[str, str, str], dict[str, Any]]) -> dict[str, Any]:
        c = ref.carrier
        if isinstance(c, ConfigMapKey):
            ident = ("configmap", ref.namespace, c.config_map)
        else:
            ident = ("deployment", ref.namespace, c.deployment)
        if ident not in cache:
            try:
                if ident[0] == "configmap":
                    cache[ident] = self.kube.get_config_map(ref.namespace, ident[2])
                else:
                    cache[ident] = self.kube.get_deployment(ref.namespace, ident[2])
            except KubeNotFound as exc:
                raise ApiError(
                    self.system,
                    f"{ident[0]} {ref.namespace}/{ident[2]} (carrier of {ref.component}) does not exist; reconciler "
                    "sets image versions but does not create workloads: deploy it first (e.g. with Helm)",
                ) from exc
            except KubeError as exc:
                raise ApiError(self.system, str(exc), status=exc.status, transient=exc.retryable) from exc
        return cache[ident]

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation:
        cache: dict[tuple[str, str, str], dict[str, Any]] = {}
        live: dict[ResourceKey, LiveResource] = {}
        for resource in desired:
            ref = self._carriers[resource.key]
            image = rules.live_image(ref, self._read(ref, cache))
            if image is None:
                raise ApiError(self.system, f"{ref.label}: the container, env var or key is missing")
            live[resource.key] = LiveResource(resource.key, ref.label, {"image": image})
        return Observation(live)

    # ---- apply --------------------------------------------------------------------------

    def _write(self, ref: rules.CarrierRef, image: str) -> None:
        c = ref.carrier
        try:
            if isinstance(c, ContainerImage):
                self.kube.set_container_image(ref.namespace, c.deployment, c.container, image)
            elif isinstance(c, ContainerEnv):
                self.kube.set_container_env(ref.namespace, c.deployment, c.container, c.env, image)
            else:
                assert isinstance(c, ConfigMapKey)
                self.kube.set_config_map_key(ref.namespace, c.config_map, c.key, image)
        except KubeError as exc:
            raise ApiError(self.system, f"{ref.label}: {exc}", status=exc.status, transient=exc.retryable) from exc

    def _rollout(self, ref: rules.CarrierRef, context: ApplyContext) -> str | None:
        """Wait for the Deployment; None when it became available, else why not."""
        if not ref.rolls_out:
            return None
        assert not isinstance(ref.carrier, ConfigMapKey)
        settings = self.selection.settings.rollout
        result = self.kube.wait_for_rollout(
            ref.namespace,
            ref.carrier.deployment,
            timeout_s=settings.timeout_seconds,
            poll_s=settings.poll_seconds,
            on_progress=lambda progress: context.report(str(progress)),
            cancellation=context.cancellation,
        )
        return None if result.ready else result.reason

    def _health(self, ref: rules.CarrierRef, context: ApplyContext) -> str | None:
        """Ask Dagster whether the code location loaded; None when healthy, else the error."""
        if ref.dagster_location is None or self.dagster is None:
            return None
        timeout = self.selection.settings.dagster.timeout_seconds if self.selection.settings.dagster else 120.0
        try:
            self.dagster.reload_location(ref.dagster_location)
            status = self.dagster.wait_until_loaded(
                ref.dagster_location, timeout_s=timeout, poll_s=1.0, cancellation=context.cancellation
            )
        except DagsterError as exc:
            return f"Dagster health check failed: {exc}"
        context.report(f"dagster location {ref.dagster_location}: {describe(status)}")
        return None if status.error is None else f"code location {ref.dagster_location} failed to load: {status.error}"

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome:
        if action.kind != ActionKind.UPDATE or action.desired is None:
            raise ApiError(self.system, f"cannot {action.kind.value} {action.key}: only image updates are supported")
        ref = self._carriers[action.key]
        old = next((c.old for c in action.changes if c.path == ("image",)), None)
        new = str(action.desired.fields["image"])
        self._write(ref, new)
        context.report(f"{ref.label}: {old} -> {new}")
        try:
            failure = self._rollout(ref, context) or self._health(ref, context)
        except CancelledError as exc:
            raise CancelledError(
                f"{ref.label}: {exc} while waiting for {new}; it is written but its rollout and health gate were "
                "not confirmed (a re-run plans no change for it: check the rollout)"
            ) from None
        if failure is None:
            return ApplyOutcome(ref.label)
        if self.selection.settings.rollout.rollback_on_failure and old:
            self._write(ref, str(old))
            context.report(f"rolling back {ref.label} to {old}")
            undo = self._rollout(ref, context)
            note = "rolled back" if undo is None else f"rollback did not become available either: {undo}"
            raise ApiError(self.system, f"{ref.label}: {failure} ({note} to {old})")
        raise ApiError(self.system, f"{ref.label}: {failure} (rollback disabled; {new} left in place)")

    def health(self) -> list[LocationStatus]:
        """Every code location's status (for `reconcile health`)."""
        if self.dagster is None:
            raise ApiError(self.system, "no workloads.dagster.url configured for this environment")
        try:
            return self.dagster.location_statuses()
        except DagsterError as exc:
            raise ApiError("dagster", str(exc), transient=exc.retryable) from exc


def describe(status: LocationStatus) -> str:
    if status.error is not None:
        return f"FAILED ({status.error_class}): {status.error}"
    return f"healthy ({status.load_status})"


def connect(root: Path, env: Environment, resolver: SecretResolver) -> WorkloadsProvider:
    """The provider of an environment with a `workloads:` section: its cluster, and Dagster when set."""
    selection = env.section(rules.SYSTEM, WorkloadsSelection)
    if selection is None:
        raise SpecError([SpecProblem(env.file, None, rules.SYSTEM, "no workloads section")])
    settings = selection.settings
    dagster = DagsterClient(settings.dagster.url) if settings.dagster else None
    return WorkloadsProvider(cluster_client(root, settings.kubernetes, rules.SYSTEM), dagster, selection)
