"""Core: desired + live + ownership records -> a `Plan`, a frozen, serialisable list of actions.

Building a plan reads nothing and writes nothing; the service executes it. Actions come in
dependency order (what others depend on first) and deletes come last in reverse order, except
what a replace takes down with it: deleted just before the replace, created again after it. Only
resources reconciler owns (it has a record of them) are ever deleted, and only where the
environment enables pruning for that system.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from reconciler.core.diff import FieldChange, diff_resource
from reconciler.core.model import (
    DesiredResource,
    LiveResource,
    OwnershipRecord,
    ResourceKey,
    digest_of,
    item_order,
    key_order,
)
from reconciler.errors import PlanError


class Override(StrEnum):
    """A refusal a person may lift for one plan, with the CLI flag `--allow-<value>`."""

    BROKEN_DEPENDENTS = "broken-dependents"
    """Delete what live objects outside the specs still use (they are left broken, or go with it)."""
    SOURCE_SHRINK = "source-shrink"
    """Replicate from a source that yields nothing, or far less than the target holds from it."""

    @property
    def flag(self) -> str:
        return f"--allow-{self.value}"


@dataclass(frozen=True)
class Refusal:
    """Why a system refuses a plan; `override` lifts it (with a warning instead), None: nothing does."""

    message: str
    override: Override | None = None


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True)
class Action:
    """One change to one resource."""

    kind: ActionKind
    key: ResourceKey
    live_id: str | None
    changes: tuple[FieldChange, ...]
    desired: DesiredResource | None
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    """What apply will do in one environment, and what it observed to decide it."""

    environment: str
    actions: tuple[Action, ...]
    unchanged: tuple[ResourceKey, ...]
    warnings: tuple[str, ...] = ()
    live_ids: Mapping[ResourceKey, str] = field(default_factory=dict)
    """Ids of every live resource observed, for actions that reference unchanged ones."""
    live_digests: Mapping[ResourceKey, str] = field(default_factory=dict)
    """What each observed resource looked like, so a stale saved plan can say which one changed (a plan made
    here computes them when first read, `LiveDigests`: only a saved or checked plan reads them)."""
    adopted: tuple[ResourceKey, ...] = ()
    """Desired resources found by name with no record: apply records them (no write)."""
    forgotten: tuple[ResourceKey, ...] = ()
    """Owned resources already gone from the live system: their records are dropped first on apply
    (a desired one is created anew, and recorded again once it exists)."""
    systems: tuple[str, ...] = field(default=())

    @cached_property
    def observed_digest(self) -> str:
        """One hash over everything observed that the plan depends on: a saved plan is refused when it differs."""
        return observed_digest(self.live_digests)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def count(self, kind: ActionKind) -> int:
        return sum(1 for action in self.actions if action.kind == kind)

    def summary(self) -> dict[str, int]:
        counts = {kind.value: self.count(kind) for kind in ActionKind}
        counts["unchanged"] = len(self.unchanged)
        return counts


def observed_digest(live_digests: Mapping[ResourceKey, str]) -> str:
    """One hash over everything observed that the plan depends on (each live resource's digest, by key)."""
    return digest_of(sorted((str(key), digest) for key, digest in live_digests.items()))


class LiveDigests(Mapping[ResourceKey, str]):
    """Each observed resource's digest, by key in key order, computed when first read: a plan that is neither
    saved nor checked against a saved one (every `reconcile plan` without `--out`, every drift check) never
    hashes its 10,000 observed resources."""

    def __init__(self, live: Mapping[ResourceKey, LiveResource]) -> None:
        self._live = dict(live)  # as observed for this plan, whatever later becomes of the caller's mapping
        self._digests: dict[ResourceKey, str] | None = None

    def _computed(self) -> dict[ResourceKey, str]:
        if self._digests is None:
            self._digests = {key: resource.digest for key, resource in sorted(self._live.items(), key=item_order)}
        return self._digests

    def __getitem__(self, key: ResourceKey) -> str:
        return self._computed()[key]

    def __iter__(self) -> Iterator[ResourceKey]:
        return iter(self._computed())

    def __len__(self) -> int:
        return len(self._live)


def changed_since(saved: Plan, current: Plan) -> list[ResourceKey]:
    """Resources observed differently (changed, appeared or vanished) by two plans of one environment."""
    keys = set(saved.live_digests) | set(current.live_digests)
    return sorted(key for key in keys if saved.live_digests.get(key) != current.live_digests.get(key))


def dependency_order(resources: Iterable[DesiredResource]) -> list[DesiredResource]:
    """Topological order (dependencies first), ties broken by key so plans are stable."""
    by_key = {resource.key: resource for resource in resources}
    ordered: list[DesiredResource] = []
    state: dict[ResourceKey, str] = {}

    def visit(key: ResourceKey, trail: tuple[ResourceKey, ...]) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            cycle = " -> ".join(str(k) for k in (*trail, key))
            raise PlanError(f"dependency cycle: {cycle}")
        state[key] = "visiting"
        for dependency in sorted(by_key[key].depends_on):
            if dependency in by_key:
                visit(dependency, (*trail, key))
        state[key] = "done"
        ordered.append(by_key[key])

    for key in sorted(by_key, key=_kind_rank):
        visit(key, ())
    return ordered


def _kind_rank(key: ResourceKey) -> tuple[str, str, str]:
    return (key.system, key.kind, key.name)


def _delete_order(
    keys: Iterable[ResourceKey], depends: Mapping[ResourceKey, Sequence[ResourceKey]]
) -> list[ResourceKey]:
    """Dependents before what they depend on; unknown dependencies by a stable kind order."""
    remaining = sorted(keys)
    ordered: list[ResourceKey] = []
    while remaining:
        progress = False
        for key in list(remaining):
            blocked = any(key in depends.get(other, ()) for other in remaining if other != key)
            if not blocked:
                ordered.append(key)
                remaining.remove(key)
                progress = True
        if not progress:
            ordered += remaining
            break
    return ordered


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan is built from."""

    environment: str
    desired: Sequence[DesiredResource]
    live: Mapping[ResourceKey, LiveResource]
    records: Mapping[ResourceKey, OwnershipRecord]
    prune: frozenset[str]
    """Systems in which owned resources that left the specs are deleted."""
    live_depends: Mapping[ResourceKey, Sequence[ResourceKey]] = field(default_factory=dict)
    """What each live-only resource depends on, for the order of deletes."""
    mass_delete_ratio: float = 0.5
    allow_mass_delete: bool = False
    systems: tuple[str, ...] = ()
    observe_warnings: tuple[str, ...] = ()
    """What the providers could not compare; shown first among the plan's warnings."""
    unmanaged_dependents: Mapping[ResourceKey, tuple[str, ...]] = field(default_factory=dict)
    """Live objects reconciler neither wants nor owns that depend on a resource (a replace would kill them)."""
    protected: Mapping[ResourceKey, str] = field(default_factory=dict)
    """Owned resources never deleted, with why (Superset's built-in roles): left in place when they leave the specs."""
    refusals: tuple[Refusal, ...] = ()
    """What the providers refuse, each unless its override is allowed."""
    allowed: frozenset[Override] = frozenset()


def _action_for(desired: DesiredResource, live: LiveResource | None, record: OwnershipRecord | None) -> Action | None:
    changes = tuple(diff_resource(desired, live, record))
    if live is None:
        return Action(ActionKind.CREATE, desired.key, None, changes, desired, "not found in the live system")
    if not changes:
        return None
    forced = [change.name for change in changes if change.path and change.path[0] in desired.replace_on]
    if forced:
        reason = f"{', '.join(forced)} cannot change in place"
        return Action(ActionKind.REPLACE, desired.key, live.id, changes, desired, reason)
    return Action(ActionKind.UPDATE, desired.key, live.id, changes, desired, "differs from the spec")


def _replace_cascade(
    actions: Sequence[Action], unchanged: Sequence[ResourceKey], inputs: PlanInputs
) -> tuple[list[Action], list[ResourceKey]]:
    """What each replace takes down with it, shown in the plan and brought back in the same apply.

    A replace deletes the live object before creating the new one, and the live system takes down
    what depends on it (Airbyte deprecates the connections of a deleted source or destination).
    So each live dependent is deleted just before the first replace it depends on and, when the
    specs want it, created again once its new ends exist. A dependent that reconciler does not
    manage, or owns but may not delete (pruning off), makes the plan refuse: apply would kill it.
    """
    replaced = [action.key for action in actions if action.kind == ActionKind.REPLACE]
    desired = {resource.key: resource for resource in inputs.desired}
    pruned = {action.key for action in actions if action.kind == ActionKind.DELETE}
    dependents: dict[ResourceKey, list[ResourceKey]] = {}
    for key, uses in sorted(inputs.live_depends.items(), key=item_order):
        hit = [target for target in replaced if target in uses]
        if hit and key in inputs.live and key not in replaced:
            dependents[key] = hit
    blocked = [
        f"{target} would take down {what}"
        for target in replaced
        for what in inputs.unmanaged_dependents.get(target, ())
    ]
    blocked += [
        f"{', '.join(map(str, targets))} would take down {key}, which left the specs but is not pruned"
        for key, targets in dependents.items()
        if key not in desired and key not in pruned
    ]
    if blocked:
        raise PlanError(
            "refusing to replace: a replace deletes the live object, and the live system then deletes what "
            f"depends on it: {'; '.join(blocked)}. Re-point, delete or adopt those first"
        )
    if not dependents:
        return list(actions), list(unchanged)

    def because(key: ResourceKey) -> str:
        return ", ".join(f"its {target.kind} {target.name} is replaced" for target in dependents[key])

    ordered: list[Action] = []
    taken_down: set[ResourceKey] = set()
    for action in actions:
        if action.key in dependents:
            continue  # a pruned dependent moves before its replace; a wanted one is recreated below
        for key, targets in dependents.items():
            if action.key in targets and key not in taken_down:  # the first replace that takes it down
                taken_down.add(key)
                pruned_delete = next((a for a in actions if a.key == key and a.kind == ActionKind.DELETE), None)
                reason = f"{because(key)}: deleted first, then created again against the new one"
                ordered.append(pruned_delete or Action(ActionKind.DELETE, key, inputs.live[key].id, (), None, reason))
        ordered.append(action)
    anchors: dict[ResourceKey, list[Action]] = {}
    for key in (key for key in dependents if key in desired):
        needs = {*desired[key].depends_on, *dependents[key]}
        anchor = [action.key for action in ordered if action.key in needs][-1]
        changes = tuple(diff_resource(desired[key], None, inputs.records.get(key)))
        reason = f"{because(key)}: created again against the new one"
        anchors.setdefault(anchor, []).append(Action(ActionKind.CREATE, key, None, changes, desired[key], reason))
    recreated = [step for action in ordered for step in (action, *anchors.get(action.key, ()))]
    return recreated, [key for key in unchanged if key not in dependents]


def build_plan(inputs: PlanInputs) -> Plan:
    """Compare and order. Raises `PlanError` for a mass delete without `allow_mass_delete`, for a replace or a
    delete that would take down what reconciler may not delete (a delete: unless `BROKEN_DEPENDENTS` is allowed),
    and for a provider's refusal its override does not lift."""
    desired_keys = {resource.key for resource in inputs.desired}
    actions: list[Action] = []
    unchanged: list[ResourceKey] = []
    for resource in dependency_order(inputs.desired):
        action = _action_for(resource, inputs.live.get(resource.key), inputs.records.get(resource.key))
        if action is None:
            unchanged.append(resource.key)
        else:
            actions.append(action)

    warnings: list[str] = list(inputs.observe_warnings)
    orphans = [key for key in inputs.records if key not in desired_keys]
    deletable = [
        key for key in orphans if key in inputs.live and key.system in inputs.prune and key not in inputs.protected
    ]
    for key in sorted(orphans):
        if key in inputs.live and key in inputs.protected:
            warnings.append(f"{key} left the specs; {inputs.protected[key]}: left in place")
        elif key in inputs.live and key.system not in inputs.prune:
            warnings.append(f"{key} left the specs but pruning is off for {key.system}: left in place")
    killed = [f"{key} would take down {what}" for key in deletable for what in inputs.unmanaged_dependents.get(key, ())]
    if killed and Override.BROKEN_DEPENDENTS in inputs.allowed:
        warnings += [f"broken dependents allowed: {line}" for line in killed]
    elif killed:
        raise PlanError(
            "refusing to delete: live objects reconciler does not manage depend on it, and the live system then "
            f"deletes them or leaves them broken: {'; '.join(killed)}. Re-point, delete or adopt those first "
            f"(or pass {Override.BROKEN_DEPENDENTS.flag} to delete anyway)"
        )
    warnings += _refusals(inputs)
    depends: dict[ResourceKey, Sequence[ResourceKey]] = dict(inputs.live_depends)
    for key in _delete_order(deletable, depends):
        live = inputs.live[key]
        actions.append(Action(ActionKind.DELETE, key, live.id, (), None, "owned, and no longer in the specs"))

    owned = [key for key in inputs.records if key in inputs.live]
    mass = mass_deletes(deletable, owned, inputs.mass_delete_ratio)
    if mass:
        if not inputs.allow_mass_delete:
            raise PlanError(
                f"the plan would delete {'; '.join(mass)} in {inputs.environment}; "
                "refusing (pass --allow-mass-delete if this is intended)"
            )
        warnings.append(f"mass delete allowed: {'; '.join(mass)}")

    actions, unchanged = _replace_cascade(actions, unchanged, inputs)
    adopted = tuple(
        sorted((key for key in desired_keys if key in inputs.live and key not in inputs.records), key=key_order)
    )
    # desired ones among the forgotten are created anew
    forgotten = tuple(sorted((key for key in inputs.records if key not in inputs.live), key=key_order))
    return Plan(
        environment=inputs.environment,
        actions=tuple(actions),
        unchanged=tuple(unchanged),
        warnings=tuple(warnings),
        live_ids={key: resource.id for key, resource in sorted(inputs.live.items(), key=item_order)},
        live_digests=LiveDigests(inputs.live),
        adopted=adopted,
        forgotten=forgotten,
        systems=inputs.systems,
    )


def _refusals(inputs: PlanInputs) -> list[str]:
    """Warnings for the refusals allowed; `PlanError` naming every other one, with the flag that lifts it."""
    refused = [r for r in inputs.refusals if r.override is None or r.override not in inputs.allowed]
    if refused:
        lines = [r.message + (f" (pass {r.override.flag} if this is intended)" if r.override else "") for r in refused]
        raise PlanError(f"refusing to plan {inputs.environment}: " + "; ".join(lines))
    return [f"allowed ({r.override.flag}): {r.message}" for r in inputs.refusals if r.override is not None]


def mass_deletes(deletable: Sequence[ResourceKey], owned: Sequence[ResourceKey], ratio: float) -> list[str]:
    """Why these deletes are a mass delete (empty: they are not).

    More than `ratio` of what reconciler owns, in all or of one kind (a single delete never
    counts there), or every owned resource of a kind, even the only one: `connections: {}`
    must not empty a kind unasked however much else is owned.
    """
    reasons: list[str] = []
    if len(deletable) > 1 and len(deletable) / max(len(owned), 1) > ratio:
        reasons.append(f"{len(deletable)} of the {len(owned)} resources reconciler owns")
    kinds = Counter((key.system, key.kind) for key in owned)
    for (system, kind), count in sorted(Counter((key.system, key.kind) for key in deletable).items()):
        of_kind = kinds[(system, kind)]
        if count >= of_kind:
            what = f"all {count} {system} {kind}s" if count > 1 else f"the only {system} {kind}"
            reasons.append(f"{what} reconciler owns")
        elif count > 1 and count / of_kind > ratio:
            reasons.append(f"{count} of the {of_kind} {system} {kind}s reconciler owns")
    return reasons


def changed_fields(action: Action) -> dict[str, Any]:
    """The desired values of the plain fields an update changes, by top-level field."""
    if action.desired is None:
        return {}
    tops = {change.path[0] for change in action.changes if change.path and not change.secret}
    return {name: action.desired.fields[name] for name in tops if name in action.desired.fields}


def only_actions(plan: Plan, keys: Iterable[ResourceKey]) -> Plan:
    """The part of `plan` that acts on `keys` (a controller re-applying only drifted resources), or `PlanError`
    saying why that part cannot run alone.

    Refused when a chosen action needs an action left out (it depends on a resource the plan also
    creates, replaces or deletes: its id is not there yet, or goes; an update keeps the id), or when a
    replace is chosen while the plan holds other actions: a replace takes down what depends on it,
    and the plan brings those back in actions of their own.
    """
    chosen = frozenset(keys)
    kept = tuple(action for action in plan.actions if action.key in chosen)
    left_out = {action.key for action in plan.actions if action.key not in chosen}
    moving = {action.key for action in plan.actions if action.key in left_out and action.kind != ActionKind.UPDATE}
    for action in kept:
        needs = sorted(set(action.desired.depends_on if action.desired is not None else ()) & moving)
        if needs:
            raise PlanError(
                f"cannot apply {action.kind.value} {action.key} alone: it needs {', '.join(map(str, needs))}, "
                "which the plan also creates, replaces or deletes"
            )
        if action.kind == ActionKind.REPLACE and left_out:
            raise PlanError(
                f"cannot apply replace {action.key} alone: a replace takes down what depends on it, and the plan "
                "holds other actions; apply the whole plan"
            )
    return replace(
        plan,
        actions=kept,
        adopted=tuple(key for key in plan.adopted if key in chosen),
        forgotten=tuple(key for key in plan.forgotten if key in chosen),
    )
