"""`reconcile demo`: the controller's chapter, after the CLI's: git -> live, continuously, and Slack told once.

A local git repository of the demo project (its Airbyte part: the stand-ins serve every system
but Superset, and the controller applies every system an environment file names) -> `reconcile
controller` started in a thread against the Airbyte stand-ins and a local Slack stand-in -> a
commit merged, a signed push webhook, applied in seconds -> a hand edit in the live QA Airbyte:
one Slack message, printed as Slack shows it -> another drift interval: nothing new -> restarted
with an `enforce` rule: the drift is put back and the same message turns resolved, with a reply.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from reconciler.controller.app import ControllerApp, ControllerSettings, build
from reconciler.controller.http import signature
from reconciler.controller.logs import configure_logging
from reconciler.demo import Echo, _indent
from reconciler.errors import ReconcilerError
from reconciler.render.slack import SlackMessage, as_plain_text
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.slack_server import DEFAULT_TOKEN, SlackStandIn

WEBHOOK_SECRET = "demo-webhook-secret"
DRIFT_SECONDS = 1.0
WAIT_SECONDS = 60.0
CONNECTION = "app-postgres-to-lake"
HAND_CRON = "0 15 * * * ?"
STEPS = ("started", "merged", "drifted", "quiet", "enforced")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Demo",
    "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_COMMITTER_NAME": "Demo",
    "GIT_COMMITTER_EMAIL": "demo@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}
ALERT = 'environments: [{name: qa, mode: apply}]\nslack: {channel: "#data-platform"}\n'
ENFORCE = ALERT + "drift:\n  rules:\n    - {system: airbyte, policy: enforce}\n"


@dataclass(frozen=True)
class ControllerFacts:
    """What a step left behind, for the demo's test to check through the stand-ins (never the narration)."""

    app: ControllerApp
    slack: SlackStandIn
    qa: AirbyteStandIn
    revision: str


StepHook = Callable[[str, ControllerFacts], None]


def _no_hook(_step: str, _facts: ControllerFacts) -> None:
    pass


def airbyte_only(text: str) -> str:
    """An environment file cut before its first section of a system the controller's stand-ins do not serve here."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.startswith(("workloads:", "superset:")):
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


class _Repository:
    """A working clone pushing to a bare repository: the branch the controller follows."""

    def __init__(self, root: Path, scratch: Path) -> None:
        self.work, self.remote = scratch / "work", scratch / "platform.git"
        shutil.copytree(root / "specs" / "airbyte", self.work / "specs" / "airbyte")
        (self.work / "environments").mkdir(parents=True)
        for env in ("qa", "prod"):
            source = (root / "environments" / f"{env}.yaml").read_text(encoding="utf-8")
            (self.work / "environments" / f"{env}.yaml").write_text(airbyte_only(source), encoding="utf-8")
        self._git(scratch, "init", "--quiet", "--bare", "-b", "main", str(self.remote))
        self._git(scratch, "init", "--quiet", "-b", "main", str(self.work))
        self.git("remote", "add", "origin", str(self.remote))
        self.commit("The platform's Airbyte specs")

    @staticmethod
    def _git(cwd: Path, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, env={**GIT_ENV, "PATH": _path()}, capture_output=True, text=True, timeout=60
            )
        except FileNotFoundError:
            raise ReconcilerError("the controller's chapter needs the git binary on PATH") from None
        if done.returncode != 0:
            raise ReconcilerError(f"git {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def git(self, *args: str) -> str:
        return self._git(self.work, *args)

    def commit(self, message: str, edit: tuple[str, str, str] | None = None) -> str:
        if edit is not None:
            relative, old, new = edit
            path = self.work / relative
            path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "origin", "HEAD:main")
        return self.git("rev-parse", "HEAD")


def _path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


def _wait(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise ReconcilerError(f"the demo's controller: timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def _quiet_logs(path: Path) -> Iterator[None]:
    """The controller's JSON log lines go to a file in the scratch directory, not between the narration."""
    previous = structlog.get_config()
    with path.open("w", encoding="utf-8") as stream:
        configure_logging(stream=stream, json=True)
        try:
            yield
        finally:
            structlog.configure(**previous)


class _Running:
    def __init__(self, app: ControllerApp) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{app.start_server()}"
        self.thread = threading.Thread(target=app.run, name="demo-controller", daemon=True)
        self.thread.start()

    def drift_checks(self) -> float:
        labels = {"env": "qa", "phase": "drift"}
        return self.app.metrics.registry.get_sample_value("reconciler_reconcile_duration_seconds_count", labels) or 0.0

    def wait_drift_checks(self, more: int) -> None:
        target = self.drift_checks() + more
        _wait(lambda: self.drift_checks() >= target, f"{more} drift check(s)")

    def applied(self) -> str | None:
        return self.app.controller.statuses["qa"].applied

    def stop(self) -> None:
        self.app.controller.shutdown("the demo is over")
        self.thread.join(WAIT_SECONDS)


def _cron(qa: AirbyteStandIn) -> str:
    connection = next(c for c in qa.stored("connections") if c["name"] == CONNECTION and not c.get("tombstone"))
    return str(connection["schedule"].get("cronExpression"))


def _slack_view(slack: SlackStandIn) -> list[str]:
    return [as_plain_text(SlackMessage(m.text, list(m.blocks))) for m in slack.messages()]


def controller_chapter(
    root: Path, scratch: Path, environ: Mapping[str, str], qa: AirbyteStandIn, echo: Echo, hook: StepHook | None = None
) -> None:
    """Steps 10-14 of the demo: the controller following a local repository, drift told once on a local Slack."""
    after = hook or _no_hook
    repository = _Repository(root, scratch / "controller")
    with SlackStandIn() as slack, _quiet_logs(scratch / "controller" / "controller.log"):
        variables = {
            **environ,
            "RECONCILER_SLACK_TOKEN": DEFAULT_TOKEN,
            "RECONCILER_SLACK_API_URL": slack.api_url,
            "RECONCILER_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }

        def start(config: str, name: str) -> _Running:
            path = scratch / "controller" / name
            path.write_text(config, encoding="utf-8")
            settings = ControllerSettings(
                repo=str(repository.remote),
                config=path,
                poll_interval=300.0,  # what a merge needs comes by webhook
                drift_interval=DRIFT_SECONDS,
                listen="127.0.0.1:0",
                cache_dir=scratch / "controller" / "cache",
                environ=variables,
            )
            return _Running(build(settings))

        echo("\n10. The controller: `reconcile controller` follows a git branch and keeps QA at what it says.")
        echo(f"    A local repository ({repository.remote.name}) holds the project; a local Slack stand-in listens.")
        echo("    controller.yaml (drift: alert by default):")
        echo(_indent(_indent(ALERT.rstrip())))
        head = repository.git("rev-parse", "HEAD")
        before = qa.stats.writes
        running = start(ALERT, "controller.yaml")
        try:
            _wait(lambda: running.applied() == head, "the first sync")
            writes = qa.stats.writes
            echo(f"    First sync of {head[:12]}: QA already runs it. With no records of its own yet (its cache here,")
            echo("    a ConfigMap in the cluster), the controller adopts QA's objects by name and sends their secrets")
            echo(f"    once, having no fingerprint to compare them with: {writes - before} write calls.")
            after("started", ControllerFacts(running.app, slack, qa, head))

            echo("\n11. A pull request is merged: QA's app database syncs every 4 hours instead of 6.")
            merged = repository.commit(
                "QA syncs every 4 hours", ("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}')
            )
            body = json.dumps({"ref": "refs/heads/main", "after": merged}).encode()
            signed = signature(WEBHOOK_SECRET, body)
            pushed = time.monotonic()
            answer = httpx.post(
                f"{running.url}/webhook/github",
                content=body,
                headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signed},
                timeout=10,
            )
            echo(f"    GitHub's push webhook (signed with X-Hub-Signature-256): HTTP {answer.status_code}")
            _wait(lambda: running.applied() == merged, "the merged commit applied")
            echo(
                f"    Applied {time.monotonic() - pushed:.1f}s later: {qa.stats.writes - writes} write call, "
                f"{CONNECTION} now runs on {_cron(qa)!r}."
            )
            after("merged", ControllerFacts(running.app, slack, qa, merged))

            echo(f"\n12. Someone changes {CONNECTION}'s schedule by hand in the live QA Airbyte.")
            connection = next(c for c in qa.stored("connections") if c["name"] == CONNECTION)
            qa.edit(
                "connections",
                connection["connectionId"],
                {"schedule": {"scheduleType": "cron", "cronExpression": HAND_CRON}},
            )
            _wait(lambda: slack.messages(), "the drift message")
            echo(f"    The next drift check (every {DRIFT_SECONDS:g}s here, 5 min by default) posts one message:")
            for shown in _slack_view(slack):
                echo(_indent(shown))
            after("drifted", ControllerFacts(running.app, slack, qa, merged))

            posts = len(slack.calls("chat.postMessage"))
            running.wait_drift_checks(2)
            new = len(slack.calls("chat.postMessage")) - posts
            echo(f"\n13. Two more drift checks: messages in the channel: {len(slack.messages())}, new posts: {new}")
            echo("    (one message per drifted resource, keyed by environment, system, kind and name; edited")
            echo("    only when the drift changes, so a drift that lasts does not flood the channel).")
            after("quiet", ControllerFacts(running.app, slack, qa, merged))
        finally:
            running.stop()

        echo("\n14. controller.yaml gains an `enforce` rule for Airbyte; the controller restarts with it:")
        echo(_indent("drift:\n  rules:\n    - {system: airbyte, policy: enforce}"))
        running = start(ENFORCE, "controller-enforce.yaml")
        try:
            _wait(lambda: any(slack.thread(m.ts) for m in slack.messages()), "the drift put back and resolved")
            echo(f"    The drift is put back ({CONNECTION} runs on {_cron(qa)!r} again); the same message, found")
            echo("    again in the alert records kept beside the state, is edited (re-applied, then resolved):")
            for stored in slack.messages():
                echo(_indent(as_plain_text(SlackMessage(stored.text, list(stored.blocks)))))
                for reply in slack.thread(stored.ts):
                    echo(f"      ↳ thread reply: {reply.text}")
            after("enforced", ControllerFacts(running.app, slack, qa, merged))
        finally:
            running.stop()
