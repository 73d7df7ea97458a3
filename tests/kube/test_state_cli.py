"""The CLI with `state: {kubernetes: ...}`: plan/apply keep their records in ConfigMaps and lock with a Lease."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.alerts import AlertRecord, FileAlertStore
from reconciler.clients.kube.alert_store import KubeAlertStore
from reconciler.clients.kube.client import KubeClient
from reconciler.clients.kube.lease_lock import KubeLeaseLock
from reconciler.lock import LockHolder
from reconciler.sandbox.kube_server import KubeStandIn
from reconciler.sandbox.launch import DEMO_SECRETS, running_standins
from reconciler.service.session import alert_store, open_alert_store, open_session
from tests.helpers import Project, copy_example

STATE_NAMESPACE = "reconciler"
FINGERPRINT_KEY = "k" * 48
SAFETY_SECONDS = 60  # only so that a broken build fails instead of hanging; nothing is timed


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        assert standins.kube is not None and standins.kubeconfig is not None
        standins.kube.seed(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "reconciler-fingerprint", "namespace": STATE_NAMESPACE},
                "stringData": {"key": FINGERPRINT_KEY},
            }
        )
        state = (
            "state:\n  kubernetes:\n"
            f"    namespace: {STATE_NAMESPACE}\n"
            f"    kubeconfig: {standins.kubeconfig}\n"
            "    fingerprintKey: {secret: reconciler-fingerprint, key: key}\n"
            "description:"
        )
        project = Project(root, standins, standins.environment(), systems=("airbyte",))
        project.edit("environments/qa.yaml", "description:", state)
        yield project


def kube_of(project: Project) -> KubeStandIn:
    assert project.standins.kube is not None
    return project.standins.kube


def state_config_maps(project: Project) -> dict[str, dict[str, Any]]:
    kube = kube_of(project)
    with kube.store.lock:
        return {
            key[2]: obj
            for key, obj in kube.store.objects.items()
            if key[0] == "configmaps" and key[1] == STATE_NAMESPACE
        }


def test_plan_and_apply_keep_the_records_in_config_maps_and_a_second_apply_writes_nothing(project: Project) -> None:
    planned = project.run("plan", "--env", "qa")
    assert planned.exit_code == 0, planned.output
    assert "Plan for qa: 5 to create" in planned.output

    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert not (project.root / ".reconciler" / "state" / "qa.json").exists()
    assert not (project.root / ".reconciler" / "keys").exists()  # the key came from the Secret
    stored = state_config_maps(project)
    assert sorted(stored) == ["reconciler-state-qa", "reconciler-state-qa-1"]
    shard = base64.b64decode(str(stored["reconciler-state-qa-1"]["binaryData"]["records.json.gz"]))
    assert b"app-postgres" not in shard  # compressed, not plain JSON

    kube_of(project).stats.reset()
    project.qa.stats.reset()
    again = project.run("apply", "--env", "qa", "--auto-approve")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.output
    assert project.qa.stats.writes == 0
    writes = {route: n for route, n in kube_of(project).stats.by_route.items() if not route.startswith("GET")}
    assert set(writes) == {"PUT leases/{name}"}  # the lock taken and given back; no ConfigMap written

    lease = kube_of(project).get_object(
        f"/apis/coordination.k8s.io/v1/namespaces/{STATE_NAMESPACE}/leases/reconciler-state-qa-lock"
    )
    assert lease["spec"].get("holderIdentity") is None  # released after the apply


def test_an_apply_while_another_run_holds_the_lease_is_refused_naming_it(project: Project) -> None:
    assert project.standins.kubeconfig is not None
    kube = KubeClient.from_kubeconfig(str(project.standins.kubeconfig))
    controller = KubeLeaseLock(kube, STATE_NAMESPACE, "reconciler-state-qa-lock", "qa", duration_s=30)
    controller.acquire(LockHolder(1, "reconciler-7c9f-x2", "reconcile controller", "2026-11-29T12:00:00Z"))
    try:
        refused = project.run("apply", "--env", "qa", "--auto-approve")
        assert refused.exit_code == 1
        assert (
            "Error: environment qa is locked by pid 1 on host reconciler-7c9f-x2 (reconcile controller, since "
            "2026-11-29T12:00:00Z) (Lease reconciler/reconciler-state-qa-lock)"
        ) in refused.output
        assert "Traceback" not in refused.output
        assert project.qa.stats.writes == 0
        assert project.run("plan", "--env", "qa").exit_code == 0  # planning takes no lock
    finally:
        controller.release()
        kube.close()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0


def test_state_path_and_kubernetes_together_are_refused_at_their_line(project: Project) -> None:
    project.edit("environments/qa.yaml", "state:\n", "state:\n  path: .reconciler/state/qa.json\n")
    refused = project.run("plan", "--env", "qa")
    assert refused.exit_code == 1
    assert "environments/qa.yaml:" in refused.output
    assert "path and kubernetes are mutually exclusive" in refused.output and "Traceback" not in refused.output
    assert project.qa.stats.total == 0


def test_without_a_shared_fingerprint_key_nothing_runs(project: Project) -> None:
    project.edit("environments/qa.yaml", "    fingerprintKey: {secret: reconciler-fingerprint, key: key}\n", "")
    refused = project.run("apply", "--env", "qa", "--auto-approve")
    assert refused.exit_code == 1
    assert "state.kubernetes needs a fingerprint key every run shares" in refused.output
    assert "RECONCILER_FINGERPRINT_KEY is not set" in refused.output and "Traceback" not in refused.output
    assert project.qa.stats.total == 0
    assert project.run("apply", "--env", "qa", "--auto-approve", RECONCILER_FINGERPRINT_KEY="x" * 40).exit_code == 0


def test_a_missing_fingerprint_secret_is_a_clear_error_without_its_value(project: Project) -> None:
    project.edit("environments/qa.yaml", "key: key}", "key: other}")
    refused = project.run("plan", "--env", "qa")
    assert refused.exit_code == 1
    assert "cannot read the fingerprint key (secret reconciler/reconciler-fingerprint key 'other')" in refused.output
    assert FINGERPRINT_KEY not in refused.output and "Traceback" not in refused.output


def test_the_alert_records_live_beside_the_state(project: Project) -> None:
    with open_session(project.root, "qa", project.environ, systems=["airbyte"]) as session:
        alerts = alert_store(session)
        assert isinstance(alerts, KubeAlertStore) and alerts.name == "reconciler-state-qa-alerts"
        assert alerts.load() == {}
    with open_session(project.root, "prod", project.environ, systems=["airbyte"]) as session:
        alerts = alert_store(session)
        assert isinstance(alerts, FileAlertStore)
        assert alerts.path == project.root / ".reconciler" / "state" / "prod.alerts.json"
    record = AlertRecord("drift/qa/airbyte/connection/x", "C1", "1.2", "d")
    with open_alert_store(project.root, "qa", project.environ) as alerts:  # between sessions: no system connected
        alerts.load()
        alerts.save({record.key: record})
    with open_alert_store(project.root, "qa", project.environ) as alerts:
        assert isinstance(alerts, KubeAlertStore) and alerts.load() == {record.key: record}
    assert project.qa.stats.total == 0


def test_the_state_holds_fingerprints_never_secret_values(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    with open_session(project.root, "qa", project.environ, systems=["airbyte"]) as session:
        records = session.state.load()
    assert "airbyte.connection/app-postgres-to-lake" in {str(key) for key in records}
    assert any(record.fingerprints for record in records.values())
    stored = json.dumps({str(k): [r.id, dict(r.fingerprints)] for k, r in records.items()})
    for cm in state_config_maps(project).values():
        for blob in (cm.get("binaryData") or {}).values():
            stored += gzip.decompress(base64.b64decode(blob)).decode()
        stored += json.dumps(cm.get("data") or {})
    for variable, value in DEMO_SECRETS.items():
        assert value not in stored, variable


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_dead_holders_lease_expires_and_the_next_apply_takes_it_over_saying_so(project: Project) -> None:
    project.edit(
        "environments/qa.yaml", "    namespace: reconciler\n", "    namespace: reconciler\n    lockDurationSeconds: 1\n"
    )
    script = (
        "import time\n"
        "from reconciler.clients.kube.client import KubeClient\n"
        "from reconciler.clients.kube.lease_lock import KubeLeaseLock\n"
        "from reconciler.lock import LockHolder\n"
        f"kube = KubeClient.from_kubeconfig({str(project.standins.kubeconfig)!r})\n"
        f"lock = KubeLeaseLock(kube, {STATE_NAMESPACE!r}, 'reconciler-state-qa-lock', 'qa', duration_s=1)\n"
        "lock.acquire(LockHolder.current('reconcile apply'))\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = project.run("apply", "--env", "qa", "--auto-approve")
        assert refused.exit_code == 1 and f"locked by pid {holder.pid} on host " in refused.output
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # killed mid-apply: its lease is never released
        holder.wait()
    deadline = time.monotonic() + SAFETY_SECONDS
    while (applied := project.run("apply", "--env", "qa", "--auto-approve")).exit_code != 0:
        assert "is locked by" in applied.output and time.monotonic() < deadline, applied.output
        time.sleep(0.2)
    assert f"took over the lock of environment qa left by pid {holder.pid} on host " in applied.output
    assert "Plan for qa: 5 to create" in applied.output
