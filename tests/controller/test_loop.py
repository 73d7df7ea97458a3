"""The controller's loop against a real git repository and the Airbyte stand-ins: commits land once, an invalid
commit changes nothing, plan-only applies nothing, one environment's failure does not stop the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.sandbox.launch import StandIns
from tests.controller.conftest import GitRepo, RunningController, wait_for


def live(standins: StandIns, env: str, kind: str = "connections") -> dict[str, dict[str, Any]]:
    return {str(item["name"]): item for item in standins.airbyte[env].stored(kind) if not item.get("tombstone")}


def git_polls(controller: RunningController) -> float:
    return float(controller.app.metrics.git_requests.labels(request_type="ls-remote")._value.get())


def fetches(controller: RunningController) -> float:
    return float(controller.app.metrics.git_requests.labels(request_type="fetch")._value.get())


def test_a_commit_lands_by_poll_and_is_applied_once(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    controller = start_controller(poll=0.1)
    wait_for(lambda: controller.applied("qa", first), "the first sync")
    assert controller.get("/readyz").status_code == 200
    assert set(live(standins, "qa")) == {"app-postgres-to-lake", "mailchimp-to-lake"}
    writes = standins.airbyte["qa"].stats.writes

    second = repo.commit(
        "QA syncs every 4 hours",
        repo.replace("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}'),
    )
    wait_for(lambda: controller.applied("qa", second), "the second commit applied")
    assert live(standins, "qa")["app-postgres-to-lake"]["schedule"]["cronExpression"] == "0 0 */4 * * ?"
    assert standins.airbyte["qa"].stats.writes == writes + 1
    applied = controller.applied("qa", second)[0]
    assert (applied.created, applied.updated, applied.deleted, applied.mode) == (0, 1, 0, "apply")

    polls, fetched = git_polls(controller), fetches(controller)
    wait_for(lambda: git_polls(controller) >= polls + 5, "five more polls")
    assert fetches(controller) == fetched  # the remote did not move: ls-remote only, no fetch
    assert len(controller.applied("qa", second)) == 1
    assert standins.airbyte["qa"].stats.writes == writes + 1
    assert controller.app.controller.statuses["qa"].applied == second


def test_a_push_webhook_applies_at_once_without_waiting_for_the_poll(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    controller = start_controller(poll=3600)  # only the first poll and webhooks
    wait_for(lambda: controller.applied("qa", first), "the first sync")
    polls = git_polls(controller)
    second = repo.commit(
        "QA syncs every 4 hours",
        repo.replace("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}'),
    )
    other_branch = controller.push_webhook(second, ref="refs/heads/feature")
    assert other_branch.status_code == 204
    answer = controller.push_webhook(second)
    assert answer.status_code == 202
    wait_for(lambda: controller.applied("qa", second), "the pushed commit applied")
    assert git_polls(controller) == polls + 1
    assert live(standins, "qa")["app-postgres-to-lake"]["schedule"]["cronExpression"] == "0 0 */4 * * ?"


def test_an_invalid_commit_is_reported_applies_nothing_and_the_last_good_revision_stays(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    controller = start_controller(poll=0.1)
    wait_for(lambda: controller.applied("qa", first), "the first sync")
    writes = standins.airbyte["qa"].stats.writes
    bad = repo.commit(
        "a typo in a sync mode and a cron",
        {
            **repo.replace("specs/airbyte/connections.yaml", "syncMode: full_refresh_overwrite", "syncMode: sometimes"),
            **repo.replace("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "every six hours"}'),
        },
    )
    reports = wait_for(lambda: controller.notifier.of("invalid_commit"), "the invalid commit reported")
    env, revision, problems = reports[0]
    assert (env, revision) == ("qa", bad)
    assert any(problem.startswith("specs/airbyte/connections.yaml:") and "syncMode" in problem for problem in problems)
    assert any(problem.startswith("environments/qa.yaml:") and "cron" in problem for problem in problems)
    status = controller.app.controller.statuses["qa"]
    assert (status.applied, status.last_good, status.result) == (first, first, "invalid")
    polls = git_polls(controller)
    wait_for(lambda: git_polls(controller) >= polls + 3, "three more polls")
    assert len(controller.notifier.of("invalid_commit")) == 1  # reported once, not every poll
    assert standins.airbyte["qa"].stats.writes == writes
    assert controller.notifier.of("apply_failed") == []

    fixed = repo.commit(
        "fixed",
        {
            **repo.replace("specs/airbyte/connections.yaml", "syncMode: sometimes", "syncMode: full_refresh_overwrite"),
            **repo.replace("environments/qa.yaml", '{cron: "every six hours"}', '{cron: "0 0 */4 * * ?"}'),
        },
    )
    wait_for(lambda: controller.applied("qa", fixed), "the fixed commit applied")
    assert status.last_good == fixed


def test_plan_only_reports_what_would_change_and_applies_nothing(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    config = "environments:\n  - name: qa\n    mode: apply\n  - name: prod\n    mode: plan-only\n"
    controller = start_controller(config=config, environments=())
    planned = wait_for(lambda: controller.applied("prod", first), "prod planned")[0]
    assert planned.mode == "plan-only"
    assert planned.created == 9  # four sources, a destination, four connections
    assert controller.applied("qa", first)[0].mode == "apply"
    assert standins.airbyte["prod"].stats.writes == 0
    assert live(standins, "prod") == {}
    assert [status.name for status in controller.app.controller.statuses.values()] == ["qa", "prod"]


def test_a_failure_in_one_environment_does_not_stop_the_next(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    controller = start_controller(environments=("qa", "prod"), environ={"AIRBYTE_QA_CLIENT_SECRET": "wrong"})
    wait_for(lambda: controller.applied("prod", first), "prod applied after qa failed")
    failures = controller.notifier.of("apply_failed")
    assert [(env, revision) for env, revision, _error in failures] == [("qa", first)]
    assert "sign-in failed" in failures[0][2]
    assert standins.airbyte["qa"].stats.writes == 0
    assert len(live(standins, "prod")) == 4
    assert controller.get("/readyz").status_code == 200  # every environment finished its first sync
