"""`reconcile controller` as a process: it follows a real repository, answers its probes, stops cleanly on SIGTERM,
and no secret it holds reaches a log line, a metric or the state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from reconciler.sandbox.launch import StandIns
from reconciler.sandbox.local_servers import free_port
from tests.controller.conftest import GitRepo, signed, wait_for

RECONCILE = str(Path(sys.executable).with_name("reconcile"))
CANARIES = {
    "RECONCILER_GIT_TOKEN": "canary-git-token-7d1e",
    "RECONCILER_WEBHOOK_SECRET": "canary-webhook-secret-93ab",
    "QA_APP_POSTGRES_PASSWORD": "canary-postgres-password-c0de",
}


def controller_env(standins: StandIns, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        **standins.environment(),
        **CANARIES,
        "RECONCILER_ENVIRONMENTS": "qa",
        **extra,
    }


def test_the_command_follows_the_repository_and_stops_cleanly_on_sigterm(
    repo: GitRepo, standins: StandIns, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = controller_env(standins, tmp_path, RECONCILER_REPO=str(repo.remote), RECONCILER_LISTEN=f"127.0.0.1:{port}")
    command = [
        RECONCILE,
        "controller",
        "--poll-interval",
        "0.2",
        "--drift-interval",
        "0.3",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with httpx.Client(timeout=5) as http:

            def ready() -> bool:
                try:
                    return http.get(f"{url}/readyz").status_code == 200
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                    return False

            wait_for(ready, "the first sync")
            connection = next(
                c for c in standins.airbyte["qa"].stored("connections") if c["name"] == "mailchimp-to-lake"
            )
            schedule = {"schedule": {"scheduleType": "cron", "cronExpression": "0 0 5 * * ?"}}
            standins.airbyte["qa"].edit("connections", str(connection["connectionId"]), schedule)
            wait_for(
                lambda: 'policy="alert",system="airbyte"} 1.0' in http.get(f"{url}/metrics").text,
                "the drift in the metrics",
            )
            body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
            headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body, "wrong")}
            assert http.post(f"{url}/webhook/github", content=body, headers=headers).status_code == 401
            headers["X-Hub-Signature-256"] = signed(body, CANARIES["RECONCILER_WEBHOOK_SECRET"])
            assert http.post(f"{url}/webhook/github", content=body, headers=headers).status_code == 202
            metrics = http.get(f"{url}/metrics").text
            assert http.get(f"{url}/healthz").status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err.decode()
    lines = err.decode().splitlines()
    events = [json.loads(line) for line in lines]  # stderr is no terminal: one JSON object a line
    names = [event["event"] for event in events]
    assert "sync.applied" in names and "drift.found" in names and "webhook.refused" in names
    assert names[-1] == "controller.stopped"
    drift = next(event for event in events if event["event"] == "drift.found")
    assert (drift["env"], drift["system"], drift["resource"]) == ("qa", "airbyte", "connection/mailchimp-to-lake")
    assert len(drift["revision"]) == 40
    state = "".join(path.read_text() for path in (tmp_path / "c").rglob("*.json"))
    assert "qa" in state
    for name, canary in CANARIES.items():
        for where, text in (("stdout", out.decode()), ("stderr", err.decode()), ("metrics", metrics), ("state", state)):
            assert canary not in text, f"{name} in {where}"


def test_once_syncs_then_exits_with_what_happened(repo: GitRepo, standins: StandIns, tmp_path: Path) -> None:
    base = [RECONCILE, "controller", "--repo", str(repo.remote), "--once", "--cache-dir", str(tmp_path / "c")]
    done = subprocess.run(base, env=controller_env(standins, tmp_path), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert len([c for c in standins.airbyte["qa"].stored("connections") if not c.get("tombstone")]) == 2
    failing = controller_env(standins, tmp_path, AIRBYTE_PROD_CLIENT_SECRET="wrong", RECONCILER_ENVIRONMENTS="prod")
    done = subprocess.run(base, env=failing, capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "sign-in failed" in done.stderr.decode()


def test_a_bad_controller_yaml_is_an_error_naming_file_and_line(
    repo: GitRepo, standins: StandIns, tmp_path: Path
) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text("environments:\n  - name: qa\n    mode: sometimes\n")
    command = [RECONCILE, "controller", "--repo", str(repo.remote), "--config", str(config), "--once"]
    done = subprocess.run(command, env=controller_env(standins, tmp_path), capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"{config}:3: environments.0.mode:" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
    assert standins.airbyte["qa"].stats.total == 0
