"""A plan's Airbyte listings start while the specs load; an apply lists only under the lock; spec errors come first."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.background import SWITCH_SECONDS
from reconciler.lock import FileLock, LockHolder
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.secrets import SecretResolver
from reconciler.service import session as session_module
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import LOADED, load_environments
from reconciler.systems.airbyte.client import AirbyteClient
from reconciler.systems.airbyte.listing import Listings, client_for, prefetch
from reconciler.systems.airbyte.loading import AirbyteSelection
from reconciler.systems.airbyte.provider import AirbyteProvider
from reconciler.systems.airbyte.spec import AirbyteEnvironment
from tests.airbyte.test_error_messages import closed_port
from tests.helpers import Project

LISTINGS = ("GET /sources", "GET /destinations", "GET /connections")
BROKEN_SPEC = "specs/airbyte/connections.yaml:13: streams.0.syncMode:"


def listed(standin: AirbyteStandIn) -> int:
    return sum(standin.stats.by_route.get(route, 0) for route in LISTINGS)


def break_the_specs(project: Project) -> None:
    project.edit("specs/airbyte/connections.yaml", "syncMode: incremental_append", "syncMode: nightly")


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def listed_before_the_specs_loaded(project: Project, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each spec load of the session, once it starts: whether the stand-in is listed before it ends (given time)."""
    seen: list[bool] = []
    load = session_module.load_environments  # type: ignore[attr-defined]

    def slow_load(files: Mapping[str, str], variables: Mapping[str, str], only: str | None = None) -> Any:
        seen.append(wait_for(lambda: listed(project.qa) >= len(LISTINGS), seconds=3.0))
        return load(files, variables, only=only)

    monkeypatch.setattr(session_module, "load_environments", slow_load)
    return seen


def test_a_plan_lists_airbyte_while_its_specs_load(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    project.qa.stats.reset()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0  # lists as observe always did
    listed_by_apply = listed(project.qa)
    project.qa.stats.reset()
    seen = listed_before_the_specs_loaded(project, monkeypatch)

    result = project.run("plan", "--env", "qa")

    assert result.exit_code == 0, result.output
    assert "No changes." in result.output
    assert seen == [True]
    assert listed(project.qa) == listed_by_apply  # the early listings are the ones observed: none made twice


@contextmanager
def lock_watch(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The listings the stand-in had received each time the environment's lock was taken (after a pause long enough
    for an early listing to reach it)."""
    at_lock: list[int] = []
    acquire = FileLock.acquire

    def watched(lock: FileLock, holder: LockHolder) -> LockHolder | None:
        time.sleep(0.3)
        at_lock.append(listed(project.qa))
        return acquire(lock, holder)

    monkeypatch.setattr(FileLock, "acquire", watched)
    yield at_lock


def test_a_session_loads_its_specs_with_a_short_switch_interval_and_puts_it_back(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing threads (and apply's workers) get the interpreter within 0.5 ms of their answer, not 5 ms."""
    intervals: list[float] = []
    load = session_module.load_environments  # type: ignore[attr-defined]

    def watched_load(files: Mapping[str, str], variables: Mapping[str, str], only: str | None = None) -> Any:
        intervals.append(sys.getswitchinterval())
        return load(files, variables, only=only)

    monkeypatch.setattr(session_module, "load_environments", watched_load)
    before = sys.getswitchinterval()

    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert project.run("plan", "--env", "qa").exit_code == 0
    break_the_specs(project)
    assert project.run("plan", "--env", "qa").exit_code == 1  # a spec error: put back all the same

    assert intervals == [pytest.approx(SWITCH_SECONDS, rel=0.05)] * 3
    assert sys.getswitchinterval() == before


def test_an_apply_lists_only_once_it_holds_the_lock(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    project.edit("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}')
    plan_file = tmp_path / "plan.json"
    assert project.run("plan", "--env", "qa", "--out", str(plan_file)).exit_code == 0
    with lock_watch(project, monkeypatch) as at_lock:
        project.qa.stats.reset()
        saved = project.run("apply", "--env", "qa", str(plan_file))  # checked against a fresh plan, under the lock
        assert saved.exit_code == 0, saved.output
        assert "Apply complete: 1 updated." in saved.output
        project.qa.stats.reset()
        again = project.run("apply", "--env", "qa", "--auto-approve")
        assert again.exit_code == 0, again.output
        assert project.qa.stats.writes == 0
    assert at_lock == [0, 0]


def silent_server() -> tuple[socket.socket, str]:
    """A server that takes connections and never answers (a client waits for its timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/api/public/v1"


def run_within(project: Project, seconds: float, *args: str, **env: str) -> Result:
    """The CLI, which must end within `seconds` (well under the client's 30 s timeout)."""
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(project.run(*args, **env)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert results, f"{' '.join(args)} did not end within {seconds} s"
    return results[0]


def test_a_spec_error_is_reported_without_waiting_for_a_silent_server(project: Project) -> None:
    break_the_specs(project)
    listener, url = silent_server()
    with listener:
        result = run_within(project, 15.0, "plan", "--env", "qa", AIRBYTE_QA_URL=url)
    assert result.exit_code == 1
    assert BROKEN_SPEC in result.output
    assert "airbyte:" not in result.output.replace(BROKEN_SPEC, "") and "Traceback" not in result.output


def test_a_spec_error_comes_before_a_refused_sign_in(project: Project) -> None:
    break_the_specs(project)
    result = project.run("plan", "--env", "qa", AIRBYTE_QA_CLIENT_SECRET="wrong")
    assert result.exit_code == 1
    assert BROKEN_SPEC in result.output
    assert "sign-in" not in result.output and "401" not in result.output
    assert project.qa.stats.writes == 0


def test_a_listing_failure_reads_as_it_does_when_observe_lists(project: Project) -> None:
    """The plan's early listing fails; an apply lists when it observes: the same message."""
    planned = project.run("plan", "--env", "qa", AIRBYTE_QA_CLIENT_SECRET="wrong")
    applied = project.run("apply", "--env", "qa", "--auto-approve", AIRBYTE_QA_CLIENT_SECRET="wrong")
    assert planned.exit_code == applied.exit_code == 1
    errors = [line for line in planned.output.splitlines() if line.startswith("Error:")]
    assert errors and errors[0].startswith("Error: airbyte: sign-in failed")
    assert errors == [line for line in applied.output.splitlines() if line.startswith("Error:")]
    assert "wrong" not in planned.output


def test_validate_makes_no_request(project: Project) -> None:
    assert project.run("validate", "--env", "qa").exit_code == 0
    break_the_specs(project)
    assert project.run("validate", "--env", "qa").exit_code == 1
    time.sleep(0.3)
    assert project.qa.stats.total == 0


def test_an_environment_file_that_does_not_validate_starts_no_listing(project: Project) -> None:
    project.edit("environments/qa.yaml", "  prune: true", "  prune: sometimes")
    result = project.run("plan", "--env", "qa")
    assert result.exit_code == 1 and "environments/qa.yaml:12: airbyte.prune:" in result.output
    time.sleep(0.3)
    assert project.qa.stats.total == 0


def test_listings_started_for_another_server_are_closed_not_observed(project: Project) -> None:
    """A provider handed early listings made for other settings lists its own server afresh."""
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    settings = AirbyteEnvironment.model_validate({"url": project.qa.url, "workspace": "Default Workspace"})
    elsewhere = AirbyteEnvironment.model_validate({"url": f"http://127.0.0.1:{closed_port()}/api", "workspace": "W"})
    early = Listings(AirbyteClient(elsewhere.url, token="t"), elsewhere, None)
    client = AirbyteClient(project.qa.url, client_id="reconciler", client_secret="sandbox-secret")
    provider = AirbyteProvider(client, settings, AirbyteSelection((), (), ()))
    try:
        provider.adopt(early)
        observed = provider.observe([], {})
    finally:
        provider.close()
    assert observed.live == {} and provider.client is client


def test_only_the_first_observe_takes_the_early_listings(project: Project) -> None:
    """A provider observes its early listings once: a second observe (waiting for pending creates) lists again."""
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    project.qa.stats.reset()
    resolver = SecretResolver({"S": "sandbox-secret"}, base_dir=project.root)
    auth = {"clientId": "reconciler", "clientSecret": {"secretRef": {"env": "S"}}}
    settings = AirbyteEnvironment.model_validate(
        {"url": project.qa.url, "workspace": "Default Workspace", "auth": auth}
    )
    early = prefetch(project.root, settings, resolver)
    assert early is not None
    provider = AirbyteProvider(client_for(settings, resolver), settings, AirbyteSelection((), (), ()))
    try:
        provider.adopt(early)
        wait_for(lambda: listed(project.qa) >= len(LISTINGS))
        first = provider.observe([], {})
        early_requests = listed(project.qa)
        project.qa.stats.reset()
        second = provider.observe([], {})
    finally:
        provider.close()
    assert first.live == second.live == {}
    assert listed(project.qa) == early_requests > 0


def test_a_credential_rotated_while_the_specs_load_is_the_one_the_plan_uses(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client secret is a file, rewritten (rotated) between the early read and the provider's: the plan signs
    in with the one the provider read, as it would without early listings (not the old one, refused by then)."""
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    secret = project.root / "airbyte-client-secret"
    secret.write_text("the-old-secret\n")
    project.edit(
        "environments/qa.yaml",
        "clientSecret: {secretRef: {env: AIRBYTE_QA_CLIENT_SECRET}}",
        f"clientSecret: {{secretRef: {{file: {secret.name}}}}}",
    )
    load = session_module.load_environments  # type: ignore[attr-defined]

    def rotating_load(files: Mapping[str, str], variables: Mapping[str, str], only: str | None = None) -> Any:
        wait_for(lambda: project.qa.stats.total > 0, seconds=3.0)  # the early listing has signed in (refused)
        secret.write_text(project.environ["AIRBYTE_QA_CLIENT_SECRET"] + "\n")
        return load(files, variables, only=only)

    monkeypatch.setattr(session_module, "load_environments", rotating_load)
    result = project.run("plan", "--env", "qa")

    assert result.exit_code == 0, result.output
    assert "No changes." in result.output
    assert "the-old-secret" not in result.output


def test_a_kept_load_gives_the_early_settings_without_reading_the_file_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller's next drift check of an unchanged spec starts its listings from the kept load."""
    files = read_spec_tree(project.root)
    early = session_module.early_settings(files, "qa", project.environ)
    assert early is not None
    LOADED.clear()
    load_environments(files, project.environ, only="qa")  # kept now

    def unread(text: str, file: str) -> object:
        raise AssertionError(f"{file} parsed again")

    monkeypatch.setattr(session_module, "parse_yaml", unread)
    kept = session_module.early_settings(files, "qa", project.environ)
    assert kept is not None and kept.section("airbyte") == early.section("airbyte")
    changed = {**project.environ, "AIRBYTE_QA_CLIENT_SECRET": "rotated"}  # another load: the file is read
    with pytest.raises(AssertionError, match="parsed again"):
        session_module.early_settings(files, "qa", changed)
