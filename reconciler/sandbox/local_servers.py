"""Sandbox plumbing for real servers (Superset, dagster-webserver): venvs installed once and cached, start, wait, stop.

Each server runs from a venv of its own (its pins are not the project's), installed on first use
into a cache directory and reused while its pins are unchanged: a marker file holds the pins and a
file lock keeps parallel processes (two test runs, a test run and the demo) from racing. The first
install reports progress and its time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

from reconciler.errors import ReconcilerError

Say = Callable[[str], None]
PROGRESS_EVERY_SECONDS = 15.0


class ServerStartError(ReconcilerError):
    """A local server could not be installed or started (the message holds the end of its log)."""


def say_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """Where the product keeps its venvs: `$RECONCILER_CACHE_DIR`, else `~/.cache/reconciler` (XDG_CACHE_HOME)."""
    explicit = os.environ.get("RECONCILER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reconciler"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process on this machine (held until the block ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv_ready(venv: Path, pins: Sequence[str], executable: str) -> bool:
    marker = venv / ".reconciler-pins"
    return marker.exists() and marker.read_text() == _pins_text(pins) and (venv / "bin" / executable).exists()


def _pins_text(pins: Sequence[str]) -> str:
    return "\n".join(pins) + "\n"


def ensure_venv(
    name: str, pins: Sequence[str], executable: str, cache_dir: Path, *, expect: str = "", say: Say = say_to_stderr
) -> Path:
    """`cache_dir/<name>-venv` with `pins` installed (once; reinstalled when the pins change)."""
    venv = cache_dir / f"{name}-venv"
    with file_lock(cache_dir / f"{name}-venv.lock"):
        if venv_ready(venv, pins, executable):
            return venv
        started = time.monotonic()
        say(f"installing {' '.join(pins)} into {venv}{f' ({expect}, once)' if expect else ''}")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        _pip_install([*pip, "--progress-bar", "off", *pins], started, say)
        (venv / ".reconciler-pins").write_text(_pins_text(pins))
        say(f"installed in {time.monotonic() - started:.0f} s (later starts reuse it)")
        return venv


def _pip_install(command: list[str], started: float, say: Say) -> None:
    """Run pip, saying every so often how far it got (packages collected, then installing)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    tail: list[str] = []
    progress = {"collected": 0, "installing": 0}
    done = threading.Event()

    def tick() -> None:  # pip prints nothing while it installs: say it is still at it
        while not done.wait(PROGRESS_EVERY_SECONDS):
            elapsed = time.monotonic() - started
            if progress["installing"]:
                say(f"  {elapsed:.0f} s: still installing {progress['installing']} packages")
            else:
                say(f"  {elapsed:.0f} s: {progress['collected']} packages collected so far")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        for line in process.stdout:
            tail = [*tail[-40:], line.rstrip()]
            if line.startswith("Collecting "):
                progress["collected"] += 1
            elif line.startswith("Installing collected packages"):
                progress["installing"] = line.count(",") + 1
                elapsed = time.monotonic() - started
                collected = progress["collected"]
                say(f"  {elapsed:.0f} s: {collected} packages downloaded, installing them (the longest part)")
    finally:
        done.set()
        ticker.join()
    if process.wait() != 0:
        text = "\n".join(tail)
        raise ServerStartError(f"pip install failed (exit {process.returncode}):\n{text}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in a process group of its own, and everything it spawned (TERM, then KILL)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_answering(what: str, probe: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    """Poll `probe` until it answers 200; raise with the server's log if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{what} exited with {process.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(probe, timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    raise ServerStartError(f"{what} did not answer {probe} within {timeout:.0f} s:\n{log_tail(log_path)}")
