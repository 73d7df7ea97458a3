"""A Superset plan's early reads of this environment (started by `desired()` beside the replication source's)
never hold the process once the plan has failed: the error is printed and the command exits.

The CLI runs in a process of its own: what must not happen is the interpreter waiting, at exit, for a
read of an unanswering server that nobody will use.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def plan_qa(
    tmp_path: Path, qa_url: str, prod_url: str, waiting_for: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`reconcile plan --env qa --system superset` of the example against these servers, in its own process,
    with how long it took; a plan still running after 20 s fails the test (it waits for `waiting_for`)."""
    environ = {
        **os.environ,
        "SUPERSET_QA_URL": qa_url,
        "SUPERSET_QA_PASSWORD": "qa-secret-value",
        "SUPERSET_PROD_URL": prod_url,
        "SUPERSET_PROD_PASSWORD": "prod-secret-value",
    }
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(RECONCILE), "--root", str(copy_example(tmp_path)), "plan", "--env", "qa", "--system", "superset"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the plan was still running 20 s after it started (waiting for {waiting_for})")
    return done, time.monotonic() - started


def test_a_failed_replication_source_is_reported_without_waiting_for_a_silent_target(
    tmp_path: Path, silent_superset: str
) -> None:
    """QA never answers; prod refuses connections: the plan fails on prod, and exits without waiting for QA."""
    done, took = plan_qa(tmp_path, silent_superset, f"http://127.0.0.1:{closed_port()}", "the silent QA")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Connection refused" in done.stderr and "Traceback" not in done.stderr
    assert "secret-value" not in done.stdout + done.stderr
    assert took < 15, f"exited {took:.1f} s after it started (the client's timeout is 30 s)"


class _Handler(BaseHTTPRequestHandler):
    """QA: signs in and lists no dashboard, then never answers (the charts' listing hangs). Prod: refuses the
    sign-in half a second later (once QA's other listings have started)."""

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.server_port == _Handler.prod_port:  # type: ignore[attr-defined]
            time.sleep(0.5)
            self._answer(401, {"message": "Not authorized"})
        else:
            self._answer(200, {"access_token": "token", "refresh_token": "refresh"})

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/dashboard/"):
            self._answer(200, {"result": [], "count": 0})
        else:
            _Handler.stop.wait(60)

    prod_port = 0
    stop = threading.Event()


def test_a_failed_source_does_not_wait_for_a_target_listing_that_hangs_after_its_first_page(tmp_path: Path) -> None:
    """QA lists its dashboards, then its charts' listing never answers; prod refuses the sign-in: exit at once."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(2)]
    qa, prod = servers
    _Handler.prod_port = prod.server_port
    _Handler.stop.clear()
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done, took = plan_qa(
            tmp_path, f"http://127.0.0.1:{qa.server_port}", f"http://127.0.0.1:{prod.server_port}", "QA's charts"
        )
    finally:
        _Handler.stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "401" in done.stderr and "Traceback" not in done.stderr
    assert "secret-value" not in done.stdout + done.stderr
    assert took < 15, f"exited {took:.1f} s after it started (the client's timeout is 30 s)"
