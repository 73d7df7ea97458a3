"""A Superset plan's early reads of this environment (started by `desired()` beside the replication source's)
never hold the process once the plan has failed: the error is printed and the command exits.

The CLI runs in a process of its own: what must not happen is the interpreter waiting, at exit, for a
read of an unanswering server that nobody will use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airbyte.test_error_messages import closed_port
from tests.helpers import copy_example

RECONCILE = Path(sys.executable).with_name("reconcile")


@pytest.fixture
def silent_superset() -> Iterator[str]:
    """A server that takes connections and never answers (a client waits for its 30 s timeout)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_failed_replication_source_is_reported_without_waiting_for_a_silent_target(
    tmp_path: Path, silent_superset: str
) -> None:
    """QA never answers; prod refuses connections: the plan fails on prod, and exits without waiting for QA."""
    root = copy_example(tmp_path)
    environ = {
        **os.environ,
        "SUPERSET_QA_URL": silent_superset,
        "SUPERSET_QA_PASSWORD": "qa-secret-value",
        "SUPERSET_PROD_URL": f"http://127.0.0.1:{closed_port()}",
        "SUPERSET_PROD_PASSWORD": "prod-secret-value",
    }
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(RECONCILE), "--root", str(root), "plan", "--env", "qa", "--system", "superset"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the plan was still running 20 s after it started (waiting for the silent QA)")
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Connection refused" in done.stderr and "Traceback" not in done.stderr
    assert "secret-value" not in done.stdout + done.stderr
    assert took < 15, f"exited {took:.1f} s after it started (the client's timeout is 30 s)"
