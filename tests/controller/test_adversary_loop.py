"""The controller's loop against commits that would delete by accident, and its git calls against hostile
settings: an environment file deleted, specs emptied (the mass-delete guard holds without a human), a repo URL
with credentials, a --branch that looks like a git option."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from reconciler.controller.git import GitFollower
from reconciler.errors import TemporaryError
from reconciler.sandbox.launch import StandIns
from tests.controller.conftest import GitRepo, RunningController, wait_for
from tests.controller.test_loop import live


@pytest.mark.parametrize("owned", [("qa",), ()], ids=["--env qa", "every environment in the repository"])
def test_a_commit_deleting_an_environment_file_deletes_nothing_and_is_reported(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController], owned: tuple[str, ...]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    running = start_controller(environments=owned)
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    before = set(live(standins, "qa"))
    writes = standins.airbyte["qa"].stats.writes
    gone = repo.commit("qa removed", {"environments/qa.yaml": None})
    refused = wait_for(
        lambda: [c for c in running.notifier.of("invalid_commit") if c[:2] == ("qa", gone)], "the commit reported"
    )
    assert "qa" in " ".join(refused[0][2])
    polls = running.app.metrics.git_requests.labels(request_type="ls-remote")._value.get()
    wait_for(
        lambda: running.app.metrics.git_requests.labels(request_type="ls-remote")._value.get() > polls + 3,
        "a few more polls",
    )
    assert standins.airbyte["qa"].stats.writes == writes
    assert set(live(standins, "qa")) == before
    assert running.app.controller.statuses["qa"].applied == first


def test_a_commit_emptying_the_specs_is_refused_by_the_mass_delete_guard_without_a_human(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    running = start_controller()
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    before = set(live(standins, "qa"))
    assert before
    writes = standins.airbyte["qa"].stats.writes
    text = repo.read("environments/qa.yaml")
    emptied = repo.commit("qa lists nothing", {"environments/qa.yaml": text[: text.index("  sources:")]})
    failed = wait_for(
        lambda: [c for c in running.notifier.of("apply_failed") if c[:2] == ("qa", emptied)], "the refusal reported"
    )
    assert "mass" in failed[0][2] or "refusing" in failed[0][2]
    polls = running.app.metrics.git_requests.labels(request_type="ls-remote")._value.get()
    wait_for(
        lambda: running.app.metrics.git_requests.labels(request_type="ls-remote")._value.get() > polls + 3,
        "a few more polls",
    )
    assert standins.airbyte["qa"].stats.writes == writes
    assert set(live(standins, "qa")) == before
    assert len([c for c in running.notifier.of("apply_failed") if c[1] == emptied]) == 1  # not retried each poll


def test_credentials_in_the_repo_url_appear_in_no_error_or_log(tmp_path: Path) -> None:
    url = "http://deploy:s3cr3t-canary@127.0.0.1:9/platform.git"
    with structlog.testing.capture_logs() as logs:
        git = GitFollower(url, "main", tmp_path / "cache", timeout=10)
        with pytest.raises(TemporaryError) as failed:
            git.remote_head()
        with pytest.raises(TemporaryError) as fetched:
            git.checkout("a" * 40)
    for text in (str(failed.value), str(fetched.value), repr(logs)):
        assert "s3cr3t-canary" not in text


@pytest.mark.parametrize("branch", ["--upload-pack=touch {marker}", "-o{marker}", "main --upload-pack=touch {marker}"])
def test_a_branch_that_looks_like_an_option_runs_nothing(repo: GitRepo, tmp_path: Path, branch: str) -> None:
    marker = tmp_path / "pwned"
    git = GitFollower(str(repo.remote), branch.format(marker=marker), tmp_path / "cache", timeout=10)
    with pytest.raises(TemporaryError, match="not found"):
        git.remote_head()
    with pytest.raises(TemporaryError):
        git.fetch("a" * 40)
    assert not marker.exists()


def test_a_remote_unreachable_for_a_while_keeps_drift_checks_going_and_is_followed_again(
    repo: GitRepo, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    running = start_controller(drift=0.3)
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    hidden = repo.remote.with_name("remote.gone")
    repo.remote.rename(hidden)
    try:
        checks = len(running.drift_calls("qa"))
        wait_for(lambda: len(running.drift_calls("qa")) >= checks + 3, "drift checks while git is unreachable")
        assert running.get("/healthz").status_code == 200
    finally:
        hidden.rename(repo.remote)
    later = repo.commit("after the outage", repo.replace("environments/qa.yaml", "*/6", "*/4"))
    wait_for(lambda: running.applied("qa", later), "the commit after the outage applied")


def test_drift_is_still_checked_against_the_last_good_revision_while_the_branch_holds_an_invalid_commit(
    repo: GitRepo, standins: StandIns, start_controller: Callable[..., RunningController]
) -> None:
    """A broken main can last hours; a hand edit in the live system meanwhile must still be seen (and enforced)."""
    first = repo.git("rev-parse", "HEAD")
    running = start_controller(drift=0.3)
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    bad = repo.commit("a typo", repo.replace("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "often"}'))
    wait_for(lambda: [c for c in running.notifier.of("invalid_commit") if c[1] == bad], "the invalid commit reported")
    checks = len(running.drift_calls("qa"))
    wait_for(lambda: len(running.drift_calls("qa")) >= checks + 3, "drift checks while the branch is invalid")
    assert running.app.controller.statuses["qa"].applied == first


ENFORCE_AIRBYTE = """
drift:
  default: alert
  rules:
    - {system: airbyte, policy: enforce}
"""


def test_sigterm_during_a_drift_enforce_stops_cleanly_and_a_restart_puts_the_rest_back(
    repo: GitRepo,
    standins: StandIns,
    start_controller: Callable[..., RunningController],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.core.plan import Action
    from reconciler.providers.base import ApplyContext, ApplyOutcome
    from reconciler.systems.airbyte.provider import AirbyteProvider
    from tests.controller.test_drift import HAND_SCHEDULE, hand_edit

    first = repo.git("rev-parse", "HEAD")
    running = start_controller(config=ENFORCE_AIRBYTE, drift=0.2)
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    real_apply = AirbyteProvider.apply
    interrupted = threading.Event()

    def stopped_while_enforcing(provider: AirbyteProvider, action: Action, context: ApplyContext) -> ApplyOutcome:
        if not interrupted.is_set():
            interrupted.set()
            running.app.controller.shutdown("stopped by SIGTERM")
        return real_apply(provider, action, context)

    monkeypatch.setattr(AirbyteProvider, "apply", stopped_while_enforcing)
    writes = standins.airbyte["qa"].stats.writes
    hand_edit(standins, "connections", "mailchimp-to-lake", HAND_SCHEDULE)
    hand_edit(standins, "destinations", "lake", {"configuration": {"s3_bucket_name": "someone-elses-bucket"}})
    running.thread.join(timeout=60)
    assert interrupted.is_set() and not running.thread.is_alive()
    assert 1 <= standins.airbyte["qa"].stats.writes - writes <= 2  # what was running finished, nothing after

    monkeypatch.setattr(AirbyteProvider, "apply", real_apply)
    again = start_controller(config=ENFORCE_AIRBYTE, drift=0.2)

    def put_back() -> bool:
        connections, destinations = live(standins, "qa"), live(standins, "qa", "destinations")
        return (
            connections["mailchimp-to-lake"]["schedule"] == {"scheduleType": "manual"}
            and destinations["lake"]["configuration"]["s3_bucket_name"] == "acme-lake-qa"
        )

    wait_for(put_back, "the restart putting the rest back")
    assert standins.airbyte["qa"].stats.writes - writes == 2  # each resource put back once
    assert again.thread.is_alive()
