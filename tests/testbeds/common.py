"""Test-bed plumbing shared by the Superset and Dagster beds: cached venvs, locks, ports, logs.

Each real server the tests start lives in a venv of its own under `.cache/testbeds/` (its pins
are not the project's), installed once per machine and reused while its pins are unchanged.
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
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "testbeds"


def say(bed: str, message: str) -> None:
    print(f"[{bed}-bed] {message}", file=sys.stderr, flush=True)


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


def ensure_venv(bed: str, pins: Sequence[str], executable: str, cache_dir: Path = CACHE, *, expect: str = "") -> Path:
    """`cache_dir/<bed>-venv` with `pins` installed (once; reinstalled when the pins change)."""
    venv = cache_dir / f"{bed}-venv"
    marker = venv / ".reconciler-pins"
    wanted = "\n".join(pins) + "\n"
    with file_lock(cache_dir / f"{bed}-venv.lock"):
        if marker.exists() and marker.read_text() == wanted and (venv / "bin" / executable).exists():
            return venv
        started = time.monotonic()
        say(bed, f"installing {' '.join(pins)} into {venv}{f' ({expect}, once)' if expect else ''}")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        result = subprocess.run([*pip, *pins], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"installing {bed} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        marker.write_text(wanted)
        say(bed, f"installed in {time.monotonic() - started:.0f} s")
        return venv


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
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(probe, timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {probe} within {timeout:.0f} s:\n{log_tail(log_path)}")
