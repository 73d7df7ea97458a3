"""Test-bed plumbing shared by the Superset and Dagster beds: the test cache, and the sandbox's server helpers.

Each real server the tests start lives in a venv of its own under `.cache/testbeds/` (its pins
are not the project's), installed once per machine and reused while its pins are unchanged. The
installer and process helpers are reconciler.sandbox.local_servers (the demo uses them too).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.sandbox import local_servers
from reconciler.sandbox.local_servers import file_lock, free_port, log_tail, stop_process_group, wait_answering

__all__ = [
    "CACHE",
    "REPO",
    "ensure_venv",
    "file_lock",
    "free_port",
    "log_tail",
    "say",
    "stop_process_group",
    "wait_answering",
]

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "testbeds"


def say(bed: str, message: str) -> None:
    print(f"[{bed}-bed] {message}", file=sys.stderr, flush=True)


def ensure_venv(bed: str, pins: Sequence[str], executable: str, cache_dir: Path = CACHE, *, expect: str = "") -> Path:
    """`cache_dir/<bed>-venv` with `pins` installed (once; reinstalled when the pins change)."""
    return local_servers.ensure_venv(bed, pins, executable, cache_dir, expect=expect, say=lambda m: say(bed, m))
