"""The controller's loop against a real git repository and the Airbyte stand-ins: commits land once, an invalid
commit changes nothing, plan-only applies nothing, one environment's failure does not stop the others, only the
leader acts, and a stop mid-apply loses and duplicates nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.cancellation import Cancellation
from reconciler.controller.app import ControllerSettings, build
from reconciler.core.plan import Action
from reconciler.providers.base import ApplyContext, ApplyOutcome
from reconciler.sandbox.launch import StandIns
from reconciler.systems.airbyte.provider import AirbyteProvider
from tests.controller.conftest import GitRepo, RecordingNotifier, RunningController, wait_for


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


class GatedLeader:
    """Leadership the test hands out and takes back: `grant()` lets `acquire` return a new term, `revoke()` ends it."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.term: Cancellation | None = None
        self.released = False

    @property
    def identity(self) -> str:
        return "gated"

    @property
    def leading(self) -> bool:
        return self.term is not None and not self.term.cancelled

    def acquire(self, stop: threading.Event) -> Cancellation | None:
        while not stop.is_set():
            if self.gate.wait(0.05):
                self.gate.clear()
                self.term = Cancellation()
                return self.term
        return None

    def grant(self) -> None:
        self.gate.set()

    def revoke(self) -> None:
        assert self.term is not None
        self.term.cancel("lease lost")

    def release(self) -> None:
        self.released = True
        if self.term is not None:
            self.term.cancel("released")


def polling_qa(repo: GitRepo, standins: StandIns, tmp_path: Path) -> ControllerSettings:
    """A controller of QA polling every 0.1 s (drift every minute) on the stand-ins."""
    return ControllerSettings(
        repo=str(repo.remote),
        environments=("qa",),
        poll_interval=0.1,
        drift_interval=60,
        listen="127.0.0.1:0",
        cache_dir=tmp_path / "cache",
        environ=standins.environment(),
    )


def test_only_the_leader_acts_and_a_new_term_catches_up(repo: GitRepo, standins: StandIns, tmp_path: Path) -> None:
    first = repo.git("rev-parse", "HEAD")
    leader = GatedLeader()
    notifier = RecordingNotifier()
    settings = polling_qa(repo, standins, tmp_path)
    app = build(settings, leadership=leader, notifier=notifier)
    controller = app.controller
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: controller.waiting_to_lead, "waiting for the lease")
        assert controller.alive() and controller.ready()  # a standby is ready: rollouts and drains go on
        assert app.metrics.git_requests.labels(request_type="ls-remote")._value.get() == 0
        assert standins.airbyte["qa"].stats.total == 0

        leader.grant()
        wait_for(lambda: any(c.revision == first for c in notifier.of("applied")), "the first sync as leader")
        assert app.metrics.leader._value.get() == 1
        leader.revoke()
        wait_for(lambda: controller.waiting_to_lead, "the loop back to waiting")
        assert app.metrics.leader._value.get() == 0
        polls = app.metrics.git_requests.labels(request_type="ls-remote")._value.get()
        writes = standins.airbyte["qa"].stats.writes
        second = repo.commit("while no one leads", repo.replace("environments/qa.yaml", "*/6", "*/4"))
        assert controller.alive()
        assert app.metrics.git_requests.labels(request_type="ls-remote")._value.get() == polls
        assert standins.airbyte["qa"].stats.writes == writes

        leader.grant()
        wait_for(
            lambda: any(c.revision == second for c in notifier.of("applied")), "the commit applied by the new term"
        )
        assert standins.airbyte["qa"].stats.writes == writes + 1

        leader.revoke()  # a third term re-syncs the same commit: nothing to write, nothing new to tell
        wait_for(lambda: controller.waiting_to_lead, "the loop back to waiting")
        polls = app.metrics.git_requests.labels(request_type="ls-remote")._value.get()
        leader.grant()
        wait_for(
            lambda: (
                app.metrics.git_requests.labels(request_type="ls-remote")._value.get() > polls + 1
                and controller.statuses["qa"].attempted == second
            ),
            "the third term's sync and the poll after it",
        )
        assert len([c for c in notifier.of("applied") if c.revision == second]) == 1
        assert standins.airbyte["qa"].stats.writes == writes + 1
    finally:
        controller.shutdown()
        thread.join(timeout=30)
    assert not thread.is_alive() and leader.released


def test_sigterm_mid_apply_lets_the_running_actions_finish_and_a_restart_converges_without_duplicates(
    repo: GitRepo,
    standins: StandIns,
    start_controller: Callable[..., RunningController],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qa = standins.airbyte["qa"]
    started: list[RunningController] = []
    running = threading.Event()
    real_apply = AirbyteProvider.apply

    def stopped_while_running(provider: AirbyteProvider, action: Action, context: ApplyContext) -> ApplyOutcome:
        """The real apply, but the first one is interrupted by a stop, as SIGTERM's handler does mid-action."""
        if not running.is_set():
            running.set()
            wait_for(lambda: started, "the controller started")
            started[0].app.controller.shutdown("stopped by SIGTERM")
        return real_apply(provider, action, context)

    monkeypatch.setattr(AirbyteProvider, "apply", stopped_while_running)
    controller = start_controller()
    started.append(controller)
    controller.thread.join(timeout=30)
    assert not controller.thread.is_alive()
    status = controller.app.controller.statuses["qa"]
    assert (status.result, status.retry) == ("cancelled", True)
    assert controller.notifier.of("apply_failed") == [] and controller.notifier.of("applied") == []
    assert live(standins, "qa") == {}  # the connections never started: they wait for their sources
    done = len(live(standins, "qa", "sources")) + len(live(standins, "qa", "destinations"))
    assert 1 <= done <= 3  # the running creates finished (and were recorded)

    monkeypatch.setattr(AirbyteProvider, "apply", real_apply)
    again = start_controller()  # the same cache: the same state directory
    wait_for(lambda: again.applied("qa", repo.git("rev-parse", "HEAD")), "the restart's sync")
    assert set(live(standins, "qa")) == {"app-postgres-to-lake", "mailchimp-to-lake"}
    assert len(live(standins, "qa", "sources")) == 2 and len(live(standins, "qa", "destinations")) == 1
    assert qa.stats.writes == 5  # nothing created twice
