"""Drift over several intervals, against the Airbyte stand-in edited by hand: enforce puts back only what its rules
cover, alert reports every cycle and writes nothing, ignore (a policy or field paths) stays silent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.sandbox.launch import StandIns
from tests.controller.conftest import GitRepo, RunningController, wait_for

HAND_SCHEDULE = {"schedule": {"scheduleType": "cron", "cronExpression": "0 0 5 * * ?"}}
"""Someone gives the manual QA connection mailchimp-to-lake a schedule in the UI."""


def live(standins: StandIns, env: str, kind: str) -> dict[str, dict[str, Any]]:
    return {str(item["name"]): item for item in standins.airbyte[env].stored(kind) if not item.get("tombstone")}


def hand_edit(standins: StandIns, kind: str, name: str, changes: dict[str, Any]) -> None:
    item = live(standins, "qa", kind)[name]
    id_field = {"connections": "connectionId", "sources": "sourceId", "destinations": "destinationId"}[kind]
    standins.airbyte["qa"].edit(kind, str(item[id_field]), changes)


def cycles_after(controller: RunningController, count: int) -> list[tuple[Any, ...]]:
    """Wait for `count` more drift checks of qa; their findings."""
    seen = len(controller.drift_calls("qa"))
    wait_for(lambda: len(controller.drift_calls("qa")) >= seen + count, f"{count} drift checks")
    return controller.drift_calls("qa")[seen : seen + count]


def settled(controller: RunningController, repo: GitRepo) -> None:
    first = repo.git("rev-parse", "HEAD")
    wait_for(lambda: controller.applied("qa", first), "the first sync")
    cycles_after(controller, 1)


ENFORCE_CONNECTIONS = """
drift:
  default: alert
  rules:
    - system: airbyte
      kind: connection
      policy: enforce
"""


def test_enforce_puts_back_only_the_resources_its_rule_covers_and_alert_leaves_the_rest(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    controller = start_controller(config=ENFORCE_CONNECTIONS, poll=0.1, drift=0.2)
    settled(controller, repo)
    writes = standins.airbyte["qa"].stats.writes
    hand_edit(standins, "connections", "mailchimp-to-lake", HAND_SCHEDULE)
    hand_edit(standins, "destinations", "lake", {"configuration": {"s3_bucket_name": "someone-elses-bucket"}})

    def enforced() -> tuple[Any, ...] | None:
        calls = controller.drift_calls("qa")
        return next((c for c in calls if any(f.outcome == "re-applied" for f in c)), None)

    findings = {f"{f.kind}/{f.name}": f for f in wait_for(enforced, "the connection put back")}
    assert set(findings) == {"connection/mailchimp-to-lake", "destination/lake"}
    connection, destination = findings["connection/mailchimp-to-lake"], findings["destination/lake"]
    assert (connection.policy, connection.outcome, connection.action) == ("enforce", "re-applied", "update")
    assert [change.name for change in connection.changes] == ["schedule.scheduleType"]
    assert (destination.policy, destination.outcome) == ("alert", "reported only")
    assert [change.name for change in destination.changes] == ["configuration.s3_bucket_name"]
    assert connection.revision == repo.git("rev-parse", "HEAD")

    later = cycles_after(controller, 4)
    assert all([f"{f.kind}/{f.name}" for f in findings] == ["destination/lake"] for findings in later)
    assert live(standins, "qa", "connections")["mailchimp-to-lake"]["schedule"] == {"scheduleType": "manual"}
    bucket = live(standins, "qa", "destinations")["lake"]["configuration"]["s3_bucket_name"]
    assert bucket == "someone-elses-bucket"  # alert only: never written
    assert standins.airbyte["qa"].stats.writes == writes + 1  # the connection's one update


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_alert_reports_every_cycle_and_writes_nothing(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    controller = start_controller(poll=0.1, drift=0.2)  # no controller.yaml: every drift is alert
    settled(controller, repo)
    writes = standins.airbyte["qa"].stats.writes
    hand_edit(standins, "connections", "mailchimp-to-lake", HAND_SCHEDULE)
    seen = len(controller.drift_calls("qa"))
    wait_for(lambda: any(controller.drift_calls("qa")[seen:]), "the drift found")
    for findings in cycles_after(controller, 5):
        assert [(f.name, f.policy, f.outcome) for f in findings] == [("mailchimp-to-lake", "alert", "reported only")]
    assert live(standins, "qa", "connections")["mailchimp-to-lake"]["schedule"]["cronExpression"] == "0 0 5 * * ?"
    assert standins.airbyte["qa"].stats.writes == writes


IGNORING = """
drift:
  default: alert
  rules:
    - system: airbyte
      kind: connection
      policy: ignore
    - system: airbyte
      kind: source
      policy: enforce
      ignore: ["configuration.host"]
"""


def test_ignored_policies_and_ignored_fields_are_not_drift(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    controller = start_controller(config=IGNORING, poll=0.1, drift=0.2)
    settled(controller, repo)
    writes = standins.airbyte["qa"].stats.writes
    hand_edit(standins, "connections", "mailchimp-to-lake", HAND_SCHEDULE)
    hand_edit(standins, "sources", "app-postgres", {"configuration": {"host": "db.elsewhere"}})
    hand_edit(standins, "destinations", "lake", {"configuration": {"s3_bucket_name": "someone-elses-bucket"}})
    seen = len(controller.drift_calls("qa"))
    wait_for(lambda: any(controller.drift_calls("qa")[seen:]), "the drift found")
    for findings in cycles_after(controller, 3):
        assert [f"{f.kind}/{f.name}" for f in findings] == ["destination/lake"]  # only what no rule ignores
    assert live(standins, "qa", "sources")["app-postgres"]["configuration"]["host"] == "db.elsewhere"
    assert standins.airbyte["qa"].stats.writes == writes


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_metrics_show_the_drift_the_resources_and_the_applied_revision(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    controller = start_controller(poll=0.1, drift=0.2)
    settled(controller, repo)
    hand_edit(standins, "connections", "mailchimp-to-lake", HAND_SCHEDULE)
    seen = len(controller.drift_calls("qa"))
    wait_for(lambda: any(controller.drift_calls("qa")[seen:]), "the drift found")
    answer = controller.get("/metrics")
    assert answer.status_code == 200
    metrics = samples(answer.text)
    assert ({"env": "qa", "system": "airbyte", "policy": "alert"}, 1.0) in metrics["reconciler_drift_resources"]
    info = {
        (labels["kind"], labels["name"]): labels["sync_status"] for labels, _ in metrics["reconciler_resource_info"]
    }
    assert info[("connection", "mailchimp-to-lake")] == "OutOfSync"
    assert info[("connection", "app-postgres-to-lake")] == "Synced"
    assert len(info) == 5  # one series per resource: the Synced one of the drifted connection is gone
    assert metrics["reconciler_applied_revision_info"] == [({"env": "qa", "revision": first}, 1.0)]
    assert ({"env": "qa", "result": "applied"}, 1.0) in metrics["reconciler_sync_total"]
    assert ({}, 1.0) in metrics["reconciler_leader"]
    git = {labels["request_type"]: value for labels, value in metrics["reconciler_git_request_total"]}
    assert git["fetch"] == 1 and git["ls-remote"] >= 2
    statuses = {
        labels["status"] for labels, _ in metrics["reconciler_api_requests_total"] if labels["system"] == "airbyte"
    }
    assert "200" in statuses
    phases = {labels["phase"] for labels, _ in metrics["reconciler_reconcile_duration_seconds_count"]}
    assert phases == {"validate", "plan", "apply", "drift"}
    assert not any(name.endswith("_created") for name in metrics)

    second = repo.commit("a new revision", repo.replace("environments/qa.yaml", "*/6", "*/4"))
    wait_for(lambda: controller.applied("qa", second), "the second commit")
    after = samples(controller.get("/metrics").text)
    assert after["reconciler_applied_revision_info"] == [({"env": "qa", "revision": second}, 1.0)]  # old one removed
