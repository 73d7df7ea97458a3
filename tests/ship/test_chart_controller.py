"""The chart's Deployment and ConfigMap applied to the Kubernetes stand-in, and the controller started with the
exact arguments and environment the chart gives its container, reaching ready and taking the leader Lease.

Written against the controller's contract (`reconcile controller`, RECONCILER_* variables, GET /readyz); skipped
until the controller is merged. The stand-in serves no RBAC objects, so the Roles are checked by test_chart.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reconciler.sandbox.kube_server import KubeStandIn
from tests.ship.chart import NAMESPACE, REQUIRED, merged, render
from tests.ship.test_chart import granted

RECONCILE = Path(sys.executable).parent / "reconcile"


def _controller_exists() -> bool:
    try:
        found = subprocess.run([str(RECONCILE), "controller", "--help"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0


pytestmark = pytest.mark.skipif(not _controller_exists(), reason="`reconcile controller` is not merged yet")

POD = "rec-reconciler-7d9f8b-x2k4q"
SECRETS = {("reconciler-fingerprint", "fingerprint-key"): "f" * 64}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def specs_repository(tmp_path: Path, kubeconfig: Path) -> Path:
    """A git repository whose only environment keeps its state in the stand-in (no live system to reach)."""
    repo = tmp_path / "specs-repo"
    (repo / "environments").mkdir(parents=True)
    (repo / "specs").mkdir()
    (repo / "environments" / "qa.yaml").write_text(
        yaml.safe_dump(
            {"environment": "qa", "state": {"kubernetes": {"namespace": "reconciler", "kubeconfig": str(kubeconfig)}}}
        )
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "qa")
    return repo


def container_environment(env: list[dict[str, Any]]) -> dict[str, str]:
    """The variables the kubelet would give the container: values, the downward API, the named Secrets."""
    resolved: dict[str, str] = {}
    for variable in env:
        if "value" in variable:
            resolved[variable["name"]] = str(variable["value"])
            continue
        source = variable["valueFrom"]
        if "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            resolved[variable["name"]] = {"metadata.namespace": NAMESPACE, "metadata.name": POD}[field]
        else:
            ref = source["secretKeyRef"]
            resolved[variable["name"]] = SECRETS[(ref["name"], ref["key"])]
    return resolved


@pytest.fixture
def kube() -> Iterator[KubeStandIn]:
    with KubeStandIn() as server:
        yield server


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_charts_deployment_starts_the_controller_which_gets_ready_and_leads(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    from kubernetes import client, config

    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    repo = specs_repository(tmp_path, kubeconfig)
    environments = [{"name": "qa", "stateNamespace": "reconciler"}]  # as its environment file says
    rendered = render(merged(REQUIRED, {"git": {"repo": f"file://{repo}"}, "environments": environments}))

    api = config.new_client_from_config(config_file=str(kubeconfig))
    configmap, deployment = rendered.one("ConfigMap"), rendered.one("Deployment")
    client.CoreV1Api(api).create_namespaced_config_map(NAMESPACE, configmap)
    client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, deployment)
    stored = client.AppsV1Api(api).read_namespaced_deployment(deployment["metadata"]["name"], NAMESPACE)
    (main,) = api.sanitize_for_serialization(stored)["spec"]["template"]["spec"]["containers"]

    environ = container_environment(main["env"])
    # The pod's mounts, here: the ConfigMap's file, the emptyDirs, the listen port, the cluster.
    config_file = tmp_path / "etc" / "controller.yaml"
    config_file.parent.mkdir()
    config_file.write_text(configmap["data"]["controller.yaml"])
    port = free_port()
    environ |= {
        "RECONCILER_CONFIG": str(config_file),
        "RECONCILER_CACHE_DIR": str(tmp_path / "cache"),
        "HOME": str(tmp_path / "home"),
        "RECONCILER_LISTEN": f"127.0.0.1:{port}",
        "RECONCILER_KUBECONFIG": str(kubeconfig),
    }
    assert environ["RECONCILER_LEADER_ELECTION"] == "true"
    before = len(kube.audit)
    process = subprocess.Popen(
        [str(RECONCILE), *main["args"]],
        env={"PATH": os.environ["PATH"], **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = False
        deadline = time.monotonic() + 120  # a guard against a hang, not a performance assertion
        while not ready and time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            if not ready:
                time.sleep(0.5)
        assert ready, "the controller never became ready"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        calls = set(kube.audit[before:])
        lease = client.CoordinationV1Api(api).read_namespaced_lease("reconciler-leader", NAMESPACE)
        assert lease.spec.holder_identity == POD
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert SECRETS[("reconciler-fingerprint", "fingerprint-key")] not in output
    # Every call the controller made is one the chart's RBAC grants its ServiceAccount, in that namespace.
    allowed = granted(rendered.manifests, rendered.one("ServiceAccount")["metadata"]["name"])
    made = {(namespace, group, resource, verb) for verb, group, resource, namespace in calls}
    assert made, "the controller made no Kubernetes call"
    assert made <= allowed, f"calls the chart's RBAC does not grant: {sorted(made - allowed)}"
