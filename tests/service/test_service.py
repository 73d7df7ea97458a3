"""The reconcile service: typed events in order, each system's observation handed to its apply (a saved plan
gets the fresh plan's), and a cancellation that stops an apply between actions with its records up to date."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, ActionKind, Plan
from reconciler.core.plan_codec import plan_from_json, plan_to_json
from reconciler.errors import ApplyError
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation
from reconciler.secrets import SecretResolver
from reconciler.service import (
    Event,
    EventKind,
    FolderSource,
    ReconcileService,
    check_saved_plan,
    make_plan,
    open_session,
    raise_for,
)
from reconciler.service.applying import prerequisites
from reconciler.spec.loader import Environment
from reconciler.spec.secrets import SecretRef

SYSTEM = "notes"


class NotesProvider:
    """A provider that keeps nothing between calls: what it saw travels in `Observation.payload`."""

    system = SYSTEM
    prune = False

    def __init__(self, names: Sequence[str], applied: list[tuple[str, object]], on_apply: object = None) -> None:
        self.names = names
        self.applied = applied
        self.observed = 0
        self.on_apply = on_apply

    def secret_refs(self) -> list[SecretRef]:
        return []

    def desired(self, fingerprints: object) -> list[DesiredResource]:
        return [DesiredResource(ResourceKey(SYSTEM, "note", name), {"text": name}) for name in self.names]

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation:
        self.observed += 1
        live = {key: LiveResource(key, record.id, {"text": key.name}) for key, record in records.items()}
        return Observation(live, payload=f"observation {self.observed}")

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome:
        self.applied.append((action.key.name, context.observation.payload))
        if callable(self.on_apply):
            self.on_apply(context)
        context.report(f"writing {action.key.name}")
        return ApplyOutcome(f"id-{action.key.name}")

    def close(self) -> None:
        pass


def project(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir(parents=True)
    (tmp_path / "environments" / "dev.yaml").write_text("environment: dev\n")
    return tmp_path


def factories(provider: NotesProvider) -> dict[str, object]:
    def connect(_env: Environment, _resolver: SecretResolver) -> NotesProvider:
        return provider

    return {SYSTEM: connect}


def test_events_are_typed_and_in_order_and_each_apply_gets_its_systems_observation(tmp_path: Path) -> None:
    root = project(tmp_path)
    applied: list[tuple[str, object]] = []
    events: list[Event] = []
    reconcile = ReconcileService(
        FolderSource(root), {}, listeners=[events.append], factories=factories(NotesProvider(["a", "b"], applied))
    )

    report = reconcile.apply("dev")

    assert report.ok and [a.key.name for a in report.done] == ["a", "b"]
    assert applied == [("a", "observation 1"), ("b", "observation 1")]
    assert [(e.kind, e.action.key.name if e.action else None) for e in events] == [
        (EventKind.PLAN_MADE, None),
        (EventKind.ACTION_STARTED, "a"),
        (EventKind.ACTION_PROGRESS, "a"),
        (EventKind.ACTION_DONE, "a"),
        (EventKind.ACTION_STARTED, "b"),
        (EventKind.ACTION_PROGRESS, "b"),
        (EventKind.ACTION_DONE, "b"),
        (EventKind.APPLY_FINISHED, None),
    ]
    assert all(e.environment == "dev" for e in events)


def test_a_saved_plan_is_applied_with_the_observation_of_the_fresh_plan_that_checks_it(tmp_path: Path) -> None:
    root = project(tmp_path)
    applied: list[tuple[str, object]] = []
    making = NotesProvider(["a"], [])
    with open_session(root, "dev", {}, factories=factories(making)) as session:
        saved = plan_from_json(json.loads(json.dumps(plan_to_json(make_plan(session)), default=str)))

    fresh = NotesProvider(["a"], applied)  # a new instance that never ran desired() or observe()
    with open_session(root, "dev", {}, factories=factories(fresh)) as session:
        checked = check_saved_plan(session, saved)
        assert fresh.observed == 1
    report = ReconcileService(FolderSource(root), {}, factories=factories(fresh)).apply("dev", saved=saved)

    assert report.ok and checked.actions == saved.actions
    assert applied == [("a", "observation 2")]  # the check's fresh observation, not the one the plan was made from


def test_a_cancelled_apply_stops_before_the_next_action_and_keeps_the_records_of_those_done(tmp_path: Path) -> None:
    root = project(tmp_path)
    applied: list[tuple[str, object]] = []
    reconcile = ReconcileService(FolderSource(root), {})

    def cancel_after_first(context: ApplyContext) -> None:
        reconcile.cancellation.cancel("shutting down")

    reconcile.factories = factories(NotesProvider(["a", "b", "c"], applied, cancel_after_first))
    report = reconcile.apply("dev")

    assert [name for name, _ in applied] == ["a"]
    assert report.cancelled and report.failed is None and [a.key.name for a in report.done] == ["a"]
    state = json.loads((root / ".reconciler" / "state" / "dev.json").read_text())
    assert list(state["resources"]) == ["notes.note/a"]
    with pytest.raises(ApplyError, match=r"shutting down before create notes\.note/b") as raised:
        raise_for(report)
    assert raised.value.retryable  # a cancelled run is worth running again


class ConcurrentNotes(NotesProvider):
    concurrent_apply = True


def test_independent_actions_run_at_once_up_to_the_parallelism_and_in_order_with_one(tmp_path: Path) -> None:
    root = project(tmp_path)
    together = threading.Barrier(3, timeout=10)  # three at once, or a BrokenBarrierError

    def meet(_context: ApplyContext) -> None:
        together.wait()

    applied: list[tuple[str, object]] = []
    provider = ConcurrentNotes(["a", "b", "c"], applied, meet)
    report = ReconcileService(FolderSource(root), {}, factories=factories(provider), parallelism=3).apply("dev")
    assert report.ok and sorted(name for name, _ in applied) == ["a", "b", "c"]

    in_order: list[tuple[str, object]] = []
    other = project(tmp_path / "sequential")
    plans: list[Event] = []
    one = factories(ConcurrentNotes(["c", "a", "b"], in_order))
    assert ReconcileService(FolderSource(other), {}, [plans.append], factories=one).apply("dev").ok
    made = plans[0].plan
    assert made is not None and [name for name, _ in in_order] == [a.key.name for a in made.actions]  # plan order


def _action(kind: ActionKind, name: str, *uses: str) -> Action:
    key = ResourceKey(SYSTEM, "note", name)
    desired = (
        None
        if kind == ActionKind.DELETE
        else DesiredResource(key, {}, depends_on=tuple(ResourceKey(SYSTEM, "note", use) for use in uses))
    )
    return Action(kind, key, None, (), desired)


def test_prerequisites_keep_dependencies_and_delete_order() -> None:
    actions = (
        _action(ActionKind.CREATE, "source"),
        _action(ActionKind.CREATE, "lake"),
        _action(ActionKind.CREATE, "source-to-lake", "source", "lake"),
        _action(ActionKind.UPDATE, "other"),
        _action(ActionKind.DELETE, "old-connection"),
        _action(ActionKind.DELETE, "old-source"),
        _action(ActionKind.CREATE, "after"),
    )
    plan = Plan("dev", actions, ())
    assert prerequisites(plan, lambda _system: True) == [
        frozenset(),
        frozenset(),
        frozenset({0, 1}),
        frozenset(),
        frozenset({0, 1, 2, 3}),
        frozenset({4}),
        frozenset({5}),
    ]
    assert prerequisites(plan, lambda _system: False)[:4] == [frozenset(), {0}, {0, 1}, {2}]
