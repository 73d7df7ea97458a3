"""The controller put together as a user runs it: `build(settings)` with only the settings and environment variables a
user gives (RECONCILER_SLACK_TOKEN and RECONCILER_SLACK_API_URL pointing at the Slack stand-in, controller.yaml,
`state: {kubernetes: ...}` in the environment file, --leader-election against the Kubernetes stand-in), a real git
repository and the Airbyte stand-ins. Nothing is injected but the intervals; what happened is read back from the
stand-ins (messages in the Slack channel, objects in Airbyte, ConfigMaps and Leases in the cluster).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from reconciler.clients.kube.client import KubeClient
from reconciler.controller.app import ControllerApp, ControllerSettings, build
from reconciler.controller.logs import configure_logging
from reconciler.sandbox.kube_server import KubeStandIn
from reconciler.sandbox.launch import StandIns
from reconciler.sandbox.slack_server import DEFAULT_TOKEN, SlackStandIn, StoredMessage
from tests.controller.conftest import WEBHOOK_SECRET, GitRepo, signed, wait_for

SLACK = 'slack: {channel: "#data-platform"}\n'
ENFORCE = "drift:\n  rules:\n    - {system: airbyte, policy: enforce}\n"
IGNORE = "drift:\n  default: ignore\n"
SPEC_CRON = "0 0 */6 * * ?"
CANARY = "canary-pg-password-7d1e93f0"
STATE_NAMESPACE = "reconciler"
LEASE_NAMESPACE = "platform"
FINGERPRINT_KEY = "f" * 48
SHORT_LEASE = {"lease_duration": 1.0, "lease_renew_deadline": 0.5, "lease_retry_period": 0.1}
SAFETY_SECONDS = 90.0  # only so that a broken build fails instead of hanging; nothing is timed


@dataclass
class Running:
    app: ControllerApp
    thread: threading.Thread

    @property
    def status(self) -> Any:
        return self.app.controller.statuses["qa"]

    def sample(self, name: str, **labels: str) -> float:
        return self.app.metrics.registry.get_sample_value(name, labels) or 0.0

    def drift_checks(self) -> float:
        return self.sample("reconciler_reconcile_duration_seconds_count", env="qa", phase="drift")

    def wait_drift_checks(self, more: int) -> None:
        target = self.drift_checks() + more
        wait_for(lambda: self.drift_checks() >= target, f"{more} more drift checks", SAFETY_SECONDS)

    def stop(self) -> None:
        self.app.controller.shutdown("test over")
        self.thread.join(SAFETY_SECONDS)
        assert not self.thread.is_alive(), "the controller did not stop"


@dataclass
class Rig:
    repo: GitRepo
    standins: StandIns
    slack: SlackStandIn
    tmp: Path
    running: list[Running] = field(default_factory=list)

    @property
    def qa(self) -> Any:
        return self.standins.airbyte["qa"]

    def environ(self, **extra: str) -> dict[str, str]:
        return {
            **self.standins.environment(),
            "QA_APP_POSTGRES_PASSWORD": CANARY,
            "RECONCILER_SLACK_TOKEN": DEFAULT_TOKEN,
            "RECONCILER_SLACK_API_URL": self.slack.api_url,
            "RECONCILER_WEBHOOK_SECRET": WEBHOOK_SECRET,
            **extra,
        }

    def start(
        self,
        config: str = "",
        *,
        slack: str = SLACK,
        cache: str = "cache",
        drift: float = 0.3,
        poll: float = 0.2,
        environ: dict[str, str] | None = None,
        **settings: Any,
    ) -> Running:
        path = self.tmp / f"controller-{len(self.running)}.yaml"
        path.write_text(slack + config)
        app = build(
            ControllerSettings(
                repo=str(self.repo.remote),
                environments=("qa",),
                config=path,
                poll_interval=poll,
                drift_interval=drift,
                listen="127.0.0.1:0",
                cache_dir=self.tmp / cache,
                environ=environ if environ is not None else self.environ(),
                **settings,
            )
        )
        app.start_server()
        thread = threading.Thread(target=app.run, name=f"controller-{len(self.running)}", daemon=True)
        thread.start()
        running = Running(app, thread)
        self.running.append(running)
        return running

    def synced(self, controller: Running) -> None:
        head = self.repo.git("rev-parse", "HEAD")
        wait_for(lambda: controller.status.applied == head, "the first sync", SAFETY_SECONDS)

    # --- hand edits in the live QA Airbyte ---

    def connection(self, name: str = "app-postgres-to-lake") -> dict[str, Any]:
        return next(c for c in self.qa.stored("connections") if c["name"] == name and not c.get("tombstone"))

    def set_cron(self, cron: str, name: str = "app-postgres-to-lake") -> None:
        connection = self.connection(name)
        self.qa.edit(
            "connections", connection["connectionId"], {"schedule": {"scheduleType": "cron", "cronExpression": cron}}
        )

    def source(self, name: str = "app-postgres") -> dict[str, Any]:
        return next(s for s in self.qa.stored("sources") if s["name"] == name and not s.get("tombstone"))

    def connections(self) -> dict[str, dict[str, Any]]:
        return {str(c["name"]): c for c in self.qa.stored("connections") if not c.get("tombstone")}

    def live_cron(self, name: str = "app-postgres-to-lake") -> str:
        return str(self.connection(name)["schedule"].get("cronExpression"))

    # --- what Slack got ---

    def posts(self) -> list[Any]:
        return [r for r in self.slack.calls("chat.postMessage") if not r.params.get("thread_ts")]

    def replies(self) -> list[Any]:
        return [r for r in self.slack.calls("chat.postMessage") if r.params.get("thread_ts")]

    def updates(self) -> list[Any]:
        return self.slack.calls("chat.update")

    def only_message(self) -> StoredMessage:
        messages = self.slack.messages()
        assert len(messages) == 1, [m.text for m in messages]
        return messages[0]


@pytest.fixture
def rig(repo: GitRepo, standins: StandIns, tmp_path: Path) -> Iterator[Rig]:
    with SlackStandIn() as slack:
        made = Rig(repo, standins, slack, tmp_path)
        yield made
        for running in made.running:
            if running.thread.is_alive():
                running.stop()


@pytest.fixture
def kube() -> Iterator[KubeStandIn]:
    with KubeStandIn(rollout_seconds=0.2) as server:
        server.seed(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "reconciler-fingerprint", "namespace": STATE_NAMESPACE},
                "stringData": {"key": FINGERPRINT_KEY},
            }
        )
        yield server


def state_in_cluster(rig: Rig, kube: KubeStandIn, *, lock_seconds: int = 30) -> Path:
    """Commit `state: {kubernetes: ...}` into QA's environment file (the CLI and every replica share it)."""
    kubeconfig = kube.write_kubeconfig(rig.tmp / "kubeconfig", namespace=LEASE_NAMESPACE)
    state = (
        "state:\n  kubernetes:\n"
        f"    namespace: {STATE_NAMESPACE}\n"
        f"    kubeconfig: {kubeconfig}\n"
        "    fingerprintKey: {secret: reconciler-fingerprint, key: key}\n"
        f"    lockDurationSeconds: {lock_seconds}\n"
        "description:"
    )
    rig.repo.commit(
        "QA keeps its state in the cluster", rig.repo.replace("environments/qa.yaml", "description:", state)
    )
    return kubeconfig


def config_maps(kube: KubeStandIn) -> dict[str, dict[str, Any]]:
    with kube.store.lock:
        return {
            key[2]: obj
            for key, obj in kube.store.objects.items()
            if key[0] == "configmaps" and key[1] == STATE_NAMESPACE
        }


def config_map_text(obj: dict[str, Any]) -> str:
    """Everything a ConfigMap holds, its gzip'd binaryData decompressed."""
    parts = [str(value) for value in (obj.get("data") or {}).values()]
    for value in (obj.get("binaryData") or {}).values():
        raw = base64.b64decode(str(value))
        parts.append((gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode())
    return "\n".join(parts)


def lease(kube: KubeStandIn, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube.get_object(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")["spec"])


def creates(rig: Rig) -> int:
    return sum(n for route, n in rig.qa.stats.by_route.items() if route.startswith("POST /") and "token" not in route)


# --- drift -> one message, updated once, resolved once --------------------------------------------------------------


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_drift_over_five_intervals_is_one_message_updated_once_when_it_changes_and_resolved_by_a_hand_fix(
    rig: Rig,
) -> None:
    controller = rig.start()
    rig.synced(controller)
    controller.wait_drift_checks(1)
    assert rig.posts() == []  # in sync: nothing to say

    rig.set_cron("0 15 * * * ?")
    wait_for(lambda: rig.posts(), "the drift message", SAFETY_SECONDS)
    controller.wait_drift_checks(5)
    assert len(rig.posts()) == 1 and rig.updates() == []
    message = rig.only_message()
    assert "Drift" in message.text and "app-postgres-to-lake" in message.text
    assert "0 15 * * * ?" in str(message.blocks)

    rig.set_cron("0 20 * * * ?")  # the drift changes: the same message is edited
    wait_for(lambda: rig.updates(), "the message edited", SAFETY_SECONDS)
    controller.wait_drift_checks(3)
    assert len(rig.posts()) == 1 and len(rig.updates()) == 1
    assert "0 20 * * * ?" in str(rig.only_message().blocks)

    rig.set_cron(SPEC_CRON)  # someone puts it back by hand
    wait_for(lambda: rig.replies(), "the resolved reply", SAFETY_SECONDS)
    controller.wait_drift_checks(3)
    message = rig.only_message()
    assert message.text.startswith("Resolved") and len(rig.updates()) == 2
    assert [reply.text for reply in rig.slack.thread(message.ts)] == [
        "✅ Resolved: airbyte/connection/app-postgres-to-lake in qa matches the specs again"
    ]
    assert len(rig.posts()) == 1 and len(rig.replies()) == 1
    assert rig.qa.stats.writes == 5  # alert: the controller never touched the live connection


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_an_enforce_rule_puts_the_drift_back_and_the_message_turns_resolved(rig: Rig) -> None:
    controller = rig.start(ENFORCE)
    rig.synced(controller)
    writes = rig.qa.stats.writes

    rig.set_cron("0 15 * * * ?")
    wait_for(lambda: rig.replies(), "the resolved reply", SAFETY_SECONDS)
    controller.wait_drift_checks(5)
    assert rig.live_cron() == SPEC_CRON
    assert rig.qa.stats.writes == writes + 1  # put back once
    (posted,) = rig.posts()
    assert "re-applied" in posted.body.decode()  # the first message said what the controller did
    message = rig.only_message()
    assert message.text.startswith("Resolved") and len(rig.updates()) == 1 and len(rig.replies()) == 1


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_an_ignore_policy_posts_nothing(rig: Rig) -> None:
    controller = rig.start(IGNORE)
    rig.synced(controller)
    rig.set_cron("0 15 * * * ?")
    controller.wait_drift_checks(5)
    assert rig.slack.requests == []
    assert rig.live_cron() == "0 15 * * * ?"  # and nothing was put back
    assert controller.sample("reconciler_drift_resources", env="qa", system="airbyte", policy="ignore") == 0


# --- a restart mid-drift edits the same message ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["file", "configmap"])
@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_restart_mid_drift_edits_the_same_message(rig: Rig, kube: KubeStandIn, state: str) -> None:
    if state == "configmap":
        state_in_cluster(rig, kube)
    first = rig.start(cache="cache-a")
    rig.synced(first)
    rig.set_cron("0 15 * * * ?")
    wait_for(lambda: rig.posts(), "the drift message", SAFETY_SECONDS)
    first.wait_drift_checks(2)
    first.stop()

    if state == "file":
        (records,) = (rig.tmp / "cache-a").rglob("qa.alerts.json")
        assert "drift/qa/airbyte/connection/app-postgres-to-lake" in records.read_text()
    else:
        alerts = config_maps(kube)["reconciler-state-qa-alerts"]
        assert "drift/qa/airbyte/connection/app-postgres-to-lake" in config_map_text(alerts)

    rig.set_cron("0 20 * * * ?")  # changed while no controller ran
    # With file state the records are in the cache (a pod's volume); in the cluster, even a new cache finds them.
    second = rig.start(cache="cache-a" if state == "file" else "cache-b")
    wait_for(lambda: rig.updates(), "the same message edited", SAFETY_SECONDS)
    second.wait_drift_checks(3)
    assert len(rig.posts()) == 1 and len(rig.updates()) == 1
    assert "0 20 * * * ?" in str(rig.only_message().blocks)

    rig.set_cron(SPEC_CRON)
    wait_for(lambda: rig.replies(), "the resolved reply", SAFETY_SECONDS)
    assert rig.only_message().text.startswith("Resolved") and len(rig.posts()) == 1


# --- a 429 storm loses nothing and says nothing twice ---------------------------------------------------------------


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_429_storm_during_a_cycle_loses_no_message_and_sends_none_twice(rig: Rig) -> None:
    controller = rig.start()
    rig.synced(controller)
    rig.slack.storm(7, retry_after=1)  # more than one call's retries (1 + 5): the first cycle gives up part-way
    rig.set_cron("0 15 * * * ?")
    rig.set_cron("0 16 * * * ?", name="mailchimp-to-lake")
    wait_for(lambda: len(rig.posts()) == 2, "both drift messages", SAFETY_SECONDS)
    controller.wait_drift_checks(4)
    assert len(rig.slack.calls("chat.postMessage", ok=False)) == 7  # every 429 was answered, and retried
    keys = sorted(m.metadata["event_payload"]["key"] for m in rig.slack.messages() if m.metadata)
    assert keys == [
        "drift/qa/airbyte/connection/app-postgres-to-lake",
        "drift/qa/airbyte/connection/mailchimp-to-lake",
    ]
    assert len(rig.posts()) == 2 and rig.updates() == []


# --- a canary secret never leaves Airbyte's own requests ------------------------------------------------------------


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_canary_secret_is_never_in_slack_logs_metrics_alert_records_or_the_state_config_maps(
    rig: Rig, kube: KubeStandIn
) -> None:
    state_in_cluster(rig, kube)
    log = io.StringIO()
    configure_logging(stream=log, json=True)
    try:
        config = "drift:\n  rules:\n    - {system: airbyte, kind: source, policy: enforce}\n"
        slack = "slack: {notifyApplied: true, channel: data-platform}\n"
        first = rig.start(config, slack=slack, cache="cache-a")
        rig.synced(first)
        source = rig.source()
        rig.qa.edit("sources", source["sourceId"], {"configuration": {"host": "hand-edited.internal"}})
        rig.set_cron("0 15 * * * ?")
        wait_for(lambda: rig.replies(), "the source put back and resolved", SAFETY_SECONDS)
        first.wait_drift_checks(2)
        metrics = first.app.metrics.render().decode()
        first.stop()
        rotated = CANARY + "-rotated"
        environ = rig.environ(QA_APP_POSTGRES_PASSWORD=rotated)
        second = rig.start(config, slack=slack, cache="cache-b", environ=environ)
        rig.synced(second)
        wait_for(
            lambda: (
                next(s for s in rig.qa.stored("sources") if s["name"] == "app-postgres")["configuration"]["password"]
                == rotated
            ),
            "the rotated secret applied",
            SAFETY_SECONDS,
        )
        second.wait_drift_checks(2)
        metrics += second.app.metrics.render().decode()
        second.stop()
    finally:
        structlog.reset_defaults()

    assert rig.source()["configuration"]["host"] == "app-db.qa.internal"  # the source was re-applied, password and all
    slack = b"\n".join(r.body for r in rig.slack.requests).decode()
    assert "hand-edited.internal" in slack and "app-postgres-to-lake" in slack  # the payloads do carry the drift
    stored = "\n".join(config_map_text(obj) for obj in config_maps(kube).values())
    assert "app-postgres" in stored and "reconciler-state-qa-alerts" in config_maps(kube)
    logged = log.getvalue()
    assert "drift.found" in logged and "sync.applied" in logged
    for canary in (CANARY, rotated):
        assert canary not in slack
        assert canary not in logged
        assert canary not in metrics
        assert canary not in stored
        assert [path for path in rig.tmp.rglob("*") if path.is_file() and canary.encode() in path.read_bytes()] == []


# --- two replicas, one leader ---------------------------------------------------------------------------------------


def _replica_process(rig: Rig, kubeconfig: Path, identity: str, cache: str) -> subprocess.Popen[str]:
    """`reconcile controller --leader-election` as its own process, every option from RECONCILER_* variables."""
    config = rig.tmp / f"{identity}.yaml"
    config.write_text(SLACK)
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(rig.tmp / "home"),
        **rig.environ(),
        "RECONCILER_CONFIG": str(config),
        "RECONCILER_REPO": str(rig.repo.remote),
        "RECONCILER_ENVIRONMENTS": "qa",
        "RECONCILER_POLL_INTERVAL": "0.2",
        "RECONCILER_DRIFT_INTERVAL": "300",
        "RECONCILER_LISTEN": "127.0.0.1:0",
        "RECONCILER_CACHE_DIR": str(rig.tmp / cache),
        "RECONCILER_LEADER_ELECTION": "true",
        "RECONCILER_LEASE_NAMESPACE": LEASE_NAMESPACE,
        "RECONCILER_IDENTITY": identity,
        "RECONCILER_KUBECONFIG": str(kubeconfig),
        "RECONCILER_LEASE_DURATION": "1.5",
        "RECONCILER_LEASE_RENEW_DEADLINE": "1",
        "RECONCILER_LEASE_RETRY_PERIOD": "0.2",
    }
    reconcile = str(Path(sys.executable).with_name("reconcile"))
    log = (rig.tmp / f"{identity}.log").open("w")
    return subprocess.Popen([reconcile, "controller"], env=environ, stdout=log, stderr=log, text=True)


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_two_replicas_one_leads_and_applies_and_after_a_kill_the_other_takes_over_without_doing_anything_twice(
    rig: Rig, kube: KubeStandIn
) -> None:
    kubeconfig = state_in_cluster(rig, kube)
    head = rig.repo.git("rev-parse", "HEAD")
    first = _replica_process(rig, kubeconfig, "replica-a", "cache-a")
    try:
        wait_for(lambda: first.poll() is not None or _holder(kube) == "replica-a", "replica-a leading", SAFETY_SECONDS)
        assert first.poll() is None, (rig.tmp / "replica-a.log").read_text()
        second = rig.start(
            cache="cache-b", leader_election=True, lease_namespace=LEASE_NAMESPACE, identity="replica-b",
            kubeconfig=str(kubeconfig), lease_duration=1.5, lease_renew_deadline=1.0, lease_retry_period=0.2,
        )  # fmt: skip
        wait_for(lambda: len(rig.connections()) == 2, "replica-a applied the commit", SAFETY_SECONDS)
        wait_for(lambda: _holder(kube) == "replica-a" and second.app.controller.waiting_to_lead, "b waiting")
        transitions = lease(kube, LEASE_NAMESPACE, "reconciler-leader").get("leaseTransitions", 0)
        assert second.sample("reconciler_leader") == 0 and creates(rig) == 5
        assert second.status.attempted is None  # the follower did nothing, not even a plan
    finally:
        first.send_signal(signal.SIGKILL)  # no release: the other must wait for the Lease to expire
        first.wait(SAFETY_SECONDS)

    wait_for(lambda: second.sample("reconciler_leader") == 1, "replica-b leading", SAFETY_SECONDS)
    assert _holder(kube) == "replica-b"
    assert lease(kube, LEASE_NAMESPACE, "reconciler-leader")["leaseTransitions"] == transitions + 1
    wait_for(lambda: second.status.applied == head, "replica-b synced the same commit", SAFETY_SECONDS)
    assert creates(rig) == 5 and rig.qa.stats.writes == 5  # the records in the ConfigMaps: nothing to redo

    newer = rig.repo.commit("QA every 4 hours", rig.repo.replace("environments/qa.yaml", "*/6", "*/4"))
    wait_for(lambda: second.status.applied == newer, "replica-b applied the next commit", SAFETY_SECONDS)
    assert rig.live_cron() == "0 0 */4 * * ?" and creates(rig) == 5 and rig.qa.stats.writes == 6


def _holder(kube: KubeStandIn) -> str | None:
    try:
        return lease(kube, LEASE_NAMESPACE, "reconciler-leader").get("holderIdentity")
    except Exception:  # not created yet
        return None


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_leader_that_loses_its_lease_mid_apply_starts_no_new_action(rig: Rig, kube: KubeStandIn) -> None:
    kubeconfig = kube.write_kubeconfig(rig.tmp / "kubeconfig", namespace=LEASE_NAMESPACE)
    rig.qa.write_latency_seconds = 2.0  # each create takes a while: the lease deadline passes during the first ones
    lost_at_writes: list[int] = []

    def disrupt_at_first_write() -> bool:
        if rig.qa.stats.writes >= 1:
            kube.disrupt("leases", status=503)
            lost_at_writes.append(rig.qa.stats.writes)
            return True
        return False

    controller = rig.start(
        leader_election=True, lease_namespace=LEASE_NAMESPACE, identity="replica-a", kubeconfig=str(kubeconfig),
        **SHORT_LEASE,
    )  # fmt: skip
    wait_for(disrupt_at_first_write, "the apply's first write", SAFETY_SECONDS)
    wait_for(lambda: controller.status.result == "cancelled", "the apply stopped", SAFETY_SECONDS)
    wait_for(lambda: controller.app.controller.waiting_to_lead, "back to waiting for the Lease", SAFETY_SECONDS)
    assert controller.sample("reconciler_leader") == 0
    done = rig.qa.stats.writes
    assert done == 3  # the sources and the destination were running; the connections never started
    assert rig.connections() == {}
    for _ in range(10):  # ten more retry periods without the Lease: nothing new
        wait_for(lambda: controller.app.controller.waiting_to_lead, "waiting")
    assert rig.qa.stats.writes == done

    kube.restore()
    rig.qa.write_latency_seconds = 0.0
    head = rig.repo.git("rev-parse", "HEAD")
    wait_for(lambda: controller.status.applied == head, "the next term finished the apply", SAFETY_SECONDS)
    assert set(rig.connections()) == {"app-postgres-to-lake", "mailchimp-to-lake"}
    assert creates(rig) == 5  # nothing created twice


# --- the CLI and the controller never apply at once -----------------------------------------------------------------


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_cli_apply_while_the_controller_applies_is_refused_and_nothing_is_duplicated(
    rig: Rig, kube: KubeStandIn
) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    state_in_cluster(rig, kube)
    rig.qa.write_latency_seconds = 1.0
    controller = rig.start()
    wait_for(
        lambda: _lock_holder(kube) and rig.qa.stats.writes >= 1,
        "the controller applying under the lock",
        SAFETY_SECONDS,
    )
    refused = CliRunner().invoke(
        main,
        ["--root", str(rig.repo.work), "apply", "--env", "qa", "--auto-approve"],
        env=rig.environ(),
        catch_exceptions=False,
    )
    assert refused.exit_code == 1, refused.output
    assert (
        "Error: environment qa is locked by pid" in refused.output and "(reconcile controller, since" in refused.output
    )
    rig.qa.write_latency_seconds = 0.0
    rig.synced(controller)
    assert creates(rig) == 5 and rig.qa.stats.writes == 5

    # and the other way round: a CLI apply holding the lock makes the controller wait and retry, not duplicate
    rig.qa.write_latency_seconds = 1.0
    newer = rig.repo.commit("QA every 4 hours", rig.repo.replace("environments/qa.yaml", "*/6", "*/4"))
    reconcile = str(Path(sys.executable).with_name("reconcile"))
    cli = subprocess.Popen(
        [reconcile, "--root", str(rig.repo.work), "apply", "--env", "qa", "--auto-approve"],
        env={"PATH": os.environ["PATH"], "HOME": str(rig.tmp / "home"), **rig.environ()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = cli.communicate(timeout=SAFETY_SECONDS)
    rig.qa.write_latency_seconds = 0.0
    wait_for(lambda: controller.status.applied == newer, "the controller applied the commit", SAFETY_SECONDS)
    assert rig.live_cron() == "0 0 */4 * * ?"
    assert cli.returncode == 0 or "Error: environment qa is locked by pid" in output, output
    assert creates(rig) == 5
    assert rig.qa.stats.writes == 6, output  # the one update, made by whichever got the lock first


def _lock_holder(kube: KubeStandIn) -> str | None:
    try:
        return lease(kube, STATE_NAMESPACE, "reconciler-state-qa-lock").get("holderIdentity")
    except Exception:
        return None


# --- a push webhook that reaches the standby --------------------------------------------------------------------------

STANDBY_LEASE = {"lease_duration": 1.5, "lease_renew_deadline": 1.0, "lease_retry_period": 0.2}
STORM_LEASE = {"lease_duration": 4.5, "lease_renew_deadline": 3.0, "lease_retry_period": 0.6}
"""Production's 15/10/2 scaled down: with 1 s the burst's threads, both replicas and the stand-ins sharing one
process (and two cores) starve the renewal thread itself now and then, whatever the Lease sees."""
POLL_REQUEST = "reconciler.io/poll-requested"


def _push(replica: Running, after: str, *, secret: str = WEBHOOK_SECRET, body: bytes | None = None) -> int:
    payload = json.dumps({"ref": "refs/heads/main", "after": after}).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(payload, secret)}
    assert replica.app.server is not None
    url = f"http://127.0.0.1:{replica.app.server.port}/webhook/github"
    return httpx.post(url, content=payload if body is None else body, headers=headers, timeout=30).status_code


def _replica(rig: Rig, kubeconfig: Path, identity: str, **settings: Any) -> Running:
    return rig.start(
        cache=f"cache-{identity}", poll=600, leader_election=True, lease_namespace=LEASE_NAMESPACE,
        identity=identity, kubeconfig=str(kubeconfig), **{**STANDBY_LEASE, **settings},
    )  # fmt: skip


def _poll_request(kube: KubeStandIn) -> str:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/reconciler-leader"
    return str((kube.get_object(path)["metadata"].get("annotations") or {}).get(POLL_REQUEST, ""))


def _lease_updates(kube: KubeStandIn, identity: str) -> int:
    return sum(1 for verb, *_ in list(kube.audit_by_agent[f"reconciler/{identity}"]) if verb == "update")


def test_a_push_webhook_to_the_standby_has_the_leader_apply_the_commit_long_before_its_next_poll(
    rig: Rig, kube: KubeStandIn
) -> None:
    kubeconfig = kube.write_kubeconfig(rig.tmp / "kubeconfig", namespace=LEASE_NAMESPACE)
    leader = _replica(rig, kubeconfig, "replica-a")
    rig.synced(leader)  # its term's first poll; the next one is 600 s away
    standby = _replica(rig, kubeconfig, "replica-b")
    wait_for(lambda: standby.app.controller.waiting_to_lead, "replica-b waiting for the Lease", SAFETY_SECONDS)
    polls = leader.sample("reconciler_git_request_total", request_type="ls-remote")

    newer = rig.repo.commit("QA every 4 hours", rig.repo.replace("environments/qa.yaml", "*/6", "*/4"))
    assert _push(standby, newer) == 202  # the Service sent GitHub's delivery to the standby
    wait_for(lambda: leader.status.applied == newer, "the leader applied the pushed commit", SAFETY_SECONDS)
    assert rig.live_cron() == "0 0 */4 * * ?"
    assert leader.sample("reconciler_git_request_total", request_type="ls-remote") == polls + 1
    assert _poll_request(kube).startswith(newer + "@")
    assert (
        standby.status.attempted is None
        and standby.sample("reconciler_git_request_total", request_type="ls-remote") == 0
    )
    assert _holder(kube) == "replica-a" and lease(kube, LEASE_NAMESPACE, "reconciler-leader")["leaseTransitions"] == 0
    calls = set(kube.audit_by_agent["reconciler/replica-b"])  # within the chart's RBAC: leases get and update
    assert calls == {(verb, "coordination.k8s.io", "leases", LEASE_NAMESPACE) for verb in ("get", "update")}


def test_a_webhook_with_a_bad_signature_on_the_standby_writes_nothing_to_the_lease(rig: Rig, kube: KubeStandIn) -> None:
    kubeconfig = kube.write_kubeconfig(rig.tmp / "kubeconfig", namespace=LEASE_NAMESPACE)
    KubeClient.from_kubeconfig(str(kubeconfig)).create_lease_record(LEASE_NAMESPACE, "reconciler-leader", "gone", 3600)
    standby = _replica(rig, kubeconfig, "replica-b")  # a leader elsewhere holds the Lease (here: one that went quiet)
    wait_for(lambda: standby.app.controller.waiting_to_lead, "replica-b waiting for the Lease", SAFETY_SECONDS)
    forged = "f" * 40
    tampered = json.dumps({"ref": "refs/heads/main", "after": "e" * 40}).encode()
    assert _push(standby, forged, secret="not-the-secret") == 401
    assert _push(standby, forged, body=tampered) == 401  # signed for another body
    answer = httpx.post(
        f"http://127.0.0.1:{standby.app.server.port}/webhook/github",  # type: ignore[union-attr]
        content=tampered,
        headers={"X-GitHub-Event": "push"},
        timeout=30,
    )
    assert answer.status_code == 401  # no signature at all

    head = rig.repo.git("rev-parse", "HEAD")
    assert _push(standby, head) == 202
    wait_for(lambda: _poll_request(kube), "the signed push's poll request", SAFETY_SECONDS)
    assert _poll_request(kube).startswith(head + "@")
    assert _lease_updates(kube, "replica-b") == 1  # the signed one only
    assert lease(kube, LEASE_NAMESPACE, "reconciler-leader")["holderIdentity"] == "gone"


def test_a_storm_of_fifty_deliveries_on_the_standby_makes_few_lease_writes_and_costs_no_leadership(
    rig: Rig, kube: KubeStandIn
) -> None:
    kubeconfig = kube.write_kubeconfig(rig.tmp / "kubeconfig", namespace=LEASE_NAMESPACE)
    leader = _replica(rig, kubeconfig, "replica-a", **STORM_LEASE)
    rig.synced(leader)
    standby = _replica(rig, kubeconfig, "replica-b", **STORM_LEASE)
    wait_for(lambda: standby.app.controller.waiting_to_lead, "replica-b waiting for the Lease", SAFETY_SECONDS)
    newer = rig.repo.commit("QA every 4 hours", rig.repo.replace("environments/qa.yaml", "*/6", "*/4"))
    before = _lease_updates(kube, "replica-b")

    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=50) as pool:  # GitHub's redeliveries, or someone replaying a signed one
            answers = list(pool.map(lambda n: _push(standby, newer if n % 2 else f"{n:040x}"), range(50)))
        assert answers == [202] * 50
        wait_for(lambda: leader.status.applied == newer, "the leader applied the pushed commit", SAFETY_SECONDS)
        writes = _lease_updates(kube, "replica-b") - before
        elapsed = time.monotonic() - started

    # At most one write per retry period (the leader reads no faster), the first at once; a 409 retry may add one.
    assert 1 <= writes <= 2 + elapsed / STORM_LEASE["lease_retry_period"], (writes, elapsed)
    assert writes < 50
    events = [entry["event"] for entry in logs]
    assert "leader.lost" not in events and "leader.elected" not in events and "leader.took_over" not in events
    assert leader.app.controller.leadership.leading and standby.app.controller.waiting_to_lead
    assert _holder(kube) == "replica-a" and lease(kube, LEASE_NAMESPACE, "reconciler-leader")["leaseTransitions"] == 0
    assert creates(rig) == 5 and rig.qa.stats.writes == 6  # the one update, once
