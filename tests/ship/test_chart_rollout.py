"""The chart's two replicas under a rolling update: both must answer /readyz, the standby too.

The Deployment rolls with Kubernetes' defaults (2 replicas: maxUnavailable 0, maxSurge 1): a new pod must be
Ready before an old one goes. A standby that answered /readyz 503 until it leads would never be Ready while the
old leader holds the Lease, so every upgrade would stall (ProgressDeadlineExceeded, `helm upgrade --wait` timing
out) and a fresh install would never be Available. Like controller-runtime's managers, a standby is ready: it is
ready to take over. Skipped until `reconcile controller` is merged (it checks the controller the chart starts).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.kube_server import KubeStandIn
from tests.ship.chart import NAMESPACE, REQUIRED, merged, render
from tests.ship.test_chart_controller import (
    RECONCILE,
    container_environment,
    free_port,
    kube,
    pytestmark,
    specs_repository,
)

__all__ = ["kube", "pytestmark"]


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_standby_replica_is_ready_too_so_a_rollout_can_proceed(kube: KubeStandIn, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    repo = specs_repository(tmp_path, kubeconfig)
    rendered = render(merged(REQUIRED, {"git": {"repo": f"file://{repo}"}, "environments": [{"name": "qa"}]}))
    (main,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    config_file = tmp_path / "controller.yaml"
    config_file.write_text(rendered.one("ConfigMap")["data"]["controller.yaml"])
    processes, ports = [], []
    try:
        for pod in ("rec-reconciler-a", "rec-reconciler-b"):
            port = free_port()
            environ = container_environment(main["env"]) | {
                "RECONCILER_IDENTITY": pod,
                "RECONCILER_CONFIG": str(config_file),
                "RECONCILER_CACHE_DIR": str(tmp_path / pod / "cache"),
                "HOME": str(tmp_path / pod),
                "RECONCILER_LISTEN": f"127.0.0.1:{port}",
                "RECONCILER_KUBECONFIG": str(kubeconfig),
            }
            command = [str(RECONCILE), *main["args"]]
            processes.append(subprocess.Popen(command, env={"PATH": os.environ["PATH"], **environ}))
            ports.append(port)
        ready: set[int] = set()
        deadline = time.monotonic() + 120  # a guard against a hang, not a performance assertion
        while len(ready) < 2 and time.monotonic() < deadline:
            for port in set(ports) - ready:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        ready.add(port)
            time.sleep(0.5)
        assert len(ready) == 2, "the standby never became ready: a rolling update of the chart would stall"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
