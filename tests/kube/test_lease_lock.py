"""The environment lock as a Lease: refused by name while held, renewed while an apply runs, a dead holder's expires."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reconciler.cancellation import Cancellation
from reconciler.clients.kube.client import KubeClient
from reconciler.clients.kube.lease_lock import KubeLeaseLock
from reconciler.errors import LockedError
from reconciler.lock import LockHolder
from reconciler.sandbox.kube_server import KubeStandIn
from tests.kube.conftest import NAMESPACE

LEASE = "reconciler-state-qa-lock"
SAFETY_SECONDS = 60  # only so that a broken build fails instead of hanging; nothing is timed


def lock(kube: KubeClient, duration_s: float = 1.5, **kwargs: object) -> KubeLeaseLock:
    return KubeLeaseLock(kube, NAMESPACE, LEASE, "qa", duration_s=duration_s, **kwargs)  # type: ignore[arg-type]


def holder(command: str = "reconcile apply", pid: int = 4242, host: str = "laptop") -> LockHolder:
    return LockHolder(pid, host, command, "2026-11-29T12:00:00Z")


def lease_spec(standin: KubeStandIn) -> dict[str, object]:
    return dict(standin.get_object(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}")["spec"])


def test_a_held_lock_is_refused_naming_its_holder_then_free_once_released(kube: KubeClient) -> None:
    first, second = lock(kube, 30), lock(kube, 30)
    assert first.acquire(holder("reconcile controller", pid=7, host="reconciler-5d9c")) is None
    with pytest.raises(LockedError) as refused:
        second.acquire(holder())
    assert str(refused.value) == (
        "environment qa is locked by pid 7 on host reconciler-5d9c (reconcile controller, since 2026-11-29T12:00:00Z) "
        f"(Lease {NAMESPACE}/{LEASE}); wait for it to finish and try again"
    )
    first.release()
    assert second.acquire(holder()) is None  # released: taken at once, no stale holder reported
    second.release()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_lock_is_renewed_while_held_so_a_long_apply_keeps_it(standin: KubeStandIn, kube: KubeClient) -> None:
    held = lock(kube, 1.5)
    held.acquire(holder())
    renewals = [lease_spec(standin)["renewTime"]]
    while len(set(renewals)) < 6:  # six renewals: three times the lease duration
        time.sleep(0.1)
        renewals.append(lease_spec(standin)["renewTime"])
        with pytest.raises(LockedError):
            lock(kube, 1.5).acquire(holder("reconcile apply", pid=99))
    assert not held.lost.is_set()
    held.release()
    assert lease_spec(standin).get("holderIdentity") is None


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_dead_holders_lock_expires_and_is_taken_over_naming_it(
    standin: KubeStandIn, kube: KubeClient, kubeconfig: Path
) -> None:
    script = (
        "import time\n"
        "from reconciler.clients.kube.client import KubeClient\n"
        "from reconciler.clients.kube.lease_lock import KubeLeaseLock\n"
        "from reconciler.lock import LockHolder\n"
        f"kube = KubeClient.from_kubeconfig({str(kubeconfig)!r})\n"
        f"lock = KubeLeaseLock(kube, {NAMESPACE!r}, {LEASE!r}, 'qa', duration_s=1.5)\n"
        "lock.acquire(LockHolder.current('reconcile apply'))\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder_process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder_process.stdout is not None and holder_process.stdout.readline() == "held\n"
        with pytest.raises(LockedError, match=f"locked by pid {holder_process.pid} on host "):
            lock(kube).acquire(holder())
    finally:
        os.kill(holder_process.pid, signal.SIGKILL)  # no release: its renewals just stop
        holder_process.wait()
    deadline = time.monotonic() + SAFETY_SECONDS
    while True:
        taker = lock(kube)
        try:
            previous = taker.acquire(holder())
            break
        except LockedError:
            assert time.monotonic() < deadline, "the dead holder's lock never expired"
            time.sleep(0.2)
    assert previous is not None and previous.pid == holder_process.pid and previous.command == "reconcile apply"
    assert lease_spec(standin)["leaseTransitions"] == 1
    taker.release()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_clock_running_ahead_never_takes_a_live_holders_lock(kube: KubeClient) -> None:
    held = lock(kube, 1.5)
    held.acquire(holder("reconcile controller"))
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    skewed = lock(kube, 1.5, wall_clock=lambda: ahead)  # every renewal looks an hour old from here
    for _ in range(3):
        with pytest.raises(LockedError, match="reconcile controller"):
            skewed.acquire(holder())
    assert not held.lost.is_set()
    held.release()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_holder_that_cannot_renew_cancels_its_run_before_anyone_may_take_the_lock(
    standin: KubeStandIn, kube: KubeClient
) -> None:
    cancellation = Cancellation()
    held = lock(kube, 1.5, cancellation=cancellation)
    held.acquire(holder())
    kube.api_client.user_agent = "holder"
    standin.disrupt("leases", status=503, user_agent="holder")
    taken = threading.Event()
    cancelled_first: list[bool] = []

    def other() -> None:
        other_kube = KubeClient(kube.api_client.__class__(kube.api_client.configuration))
        while not taken.is_set():
            try:
                lock(other_kube).acquire(holder(pid=5))
            except LockedError:
                time.sleep(0.05)
                continue
            cancelled_first.append(cancellation.cancelled)
            taken.set()

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    thread.join(SAFETY_SECONDS)
    assert taken.is_set() and cancelled_first == [True]
    assert held.lost.is_set() and "could not be renewed" in cancellation.reason
