"""The environment lock against a Lease left by a dead pod whose clock ran far ahead: its renewTime lies years in
the future, so renewTime + duration never passes on a sane clock; it must still be taken over once watched
unchanged, while a live holder with the same clock is never taken."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
from kubernetes import client

from reconciler.clients.kube.client import KubeClient
from reconciler.clients.kube.lease_lock import HOLDER_ANNOTATION, KubeLeaseLock
from reconciler.errors import LockedError
from reconciler.lock import LockHolder
from tests.kube.conftest import NAMESPACE

LEASE = "reconciler-state-qa-lock"
FAR = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC)


def lock(kube: KubeClient, duration_s: float = 1.5) -> KubeLeaseLock:
    return KubeLeaseLock(kube, NAMESPACE, LEASE, "qa", duration_s=duration_s)


def holder(command: str = "reconcile apply", pid: int = 4242, host: str = "laptop") -> LockHolder:
    return LockHolder(pid, host, command, "2026-11-29T12:00:00Z")


def test_a_dead_holders_lease_stamped_years_ahead_is_taken_over(kube: KubeClient) -> None:
    dead = {"pid": 7, "host": "reconciler-5d9c", "command": "reconcile controller", "since": "2036-01-01T00:00:00Z"}
    body = client.V1Lease.model_validate(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": NAMESPACE, "annotations": {HOLDER_ANNOTATION: json.dumps(dead)}},
            "spec": {
                "holderIdentity": "reconciler-5d9c/7/deadbeef",
                "leaseDurationSeconds": 2,
                "acquireTime": "2036-01-01T00:00:00.000000Z",
                "renewTime": "2036-01-01T00:00:00.000000Z",
                "leaseTransitions": 0,
            },
        }
    )
    kube.coordination.create_namespaced_lease(NAMESPACE, body)
    taker = lock(kube)
    previous = taker.acquire(holder())
    assert previous is not None and previous.pid == 7 and previous.host == "reconciler-5d9c"
    taker.release()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_live_holder_whose_clock_runs_years_ahead_is_never_taken(kube: KubeClient) -> None:
    ahead = KubeClient(
        kube.api_client, now=lambda: FAR + (datetime.datetime.now(datetime.UTC) - FAR.replace(year=2026))
    )
    held = lock(ahead)
    held.acquire(holder("reconcile controller", pid=7))
    for _ in range(3):
        try:
            lock(kube).acquire(holder())
        except LockedError as refused:
            assert "reconcile controller" in str(refused)
        else:
            raise AssertionError("a live holder's lock was taken")
    assert not held.lost.is_set()
    held.release()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_leader_lease_of_a_dead_pod_stamped_years_ahead_is_taken_once_seen_unchanged(kube: KubeClient) -> None:
    """Leader election judges expiry by when this replica last saw the record change, never by renewTime."""
    from reconciler.controller.leader import ElectionTiming, LeaseLeadership

    body = client.V1Lease.model_validate(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "reconciler-leader", "namespace": NAMESPACE},
            "spec": {
                "holderIdentity": "reconciler-5d9c",
                "leaseDurationSeconds": 2,
                "acquireTime": "2036-01-01T00:00:00.000000Z",
                "renewTime": "2036-01-01T00:00:00.000000Z",
                "leaseTransitions": 3,
            },
        }
    )
    kube.coordination.create_namespaced_lease(NAMESPACE, body)
    leadership = LeaseLeadership(kube, NAMESPACE, "reconciler-leader", "replica-b", ElectionTiming(1.5, 1.0, 0.2))
    stop = threading.Event()
    timer = threading.Timer(60, stop.set)  # only so that a broken build fails instead of hanging
    timer.start()
    try:
        term = leadership.acquire(stop)
    finally:
        timer.cancel()
    assert term is not None and leadership.leading
    leadership.release()
