"""Ctrl-C during an apply stops it gracefully: the running action ends and is recorded, no new one starts, the
error says it was interrupted, and the next apply carries on without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import Project

SAFETY_SECONDS = 120  # only so that a broken build fails instead of hanging


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_ctrl_c_stops_the_apply_after_the_running_action_and_a_rerun_carries_on(project: Project) -> None:
    project.prod.latency_seconds = 0.3
    command = [sys.executable, "-m", "reconciler.cli", "--root", str(project.root), "apply", "--env", "prod"]
    # two at a time: actions are still waiting to start once the first is done (at the default 10, every one of
    # them may have started within milliseconds of that line, before the SIGINT arrives)
    command += ["--system", "airbyte", "--auto-approve", "--parallelism", "2"]
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **project.environ}
    )
    try:
        assert first.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + SAFETY_SECONDS
        while time.monotonic() < deadline:
            seen.append(first.stdout.readline())
            assert seen[-1], "".join(seen)
            if seen[-1].rstrip().endswith(" done"):
                break
        first.send_signal(signal.SIGINT)
        rest = first.stdout.read()
        assert first.wait(timeout=SAFETY_SECONDS) == 1
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    output = "".join(seen) + rest
    assert "Traceback" not in output
    assert "Apply cancelled:" in output and "interrupted by SIGINT before" in output, output
    done = [line.split()[2] for line in output.splitlines() if line.endswith(" done")]
    state = json.loads((project.root / ".reconciler" / "state" / "prod.json").read_text())
    assert set(done) <= set(state["resources"])  # everything done was recorded

    project.prod.latency_seconds = 0.0
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    for kind in ("sources", "destinations", "connections"):
        names = [str(item["name"]) for item in project.prod.stored(kind) if not item.get("tombstone")]
        assert len(names) == len(set(names)), names
    assert "No changes." in project.run("plan", "--env", "prod").output
