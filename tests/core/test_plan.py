"""The planner with plain data: order, ownership, pruning, mass-delete guard, JSON round trip."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.core.identity import LiveObject, match_objects
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import ActionKind, Override, PlanInputs, Refusal, build_plan
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


def owned_connections(count: int, extra_sources: int = 0) -> tuple[dict[ResourceKey, LiveResource], list[ResourceKey]]:
    """`count` owned connections and `extra_sources` owned sources, all live."""
    conns = [ResourceKey("airbyte", "connection", f"c{n}") for n in range(count)]
    sources = [ResourceKey("airbyte", "source", f"s{n}") for n in range(extra_sources)]
    return {key: LiveResource(key, f"id-{key.name}", {}) for key in [*conns, *sources]}, conns


def test_every_owned_resource_of_a_kind_going_is_a_mass_delete_even_when_the_total_is_small() -> None:
    live, conns = owned_connections(4, extra_sources=5)
    records = {k: OwnershipRecord(k, v.id) for k, v in live.items()}
    sources = [DesiredResource(k, {}) for k in live if k.kind == "source"]
    with pytest.raises(PlanError, match="would delete all 4 airbyte connections reconciler owns in qa"):
        build_plan(inputs(desired=sources, live=live, records=records))  # 4 of 9 in all: under the ratio
    plan = build_plan(inputs(desired=sources, live=live, records=records, allow_mass_delete=True))
    assert {a.key for a in plan.actions} == set(conns)
    assert any("all 4 airbyte connections" in warning for warning in plan.warnings)


def test_the_ratio_applies_to_each_kind_and_the_only_resource_of_a_kind_needs_the_flag() -> None:
    live, conns = owned_connections(5, extra_sources=10)
    records = {k: OwnershipRecord(k, v.id) for k, v in live.items()}
    keep = [DesiredResource(k, {}) for k in live if k not in conns[:3]]
    with pytest.raises(PlanError, match="3 of the 5 airbyte connections"):
        build_plan(inputs(desired=keep, live=live, records=records))
    two = [DesiredResource(k, {}) for k in live if k not in conns[:2]]
    assert build_plan(inputs(desired=two, live=live, records=records)).count(ActionKind.DELETE) == 2

    only = {DST: LiveResource(DST, "d1", {}), SRC: LiveResource(SRC, "s1", {"name": "pg", "host": "db"})}
    owned = {k: OwnershipRecord(k, v.id) for k, v in only.items()}
    with pytest.raises(PlanError, match="the only airbyte destination reconciler owns"):
        build_plan(inputs(desired=[desired_set()[1]], live=only, records=owned))


def test_an_owned_resource_whose_object_is_gone_is_gone_never_refound_by_name() -> None:
    colleagues = [LiveObject("s9", "pg", {})]  # made by hand after reconciler's s1 was deleted
    gone = {SRC: OwnershipRecord(SRC, "s1")}
    assert match_objects("airbyte", "source", [], gone, colleagues) == {}  # left the specs: forgotten, not pruned
    with pytest.raises(AmbiguousIdentityError, match=r"recorded \(s1\) is gone, and an unowned source has its name"):
        match_objects("airbyte", "source", ["pg"], gone, colleagues)  # wanted: neither taken over nor duplicated
    assert match_objects("airbyte", "source", ["pg"], gone, [LiveObject("s8", "other", {})]) == {}  # created anew
    # adopting by name is only for what has no record, and never what another record claims
    old = ResourceKey("airbyte", "source", "old")
    assert SRC not in match_objects("airbyte", "source", ["pg"], {old: OwnershipRecord(old, "s9")}, colleagues)


def test_a_desired_resource_whose_object_is_gone_is_created_and_its_record_dropped_first() -> None:
    live = {DST: LiveResource(DST, "d1", {"name": "lake"})}
    records = {SRC: OwnershipRecord(SRC, "s1"), DST: OwnershipRecord(DST, "d1"), CONN: OwnershipRecord(CONN, "c1")}
    plan = build_plan(inputs(live=live, records=records))
    assert [(a.kind, a.key) for a in plan.actions] == [(ActionKind.CREATE, SRC), (ActionKind.CREATE, CONN)]
    assert plan.forgotten == (CONN, SRC)


def test_one_live_object_recorded_under_two_keys_is_matched_once_and_never_pruned_through_the_other() -> None:
    twin = ResourceKey("airbyte", "source", "pg-2")  # what the old `import --include-owned` wrote
    listed = [LiveObject("s1", "pg", {})]
    records = {SRC: OwnershipRecord(SRC, "s1"), twin: OwnershipRecord(twin, "s1")}
    assert match_objects("airbyte", "source", ["pg"], records, listed) == {SRC: listed[0]}
    assert match_objects("airbyte", "source", [], records, listed) == {SRC: listed[0]}  # one delete, not two
    with pytest.raises(AmbiguousIdentityError, match=r"airbyte.source/pg, airbyte.source/pg-2 are all recorded"):
        match_objects("airbyte", "source", ["pg", "pg-2"], records, listed)


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


def test_a_delete_that_would_kill_a_connection_reconciler_does_not_manage_is_refused() -> None:
    """Pruning a source or destination makes Airbyte deprecate every connection on it, a colleague's too."""
    left = [resource for resource in replaced_lake().desired if resource.key not in (SRC, CONN)]
    unmanaged = {SRC: ("connection 'hand-made' (c7)",)}
    with pytest.raises(
        PlanError, match=r"refusing to delete: .*airbyte\.source/pg would take down connection 'hand-made'"
    ):
        build_plan(replaced_lake(desired=left, unmanaged_dependents=unmanaged, allow_mass_delete=True))
    pruned = build_plan(replaced_lake(desired=left, allow_mass_delete=True))
    assert (ActionKind.DELETE, SRC) in [(a.kind, a.key) for a in pruned.actions]


def test_deleting_what_unmanaged_objects_use_is_lifted_only_by_its_flag_and_then_named_in_the_plan() -> None:
    left = [resource for resource in replaced_lake().desired if resource.key not in (SRC, CONN)]
    unmanaged = {SRC: ("connection 'hand-made' (c7)",)}
    case = replaced_lake(desired=left, unmanaged_dependents=unmanaged, allow_mass_delete=True)
    with pytest.raises(PlanError, match="pass --allow-broken-dependents to delete anyway"):
        build_plan(case)
    with pytest.raises(PlanError, match="hand-made"):  # another override lifts nothing else
        build_plan(replace(case, allowed=frozenset({Override.SOURCE_SHRINK})))
    allowed = build_plan(replace(case, allowed=frozenset({Override.BROKEN_DEPENDENTS})))
    assert (ActionKind.DELETE, SRC) in [(a.kind, a.key) for a in allowed.actions]
    assert any("airbyte.source/pg would take down connection 'hand-made' (c7)" in w for w in allowed.warnings)


def test_a_protected_resource_is_never_deleted_whatever_the_flags() -> None:
    role = ResourceKey("superset", "role", "Admin")
    live = {role: LiveResource(role, "1", {"name": "Admin"})}
    case = inputs(
        desired=[],
        live=live,
        records={role: OwnershipRecord(role, "1")},
        prune=frozenset({"superset"}),
        protected={role: "a built-in role"},
        allow_mass_delete=True,
        allowed=frozenset(Override),
    )
    plan = build_plan(case)
    assert not plan.actions
    assert plan.warnings == ("superset.role/Admin left the specs; a built-in role: left in place",)


def test_refusals_stop_the_plan_together_unless_each_is_lifted_and_some_never_are() -> None:
    shrink = Refusal("the source yields nothing", Override.SOURCE_SHRINK)
    lockout = Refusal("it would lock itself out")
    with pytest.raises(PlanError) as both:
        build_plan(inputs(refusals=(shrink, lockout)))
    assert "the source yields nothing (pass --allow-source-shrink if this is intended)" in str(both.value)
    assert "it would lock itself out" in str(both.value)
    with pytest.raises(PlanError, match="lock itself out") as one:
        build_plan(inputs(refusals=(shrink, lockout), allowed=frozenset(Override)))
    assert "yields nothing" not in str(one.value)
    plan = build_plan(inputs(refusals=(shrink,), allowed=frozenset({Override.SOURCE_SHRINK})))
    assert plan.warnings == ("allowed (--allow-source-shrink): the source yields nothing",)
