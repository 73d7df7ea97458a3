"""The planner with plain data: order, ownership, pruning, mass-delete guard, JSON round trip."""

from __future__ import annotations

import pytest

from reconciler.core.identity import LiveObject, match_objects
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import ActionKind, PlanInputs, build_plan
from reconciler.core.plan_codec import plan_from_json, plan_to_json
from reconciler.errors import AmbiguousIdentityError, PlanError

SRC = ResourceKey("airbyte", "source", "pg")
DST = ResourceKey("airbyte", "destination", "lake")
CONN = ResourceKey("airbyte", "connection", "pg-to-lake")


def desired_set() -> list[DesiredResource]:
    return [
        DesiredResource(CONN, {"name": "pg-to-lake", "source": "pg"}, depends_on=(SRC, DST)),
        DesiredResource(SRC, {"name": "pg", "host": "db"}),
        DesiredResource(DST, {"name": "lake"}),
    ]


def inputs(**overrides: object) -> PlanInputs:
    base: dict[str, object] = {
        "environment": "qa",
        "desired": desired_set(),
        "live": {},
        "records": {},
        "prune": frozenset({"airbyte"}),
    }
    base.update(overrides)
    return PlanInputs(**base)  # type: ignore[arg-type]


def test_creates_come_in_dependency_order() -> None:
    plan = build_plan(inputs())
    assert [a.kind for a in plan.actions] == [ActionKind.CREATE] * 3
    assert plan.actions[-1].key == CONN


def test_live_and_matching_is_unchanged_and_unowned_match_is_adopted() -> None:
    live = {
        SRC: LiveResource(SRC, "s1", {"name": "pg", "host": "db", "extra": "server default"}),
        DST: LiveResource(DST, "d1", {"name": "lake"}),
        CONN: LiveResource(CONN, "c1", {"name": "pg-to-lake", "source": "pg"}),
    }
    plan = build_plan(inputs(live=live))
    assert not plan.has_changes and len(plan.unchanged) == 3
    assert set(plan.adopted) == {SRC, DST, CONN}


def test_only_owned_resources_are_deleted_and_dependents_first() -> None:
    old_src = ResourceKey("airbyte", "source", "old")
    old_conn = ResourceKey("airbyte", "connection", "old-to-lake")
    live = {
        old_src: LiveResource(old_src, "s9", {}),
        old_conn: LiveResource(old_conn, "c9", {}),
        SRC: LiveResource(SRC, "s1", {"name": "pg", "host": "db"}),
        DST: LiveResource(DST, "d1", {"name": "lake"}),
        CONN: LiveResource(CONN, "c1", {"name": "pg-to-lake", "source": "pg"}),
    }
    records = {k: OwnershipRecord(k, v.id) for k, v in live.items()}
    plan = build_plan(inputs(live=live, records=records, live_depends={old_conn: [old_src, DST]}))
    assert [(a.kind, a.key) for a in plan.actions] == [(ActionKind.DELETE, old_conn), (ActionKind.DELETE, old_src)]

    unpruned = build_plan(inputs(live=live, records=records, prune=frozenset()))
    assert not unpruned.has_changes and len(unpruned.warnings) == 2


def test_a_plan_deleting_most_of_what_is_owned_is_refused_without_the_flag() -> None:
    live = {SRC: LiveResource(SRC, "s1", {}), DST: LiveResource(DST, "d1", {}), CONN: LiveResource(CONN, "c1", {})}
    records = {k: OwnershipRecord(k, v.id) for k, v in live.items()}
    with pytest.raises(PlanError, match="would delete 3 of the 3"):
        build_plan(inputs(desired=[], live=live, records=records))
    plan = build_plan(inputs(desired=[], live=live, records=records, allow_mass_delete=True))
    assert plan.count(ActionKind.DELETE) == 3


def test_changing_a_replace_on_field_plans_a_replace() -> None:
    desired = [DesiredResource(SRC, {"name": "pg", "sourceType": "mysql"}, replace_on=("sourceType",))]
    live = {SRC: LiveResource(SRC, "s1", {"name": "pg", "sourceType": "postgres"})}
    plan = build_plan(inputs(desired=desired, live=live))
    assert plan.actions[0].kind == ActionKind.REPLACE and "sourceType" in plan.actions[0].reason


def test_plan_json_round_trips() -> None:
    plan = build_plan(inputs())
    again = plan_from_json(plan_to_json(plan))
    assert again == plan


def test_identity_by_record_then_by_name_and_never_a_guess() -> None:
    listed = [LiveObject("s1", "pg", {}), LiveObject("s2", "pg-copy", {})]
    matched = match_objects("airbyte", "source", ["pg"], {}, listed)
    assert matched[SRC].id == "s1"
    renamed = match_objects("airbyte", "source", ["pg"], {SRC: OwnershipRecord(SRC, "s2")}, listed)
    assert renamed[SRC].id == "s2"
    with pytest.raises(AmbiguousIdentityError, match="2 live sources are named 'pg'"):
        match_objects("airbyte", "source", ["pg"], {}, [*listed, LiveObject("s3", "pg", {})])


OLD_CONN = ResourceKey("airbyte", "connection", "old-to-lake")


def replaced_lake(**overrides: object) -> PlanInputs:
    """The lake changes type (a replace); pg-to-lake (wanted) and old-to-lake (owned, left the specs) use it."""
    desired = [
        DesiredResource(CONN, {"name": "pg-to-lake", "source": "pg"}, depends_on=(SRC, DST)),
        DesiredResource(SRC, {"name": "pg", "host": "db"}),
        DesiredResource(DST, {"name": "lake", "destinationType": "gcs"}, replace_on=("destinationType",)),
    ]
    live = {
        SRC: LiveResource(SRC, "s1", {"name": "pg", "host": "db"}),
        DST: LiveResource(DST, "d1", {"name": "lake", "destinationType": "s3"}),
        CONN: LiveResource(CONN, "c1", {"name": "pg-to-lake", "source": "pg"}),
        OLD_CONN: LiveResource(OLD_CONN, "c9", {"name": "old-to-lake"}),
    }
    base: dict[str, object] = {
        "desired": desired,
        "live": live,
        "records": {k: OwnershipRecord(k, v.id) for k, v in live.items()},
        "live_depends": {CONN: [SRC, DST], OLD_CONN: [SRC, DST]},
    }
    return inputs(**{**base, **overrides})


def test_a_replace_shows_what_it_takes_down_and_brings_the_wanted_back_after_it() -> None:
    plan = build_plan(replaced_lake())
    assert [(a.kind, a.key) for a in plan.actions] == [
        (ActionKind.DELETE, OLD_CONN),  # pruned anyway: before the replace would kill it
        (ActionKind.DELETE, CONN),
        (ActionKind.REPLACE, DST),
        (ActionKind.CREATE, CONN),  # against the new lake
    ]
    _, delete, _, create = plan.actions
    assert delete.live_id == "c1" and "its destination lake is replaced" in delete.reason
    assert create.desired is not None and "its destination lake is replaced: created again" in create.reason
    assert [c.name for c in create.changes] == ["name", "source"]
    assert CONN not in plan.unchanged and SRC in plan.unchanged
    assert plan_from_json(plan_to_json(plan)) == plan


def test_a_replace_that_would_kill_what_reconciler_may_not_delete_is_refused() -> None:
    unmanaged = {DST: ("connection 'hand-made' (c7)",)}
    with pytest.raises(PlanError, match=r"airbyte\.destination/lake would take down connection 'hand-made' \(c7\)"):
        build_plan(replaced_lake(unmanaged_dependents=unmanaged))
    with pytest.raises(PlanError, match=r"take down airbyte\.connection/old-to-lake, which left the specs but is not"):
        build_plan(replaced_lake(prune=frozenset()))
    untouched = build_plan(replaced_lake(unmanaged_dependents={SRC: ("connection 'x' (c8)",)}))
    assert untouched.count(ActionKind.REPLACE) == 1  # only what depends on the replaced object counts
