"""The controller's pure parts with plain data: controller.yaml, the drift policy, re-applying part of a plan."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from reconciler.controller.config import Mode, Policy, parse_config
from reconciler.controller.drift import assess, rule_for, to_enforce
from reconciler.core.model import DesiredResource, LiveResource, ResourceKey
from reconciler.core.plan import ActionKind, Plan, PlanInputs, build_plan, only_actions
from reconciler.errors import PlanError, SpecError

SOURCE = ResourceKey("airbyte", "source", "pg")
DEST = ResourceKey("airbyte", "destination", "lake")
CONN = ResourceKey("airbyte", "connection", "pg-to-lake")
DASH = ResourceKey("superset", "dashboard", "sales")


def test_controller_yaml_reads_the_contract_example() -> None:
    config = parse_config(
        """
environments:
  - name: qa
    mode: apply
  - name: prod
    mode: plan-only
drift:
  default: alert
  rules:
    - system: airbyte
      kind: connection
      policy: enforce
      ignore: ["schedule.basicTiming"]
    - system: superset
      policy: alert
      ignore: ["changed_on"]
slack:
  channel: "#data-platform"
  notifyApplied: true
  maxMessagesPerCycle: 20
""",
        "controller.yaml",
    )
    assert [(e.name, e.mode) for e in config.environments] == [("qa", Mode.APPLY), ("prod", Mode.PLAN_ONLY)]
    assert config.mode_of("prod") == Mode.PLAN_ONLY and config.mode_of("dev") == Mode.APPLY
    assert config.drift.rules[0].policy == Policy.ENFORCE
    assert config.slack.max_messages_per_cycle == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("drift:\n  default: alert\n  rulez: []\n", "controller.yaml:3: drift.rulez: unknown field"),
        ("environments:\n  - name: qa\n    mode: yolo\n", "controller.yaml:3: environments.0.mode:"),
        ("drift:\n  rules:\n    - kind: connection\n", "controller.yaml:3: drift.rules.0.system: Field required"),
        ("environments:\n  - name: qa\n  - name: qa\n", "controller.yaml:3: environments.1.name: environment qa is"),
        ("slack: [\n", "controller.yaml:"),
        ("- qa\n", "controller.yaml:1: expected a mapping"),
    ],
)
def test_a_bad_controller_yaml_names_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_config(text, "controller.yaml")
    assert expected in str(raised.value)


def _plan(live_fields: Mapping[ResourceKey, Mapping[str, object]], desired: list[DesiredResource]) -> Plan:
    live = {key: LiveResource(key, f"id-{key.name}", fields) for key, fields in live_fields.items()}
    return build_plan(PlanInputs("qa", desired, live, {}, frozenset()))


def test_first_matching_rule_wins_by_system_kind_and_environment() -> None:
    config = parse_config(
        """
drift:
  default: ignore
  rules:
    - {system: airbyte, kind: connection, environment: prod, policy: alert}
    - {system: airbyte, kind: connection, policy: enforce}
    - {system: airbyte, policy: alert}
""",
        "c.yaml",
    )
    assert rule_for(config.drift, "prod", CONN).policy == Policy.ALERT  # type: ignore[union-attr]
    assert rule_for(config.drift, "qa", CONN).policy == Policy.ENFORCE  # type: ignore[union-attr]
    assert rule_for(config.drift, "qa", SOURCE).policy == Policy.ALERT  # type: ignore[union-attr]
    assert rule_for(config.drift, "qa", DASH) is None


def test_ignored_fields_go_by_dotted_prefix_and_an_update_left_with_nothing_is_no_drift() -> None:
    config = parse_config(
        "drift:\n  rules:\n    - {system: airbyte, kind: connection, policy: enforce, ignore: [schedule, status]}\n"
        "    - {system: airbyte, kind: source, policy: alert, ignore: [configuration.host]}\n",
        "c.yaml",
    )
    desired = [
        DesiredResource(CONN, {"schedule": {"cron": "0 0 * * * ?"}, "status": "active"}),
        DesiredResource(SOURCE, {"configuration": {"host": "a", "hostname": "b", "port": 5432}}),
        DesiredResource(DEST, {"bucket": "x"}),
    ]
    live: dict[ResourceKey, dict[str, object]] = {
        CONN: {"schedule": {"cron": "0 5 * * * ?"}, "status": "inactive"},  # only ignored fields differ
        SOURCE: {"configuration": {"host": "z", "hostname": "z", "port": 5432}},  # `hostname` is no `host.` child
    }
    plan = _plan(live, desired)
    drift = assess(plan, config.drift)
    assert [(item.key, item.policy, item.action.kind) for item in drift] == [
        (DEST, Policy.ALERT, ActionKind.CREATE),  # gone by hand: a create, never ignorable field by field
        (SOURCE, Policy.ALERT, ActionKind.UPDATE),
    ]
    assert [change.name for change in drift[1].changes] == ["configuration.hostname"]
    assert to_enforce(drift) == []


def test_enforce_lists_only_resources_whose_rule_enforces() -> None:
    config = parse_config(
        "drift:\n  default: enforce\n  rules:\n    - {system: airbyte, kind: source, policy: alert}\n", "c"
    )
    desired = [DesiredResource(SOURCE, {"a": 1}), DesiredResource(DEST, {"a": 1})]
    plan = _plan({SOURCE: {"a": 2}, DEST: {"a": 2}}, desired)
    assert to_enforce(assess(plan, config.drift)) == [DEST]


def test_part_of_a_plan_runs_alone_unless_it_needs_an_id_the_rest_creates() -> None:
    source, dest = DesiredResource(SOURCE, {"a": 1}), DesiredResource(DEST, {"a": 1})
    conn = DesiredResource(CONN, {"a": 1}, depends_on=(SOURCE, DEST))
    updated = _plan({SOURCE: {"a": 2}, DEST: {"a": 1}, CONN: {"a": 2}}, [source, dest, conn])
    part = only_actions(updated, [CONN])
    assert [action.key for action in part.actions] == [CONN]  # the source's update keeps its id

    created = _plan({DEST: {"a": 1}, CONN: {"a": 2}}, [source, dest, conn])
    with pytest.raises(PlanError, match=r"needs airbyte\.source/pg, which the plan also creates"):
        only_actions(created, [CONN])
    assert [a.key for a in only_actions(created, [SOURCE, CONN]).actions] == [SOURCE, CONN]


def test_a_replace_does_not_run_apart_from_the_rest_of_its_plan() -> None:
    source = DesiredResource(SOURCE, {"kind": "postgres"}, replace_on=("kind",))
    dest = DesiredResource(DEST, {"a": 1})
    plan = _plan({SOURCE: {"kind": "mysql"}, DEST: {"a": 2}}, [source, dest])
    assert {(a.key, a.kind) for a in plan.actions} == {(SOURCE, ActionKind.REPLACE), (DEST, ActionKind.UPDATE)}
    with pytest.raises(PlanError, match="cannot apply replace"):
        only_actions(plan, [SOURCE])
    assert len(only_actions(plan, [SOURCE, DEST]).actions) == 2
