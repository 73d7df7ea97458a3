"""Benchmark: `reconcile controller` at rest with ~1,000 managed Airbyte resources, and a webhook's time to apply.

The controller runs as its own process against the Airbyte stand-in (in this process), following a
local git repository of a generated fleet project. Printed: the first sync's wall time; over
`--seconds` at rest (polls and drift checks at the given intervals, nothing to change) the CPU
seconds the controller used and its RSS; its peak RSS over the whole run; then the time from a
signed push webhook to the new commit applied (read from /metrics). A figure, not a test.

    .venv/bin/python bench/controller_idle.py                          # 505 connections: 1,010 resources, 60 s
    .venv/bin/python bench/controller_idle.py --connections 100 --seconds 20 --drift-interval 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from reconciler.controller.http import signature
from reconciler.sandbox.airbyte_fleet import fleet_environ, write_fleet
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.launch import CLIENT_ID, CLIENT_SECRET
from reconciler.sandbox.local_servers import free_port

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
SECRET = "bench-webhook-secret"
TICKS = os.sysconf("SC_CLK_TCK")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    ).stdout.strip()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def memory_mib(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def applied_revision(http: httpx.Client, url: str) -> str | None:
    for line in http.get(f"{url}/metrics").text.splitlines():
        if line.startswith("reconciler_applied_revision_info{"):
            return line.split('revision="', 1)[1].split('"', 1)[0]
    return None


def wait(condition: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=float, default=60.0)
    parser.add_argument("--drift-interval", type=float, default=300.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-controller-") as scratch:
        base = Path(scratch)
        work, remote = base / "work", base / "remote.git"
        work.mkdir()
        resources = write_fleet(work, args.connections)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-qm", "fleet")
        git(work, "push", "-q", str(remote), "HEAD:main")
        server = AirbyteStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(base / "home"),
            **fleet_environ(server.url),
            "RECONCILER_WEBHOOK_SECRET": SECRET,
        }
        command = [
            str(Path(sys.executable).with_name("reconcile")), "controller", "--repo", str(remote),
            "--env", "bench", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(base / "cache"),
            "--poll-interval", str(args.poll_interval), "--drift-interval", str(args.drift_interval),
        ]  # fmt: skip
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=(base / "log").open("w"))
        http = httpx.Client(timeout=30)
        try:

            def ready() -> bool:
                try:
                    return http.get(f"{url}/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            wait(ready, "the first sync", 600)
            first_sync = time.monotonic() - started
            cpu_before, requests_before = cpu_seconds(process.pid), server.stats.total
            time.sleep(args.seconds)
            idle_cpu = cpu_seconds(process.pid) - cpu_before
            idle_requests = server.stats.total - requests_before
            memory = memory_mib(process.pid)

            text = (work / "specs" / "airbyte" / "fleet.yaml").read_text()
            (work / "specs" / "airbyte" / "fleet.yaml").write_text(text.replace("0 0 0 * * ?", "0 30 0 * * ?", 1))
            git(work, "commit", "-qam", "one schedule")
            git(work, "push", "-q", str(remote), "HEAD:main")
            sha = git(work, "rev-parse", "HEAD")
            body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
            signed = signature(SECRET, body)
            pushed = time.monotonic()
            answer = http.post(
                f"{url}/webhook/github",
                content=body,
                headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signed},
            )
            assert answer.status_code == 202, answer.text
            wait(lambda: applied_revision(http, url) == sha, "the pushed commit applied", 600)
            webhook_to_applied = time.monotonic() - pushed
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            server.stop()
        print(f"controller, {resources} managed Airbyte resources (poll {args.poll_interval:g} s, drift "
              f"{args.drift_interval:g} s)")  # fmt: skip
        print(f"  first sync (creates everything):  {first_sync:.1f} s")
        print(f"  at rest for {args.seconds:g} s:          {idle_cpu:.2f} CPU s, {idle_requests} Airbyte requests")
        print(f"  RSS after rest / peak:            {memory['VmRSS']:.0f} MiB / {memory['VmHWM']:.0f} MiB")
        print(f"  webhook -> commit applied:        {webhook_to_applied:.2f} s")
        print(f"  exit code after SIGTERM:          {code}")


if __name__ == "__main__":
    main()
