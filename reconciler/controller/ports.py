"""The controller's ports: what its loop asks of leadership, alerting and alert state, and the data it hands them.

The loop (`controller/loop.py`) follows git and calls the reconcile service; it never talks to
Kubernetes or Slack itself. A `Leadership` says whether this replica may act (a Lease in the
cluster, or `SoleLeader` alone), a `Notifier` tells people (Slack), and each environment's
`AlertStore` keeps which message stands for which alert, beside its ownership records, so a
restart or a new leader edits the same messages instead of posting new ones (the record and its
stores live in `reconciler/alerts.py`, beside the state, so the service can open them; re-exported here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reconciler.alerts import AlertRecord, AlertStore, MemoryAlertStore
from reconciler.cancellation import Cancellation
from reconciler.core.diff import FieldChange

__all__ = [
    "AlertRecord",
    "AlertStore",
    "AppliedCommit",
    "DriftFinding",
    "Leadership",
    "MemoryAlertStore",
    "NoNotifier",
    "Notifier",
    "PollRelay",
    "SoleLeader",
]


class Leadership(Protocol):
    """Whether this replica may act; the loop starts no action without it."""

    @property
    def identity(self) -> str: ...

    @property
    def leading(self) -> bool: ...

    def acquire(self, stop: threading.Event) -> Cancellation | None:
        """Block until this replica leads, then return a `Cancellation` that is set the moment leadership is
        lost (a renewal missed its deadline); None when `stop` was set first. Renewal runs in the background."""
        ...

    def release(self) -> None:
        """Stop renewing and give leadership up at once (on SIGTERM), so another replica leads without waiting."""
        ...


@runtime_checkable
class PollRelay(Protocol):
    """What a `Leadership` shared by several replicas may add: a push webhook that reached a standby makes the
    leader poll at once. Without it (`SoleLeader`, which always leads) the controller just wakes its own loop."""

    def request_poll(self, reason: str) -> None:
        """Have whichever replica leads poll now (`reason`: the pushed commit, or ""); returns at once."""
        ...

    def on_poll_requested(self, wake: Callable[[str], None]) -> None:
        """Call `wake(request)` whenever this replica, leading, learns of a poll requested elsewhere."""
        ...


class SoleLeader:
    """Leadership for a single replica without a cluster: it always leads, until released."""

    def __init__(self, identity: str = "sole") -> None:
        self._identity = identity
        self._term: Cancellation | None = None

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def leading(self) -> bool:
        return self._term is not None and not self._term.cancelled

    def acquire(self, stop: threading.Event) -> Cancellation | None:
        if stop.is_set():
            return None
        self._term = Cancellation()
        return self._term

    def release(self) -> None:
        if self._term is not None:
            self._term.cancel("leadership released")


@dataclass(frozen=True)
class DriftFinding:
    """One live resource that differs from the applied revision, and what the controller did about it."""

    environment: str
    system: str
    kind: str
    name: str
    action: str
    """What a plan would do to put it back: the `ActionKind` value (create, update, replace, delete)."""
    changes: tuple[FieldChange, ...]
    """Field by field, after the ignore rules; a secret change has `secret=True` and no values worth showing."""
    policy: str
    """`enforce` or `alert` (`ignore` never reaches a notifier)."""
    outcome: str
    """What the controller did, in words: "re-applied", "reported only", "re-apply failed: ..."."""
    revision: str

    @property
    def alert_key(self) -> str:
        """The stable key of its alert: environment, system, kind and name; never a time, a duration or a diff."""
        return f"drift/{self.environment}/{self.system}/{self.kind}/{self.name}"


@dataclass(frozen=True)
class AppliedCommit:
    """A commit applied to one environment, for the short summary a successful apply may post."""

    environment: str
    revision: str
    created: int
    updated: int
    deleted: int
    replaced: int = 0
    mode: str = "apply"
    """`apply`, or `plan-only` (then the counts are what would change and nothing was applied)."""


class Notifier(Protocol):
    """Tells people what the controller found and did; every method is safe to call every cycle (deduplicated)."""

    def drift(self, environment: str, findings: Sequence[DriftFinding]) -> None:
        """The whole drift of `environment` found by one cycle: post or update one message per finding
        (`alert_key`), leave unchanged ones alone, mark resolved (with a thread reply) open ones not found."""
        ...

    def applied(self, commit: AppliedCommit) -> None:
        """A commit applied (or planned, in plan-only); resolves an open apply failure of that environment."""
        ...

    def apply_failed(self, environment: str, revision: str, error: str) -> None:
        """Applying `revision` to `environment` failed (one message per environment, updated while it lasts)."""
        ...

    def invalid_commit(self, environment: str, revision: str, problems: Sequence[str]) -> None:
        """`revision` does not validate for `environment` (`problems` are `file:line: field: message` lines);
        the last good revision stays applied."""
        ...


class NoNotifier:
    """A notifier that tells no one (no Slack configured)."""

    def drift(self, environment: str, findings: Sequence[DriftFinding]) -> None:
        return None

    def applied(self, commit: AppliedCommit) -> None:
        return None

    def apply_failed(self, environment: str, revision: str, error: str) -> None:
        return None

    def invalid_commit(self, environment: str, revision: str, problems: Sequence[str]) -> None:
        return None
