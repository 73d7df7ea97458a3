"""The contract between the service and each system's provider: desired, observe, apply.

A provider owns one system (Airbyte, Superset, workloads). It turns its slice of the specs
into core `DesiredResource`s (pure rules live in `core/`), observes the live system through
its client in as few calls as it can (lists, never one GET per resource), and carries out
one planned `Action` at a time, returning what the ownership records must remember.

Providers are stateless between calls: what `observe` saw travels in the `Observation` (its
`payload`), and `apply` works from the action and `ApplyContext.observation`, so the instance
that applies a saved plan may be a new one that never ran `desired()` or `observe()`.

For a plan, a system may start its listings before the specs are loaded (`registry.System.prefetch`
makes a `Prefetch` from the environment file's section alone); its provider, a `PrefetchingProvider`,
takes it for its next observe. Never for an apply: it lists under the environment's write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reconciler.cancellation import Cancellation
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, Refusal
from reconciler.spec.secrets import SecretRef


@dataclass(frozen=True)
class Observation:
    """What a provider saw: live twins of desired or owned resources, and their dependencies."""

    live: Mapping[ResourceKey, LiveResource]
    depends: Mapping[ResourceKey, Sequence[ResourceKey]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """What the provider could not compare, for the plan to say."""
    unmanaged_dependents: Mapping[ResourceKey, tuple[str, ...]] = field(default_factory=dict)
    """Live objects outside the specs and records that depend on a resource, described for people."""
    protected: Mapping[ResourceKey, str] = field(default_factory=dict)
    """Owned resources never deleted, with why."""
    refusals: tuple[Refusal, ...] = ()
    """Why the plan must not go ahead (each unless its override is allowed)."""
    payload: object | None = None
    """The system's own data: what its `apply` needs from this observation (e.g. Superset's listing and the
    bundle it compared), so that no provider keeps anything between `observe` and `apply`."""


@dataclass
class ApplyContext:
    """What an action may need from outside: ids of resources applied so far, secret values."""

    ids: Mapping[ResourceKey, str]
    """Live ids by key: a read-only view that grows as actions finish; the ids of an action's prerequisites are in
    it when it starts and do not change while it runs."""
    secret: Callable[[str], str]
    """Secret value by reference label (e.g. `env:PG_PASSWORD`)."""
    report: Callable[[str], None] = lambda _message: None
    """Progress lines for long actions (rollouts)."""
    observation: Observation = field(default_factory=lambda: Observation({}))
    """The provider's own observation from the plan being applied (the one the plan was checked against)."""
    cancellation: Cancellation = field(default_factory=Cancellation)
    """Set when the run is asked to stop: long waits poll it (`wait`, `raise_if_cancelled`)."""
    remember: Callable[[ResourceKey, Mapping[str, str]], None] = lambda _key, _memo: None
    """Merge entries into a resource's `OwnershipRecord.memo` and record it durably at once, before a risky step
    (e.g. the image to roll back to, before writing a new one): a kill right after loses nothing."""


@dataclass(frozen=True)
class ApplyOutcome:
    """The live id after an action (None after a delete) and the fingerprints now applied."""

    id: str | None
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    memo: Mapping[str, str] | None = None
    """The record's memo from now on (None: keep what it was)."""


class Provider(Protocol):
    """One system."""

    system: str
    prune: bool

    def desired(self, fingerprints: Callable[[SecretRef], str]) -> list[DesiredResource]: ...

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation: ...

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome: ...

    def close(self) -> None: ...


class Prefetch(Protocol):
    """A system's live listings for a plan, started before the specs are loaded (reads only)."""

    def close(self) -> None:
        """Abandon it: nothing waits for its requests, and nothing it found or failed on is reported."""
        ...


@runtime_checkable
class PrefetchingProvider(Protocol):
    """A provider whose next observe can use the listings its system's `prefetch` started."""

    def adopt(self, prefetch: Prefetch) -> None:
        """Use `prefetch` in the next observe (later ones list afresh); one it cannot use is closed."""
        ...
