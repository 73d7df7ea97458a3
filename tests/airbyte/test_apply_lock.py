"""One writer per environment: concurrent applies are refused by name, a dead holder's lock is taken over."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.errors import LockedError, ReconcilerError
from reconciler.lock import FileLock, LockHolder
from tests.helpers import Project

HOST = socket.gethostname()
SAFETY_SECONDS = 120  # only so that a broken build fails instead of hanging; nothing is timed


def lock_file(project: Project, env: str = "qa") -> Path:
    return project.root / ".reconciler" / "state" / f"{env}.json.lock"


def live_names(project: Project, kind: str) -> list[str]:
    return sorted(str(item["name"]) for item in project.qa.stored(kind) if not item.get("tombstone"))


def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def read_until(descriptor: int, marker: bytes) -> bytes:
    """What a process under a pseudo-terminal printed, up to `marker`."""
    seen = b""
    deadline = time.monotonic() + SAFETY_SECONDS
    while marker not in seen:
        ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"{marker!r} never came: {seen.decode(errors='replace')}")
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # EIO: the process closed the terminal
            chunk = b""
        if not chunk:
            raise AssertionError(f"the process ended before {marker!r}: {seen.decode(errors='replace')}")
        seen += chunk
    return seen


def test_two_applies_at_once_one_is_refused_and_nothing_is_duplicated(project: Project) -> None:
    command = [sys.executable, "-m", "reconciler.cli", "--root", str(project.root), "apply", "--env", "qa"]
    command += ["--system", "airbyte"]
    environ = {**os.environ, **project.environ}
    controller, terminal = pty.openpty()
    # the first apply is a person reviewing the plan at the prompt, the second a CI job meanwhile
    first = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, env=environ)
    os.close(terminal)
    try:
        shown = read_until(controller, b"Apply these changes?")
        assert b"Plan for qa: 5 to create" in shown
        holder = json.loads(lock_file(project).read_text())
        assert (holder["pid"], holder["host"], holder["command"]) == (first.pid, HOST, "reconcile apply")

        second = subprocess.run(
            [*command, "--auto-approve"], capture_output=True, text=True, env=environ, timeout=SAFETY_SECONDS
        )
        assert second.returncode == 1, second.stdout + second.stderr
        expected = f"Error: environment qa is locked by pid {first.pid} on host {HOST} (reconcile apply, since "
        assert expected in second.stderr and "Traceback" not in second.stderr
        assert project.qa.stats.writes == 0

        os.write(controller, b"y\n")
        assert b"Apply complete: 5 created." in read_until(controller, b"Apply complete")
        assert first.wait(timeout=SAFETY_SECONDS) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        os.close(controller)
    assert live_names(project, "sources") == ["app-postgres", "mailchimp"]
    assert live_names(project, "destinations") == ["lake"]
    assert live_names(project, "connections") == ["app-postgres-to-lake", "mailchimp-to-lake"]
    assert not lock_file(project).exists()
    assert "No changes." in project.run("plan", "--env", "qa").output


def test_apply_and_import_are_refused_while_another_run_holds_the_lock(project: Project) -> None:
    held = FileLock(lock_file(project), "qa")
    held.acquire(LockHolder(4242, HOST, "reconcile apply", "2026-11-29T09:00:00Z"))
    try:
        for command in (["apply", "--env", "qa", "--auto-approve"], ["import", "airbyte", "--env", "qa"]):
            refused = project.run(*command)
            assert refused.exit_code == 1, refused.output
            assert (
                f"Error: environment qa is locked by pid 4242 on host {HOST} "
                "(reconcile apply, since 2026-11-29T09:00:00Z); wait for it to finish" in refused.output
            )
        assert project.qa.stats.writes == 0
        assert not (project.root / "specs" / "airbyte" / "imported-qa.yaml").exists()
        assert project.run("plan", "--env", "qa").exit_code == 0  # planning only reads: never locked
        assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0  # one lock per environment
    finally:
        held.release()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0


def test_a_lock_left_by_a_dead_apply_is_taken_over_with_a_warning(project: Project) -> None:
    gone = dead_pid()
    path = lock_file(project)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"pid": gone, "host": HOST, "command": "reconcile apply", "since": "2026-11-28T23:00:00Z"})
    )
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert (
        f"Warning: took over the lock of environment qa left by pid {gone} on host {HOST} "
        "(reconcile apply, since 2026-11-28T23:00:00Z), which is gone" in applied.output
    )
    assert "Apply complete: 5 created." in applied.output and not path.exists()


def test_a_lock_naming_another_host_is_never_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "qa.json.lock"
    path.write_text(json.dumps({"pid": 7, "host": "ci-runner-3", "command": "reconcile apply", "since": "x"}))
    with pytest.raises(LockedError, match=r"by pid 7 on host ci-runner-3 .*if it does not, remove .*qa\.json\.lock"):
        FileLock(path, "qa").acquire(LockHolder.current("reconcile apply"))
    assert json.loads(path.read_text())["host"] == "ci-runner-3"


def test_a_killed_holder_releases_the_lock_and_is_named_when_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state" / "qa.json.lock"
    code = (
        "import sys; from pathlib import Path; from reconciler.lock import FileLock, LockHolder; "
        "FileLock(Path(sys.argv[1]), 'qa').acquire(LockHolder.current('reconcile apply')); "
        "print('locked', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        mine = FileLock(path, "qa")
        with pytest.raises(LockedError, match=f"locked by pid {holder.pid} on host "):
            mine.acquire(LockHolder.current("reconcile apply"))
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the file stays behind
        holder.wait()
    assert path.exists()
    stale = mine.acquire(LockHolder.current("reconcile apply"))
    assert stale is not None and stale.pid == holder.pid
    with pytest.raises(LockedError):
        FileLock(path, "qa").acquire(LockHolder.current("reconcile apply"))
    mine.release()
    assert not path.exists()
    again = FileLock(path, "qa")
    assert again.acquire(LockHolder.current("reconcile apply")) is None
    again.release()


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    state = project.root / ".reconciler" / "state" / "qa.json"
    records = state.read_text()
    lock_file(project).symlink_to(state)  # followed, the holder's name would overwrite the records

    result = project.run("apply", "--env", "qa", "--auto-approve")

    assert result.exit_code == 1
    assert "qa.json.lock: it is a symbolic link" in result.output
    assert state.read_text() == records


def test_a_lock_path_that_is_not_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "qa.json.lock").mkdir()
    with pytest.raises(ReconcilerError, match=r"cannot open the lock .*qa\.json\.lock"):
        FileLock(tmp_path / "qa.json.lock", "qa").acquire(LockHolder.current("reconcile apply"))
