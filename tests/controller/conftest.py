"""Fixtures: a real git repository (a working clone and a bare "remote") holding an Airbyte-only project, the
Airbyte stand-ins, and a controller built on them that runs in a thread with sub-second intervals."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.controller.app import ControllerApp, ControllerSettings, build
from reconciler.controller.http import signature
from reconciler.controller.ports import AppliedCommit, DriftFinding
from reconciler.demo_controller import airbyte_only
from reconciler.sandbox.launch import StandIns, running_standins
from tests.controller.slack_helpers import rig as rig  # the Slack tests' fixture, shared here
from tests.helpers import REPO

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


@dataclass
class GitRepo:
    """A working clone that commits and pushes to a bare remote (what the controller follows)."""

    work: Path
    remote: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.work, env=GIT_ENV, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.strip()

    def commit(self, message: str, edits: dict[str, str | None] | None = None) -> str:
        """Write (or delete, for None) files, commit, push; the new commit's sha."""
        for relative, text in (edits or {}).items():
            path = self.work / relative
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        self.git("push", "--quiet", "origin", "HEAD:main")
        return self.git("rev-parse", "HEAD")

    def read(self, relative: str) -> str:
        return (self.work / relative).read_text()

    def replace(self, relative: str, old: str, new: str) -> dict[str, str | None]:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}"
        return {relative: text.replace(old, new, 1)}


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    work, remote = tmp_path / "work", tmp_path / "remote.git"
    work.mkdir()
    shutil.copytree(REPO / "specs" / "airbyte", work / "specs" / "airbyte")
    (work / "environments").mkdir()
    for env in ("qa", "prod"):
        (work / "environments" / f"{env}.yaml").write_text(
            airbyte_only((REPO / "environments" / f"{env}.yaml").read_text())
        )
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], env=GIT_ENV, check=True, timeout=30)
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(work)], env=GIT_ENV, check=True, timeout=30)
    repository = GitRepo(work, remote)
    repository.git("remote", "add", "origin", str(remote))
    repository.commit("the Airbyte project")
    return repository


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with running_standins(None) as running:
        yield running


@dataclass
class RecordingNotifier:
    """A Notifier that keeps every call, for the loop's tests (thread-safe)."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, method: str, value: Any) -> None:
        with self._lock:
            self.calls.append((method, value))

    def of(self, method: str) -> list[Any]:
        with self._lock:
            return [value for name, value in self.calls if name == method]

    def drift(self, environment: str, findings: Sequence[DriftFinding]) -> None:
        self._add("drift", (environment, tuple(findings)))

    def applied(self, commit: AppliedCommit) -> None:
        self._add("applied", commit)

    def apply_failed(self, environment: str, revision: str, error: str) -> None:
        self._add("apply_failed", (environment, revision, error))

    def invalid_commit(self, environment: str, revision: str, problems: Sequence[str]) -> None:
        self._add("invalid_commit", (environment, revision, tuple(problems)))


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `condition` until it is truthy (its value returned); fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


WEBHOOK_SECRET = "whsec-canary-5f1c"
HTTP = httpx.Client(timeout=10)


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return signature(secret, body)


@dataclass
class RunningController:
    app: ControllerApp
    notifier: RecordingNotifier
    url: str
    thread: threading.Thread

    def get(self, path: str) -> httpx.Response:
        return HTTP.get(f"{self.url}{path}")

    def push_webhook(self, after: str, *, ref: str = "refs/heads/main", secret: str = WEBHOOK_SECRET) -> httpx.Response:
        body = json.dumps({"ref": ref, "after": after}).encode()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body, secret)}
        return HTTP.post(f"{self.url}/webhook/github", content=body, headers=headers)

    def applied(self, env: str, revision: str) -> list[AppliedCommit]:
        return [c for c in self.notifier.of("applied") if c.environment == env and c.revision == revision]

    def drift_calls(self, env: str) -> list[tuple[DriftFinding, ...]]:
        return [findings for name, findings in self.notifier.of("drift") if name == env]

    def stop(self) -> None:
        self.app.controller.shutdown()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the controller did not stop"


@pytest.fixture
def start_controller(repo: GitRepo, standins: StandIns, tmp_path: Path) -> Iterator[Callable[..., RunningController]]:
    started: list[RunningController] = []

    def start(
        *,
        config: str | None = None,
        environments: tuple[str, ...] = ("qa",),
        poll: float = 0.2,
        drift: float = 60.0,
        environ: dict[str, str] | None = None,
    ) -> RunningController:
        config_path = None
        if config is not None:
            config_path = tmp_path / "controller.yaml"
            config_path.write_text(config)
        settings = ControllerSettings(
            repo=str(repo.remote),
            environments=environments,
            config=config_path,
            poll_interval=poll,
            drift_interval=drift,
            listen="127.0.0.1:0",
            cache_dir=tmp_path / "cache",
            environ={**standins.environment(), "RECONCILER_WEBHOOK_SECRET": WEBHOOK_SECRET, **(environ or {})},
        )
        notifier = RecordingNotifier()
        app = build(settings, notifier=notifier)
        port = app.start_server()
        thread = threading.Thread(target=app.run, name="controller", daemon=True)
        thread.start()
        running = RunningController(app, notifier, f"http://127.0.0.1:{port}", thread)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
