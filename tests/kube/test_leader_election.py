"""Leader election on a Lease against the stand-in: one leader, takeover after a kill, a leader that cannot renew
stops first, release hands over at once, and skewed clocks do not matter."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.cancellation import Cancellation
from reconciler.clients.kube.client import KubeClient
from reconciler.controller.leader import (
    ElectionConfigError,
    ElectionTiming,
    LeaseLeadership,
    lease_leadership,
    lease_namespace,
)
from reconciler.sandbox.kube_server import KubeStandIn
from tests.kube.conftest import NAMESPACE

LEASE = "reconciler-leader"
SHORT = ElectionTiming(1.5, 1.0, 0.2)
SAFETY_SECONDS = 60  # only so that a broken build fails instead of hanging; nothing is timed


@pytest.fixture
def clients(kubeconfig: Path) -> Iterator[Callable[..., KubeClient]]:
    made: list[KubeClient] = []

    def make(agent: str = "replica", skew: datetime.timedelta = datetime.timedelta(0)) -> KubeClient:
        kube = KubeClient.from_kubeconfig(str(kubeconfig))
        kube.api_client.user_agent = agent
        kube._now = lambda: datetime.datetime.now(datetime.UTC) + skew  # this replica's wall clock
        made.append(kube)
        return kube

    yield make
    for kube in made:
        kube.close()


def elector(kube: KubeClient, identity: str, timing: ElectionTiming = SHORT) -> LeaseLeadership:
    return LeaseLeadership(kube, NAMESPACE, LEASE, identity, timing)


def lease_spec(standin: KubeStandIn) -> dict[str, object]:
    return dict(standin.get_object(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}")["spec"])


RUNNING: list[Candidate] = []


@pytest.fixture(autouse=True)
def _halt_candidates() -> Iterator[None]:
    yield
    while RUNNING:
        candidate = RUNNING.pop()
        candidate.halt()
        candidate.leadership.release()


class Candidate:
    """An elector trying to lead in its own thread; `term` once it leads."""

    def __init__(self, leadership: LeaseLeadership) -> None:
        self.leadership = leadership
        self.stop = threading.Event()
        self.led = threading.Event()
        self.term: Cancellation | None = None
        self.others_leading_when_elected: list[bool] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, *others: LeaseLeadership) -> Candidate:
        self._others = others
        RUNNING.append(self)
        self._thread.start()
        return self

    def _run(self) -> None:
        self.term = self.leadership.acquire(self.stop)
        self.others_leading_when_elected = [other.leading for other in self._others]
        self.led.set()

    def halt(self) -> None:
        self.stop.set()
        self._thread.join(SAFETY_SECONDS)


def test_timings_are_validated_like_client_go() -> None:
    ElectionTiming()  # 15 / 10 / 2
    with pytest.raises(ElectionConfigError, match=r"lease duration .* must be greater than the renew deadline"):
        ElectionTiming(10, 10, 2)
    with pytest.raises(ElectionConfigError, match=r"renew deadline \(2.4 s\) must be greater than 1.2 x"):
        ElectionTiming(15, 2.4, 2)
    with pytest.raises(ElectionConfigError, match="positive"):
        ElectionTiming(15, 10, 0)


def test_the_lease_namespace_defaults_to_pod_namespace_then_the_service_account_file(tmp_path: Path) -> None:
    assert lease_namespace({"POD_NAMESPACE": "platform"}, tmp_path / "missing") == "platform"
    (tmp_path / "namespace").write_text("reconciler\n")
    assert lease_namespace({}, tmp_path / "namespace") == "reconciler"
    with pytest.raises(ElectionConfigError, match="--lease-namespace"):
        lease_namespace({}, tmp_path / "missing")


def test_the_leadership_is_built_from_the_controller_options(kubeconfig: Path, standin: KubeStandIn) -> None:
    leadership = lease_leadership(str(kubeconfig), NAMESPACE, "reconciler-leader", "pod-1", SHORT)
    assert leadership.identity == "pod-1"
    assert leadership.acquire(threading.Event()) is not None and leadership.leading
    assert lease_spec(standin)["holderIdentity"] == "pod-1"
    leadership.release()
    assert lease_spec(standin).get("holderIdentity") is None
    with pytest.raises(ElectionConfigError, match="cannot reach the cluster of the leader Lease"):
        lease_leadership(str(kubeconfig.parent / "missing"), NAMESPACE)


def test_of_two_electors_exactly_one_leads_and_release_hands_over_at_once(
    standin: KubeStandIn, clients: Callable[..., KubeClient]
) -> None:
    patient = ElectionTiming(60, 40, 0.2)  # nobody takes over by expiry within this test: only by release
    one, two = elector(clients(), "replica-a", patient), elector(clients(), "replica-b", patient)
    a, b = Candidate(one).start(two), Candidate(two).start(one)
    deadline = time.monotonic() + SAFETY_SECONDS
    while not (a.led.is_set() or b.led.is_set()):
        assert time.monotonic() < deadline, "nobody leads"
        time.sleep(0.01)
    first, second = (a, b) if a.led.is_set() else (b, a)
    renewed = lease_spec(standin)["renewTime"]
    while lease_spec(standin)["renewTime"] == renewed:  # the leader renews; the other keeps waiting
        time.sleep(0.05)
    assert not second.led.is_set() and first.leadership.leading and not second.leadership.leading
    assert lease_spec(standin)["holderIdentity"] == first.leadership.identity

    first.leadership.release()
    assert first.term is not None and first.term.cancelled and first.term.reason == "leadership released"
    assert second.led.wait(SAFETY_SECONDS)  # at once: the lease had 60 s left
    assert second.leadership.leading and second.others_leading_when_elected == [False]
    assert lease_spec(standin)["holderIdentity"] == second.leadership.identity
    assert lease_spec(standin)["leaseTransitions"] == 1
    second.leadership.release()
    a.halt()
    b.halt()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_when_the_leader_is_killed_the_other_leads_after_the_lease_expires(
    standin: KubeStandIn, clients: Callable[..., KubeClient], kubeconfig: Path
) -> None:
    script = (
        "import threading\n"
        "from reconciler.clients.kube.client import KubeClient\n"
        "from reconciler.controller.leader import ElectionTiming, LeaseLeadership\n"
        f"kube = KubeClient.from_kubeconfig({str(kubeconfig)!r})\n"
        f"leader = LeaseLeadership(kube, {NAMESPACE!r}, {LEASE!r}, 'replica-a', ElectionTiming(1.5, 1.0, 0.2))\n"
        "assert leader.acquire(threading.Event()) is not None\n"
        "print('leading', flush=True)\n"
        "threading.Event().wait(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    follower: Candidate | None = None
    try:
        assert process.stdout is not None
        while (line := process.stdout.readline()) != "leading\n":  # its log lines come first
            assert line, "the leader process ended before leading"
        follower = Candidate(elector(clients(), "replica-b")).start()
        renewed = lease_spec(standin)["renewTime"]
        while lease_spec(standin)["renewTime"] == renewed:
            time.sleep(0.05)
        assert not follower.led.is_set()  # the leader is renewing
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert follower.led.wait(SAFETY_SECONDS)
    assert follower.leadership.leading and lease_spec(standin)["holderIdentity"] == "replica-b"
    follower.leadership.release()
    follower.halt()


@pytest.mark.parametrize("failure", ["refused", "slow"])
@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_leader_that_cannot_renew_cancels_its_term_before_another_may_lead(
    standin: KubeStandIn, clients: Callable[..., KubeClient], failure: str
) -> None:
    one, two = elector(clients("replica-a"), "replica-a"), elector(clients("replica-b"), "replica-b")
    term = one.acquire(threading.Event())
    assert term is not None
    follower = Candidate(two).start(one)
    if failure == "refused":
        standin.disrupt("leases", status=503, user_agent="replica-a")
    else:  # each request hangs past the renew deadline: the watchdog does not wait for it
        standin.disrupt("leases", status=None, delay_s=5.0, user_agent="replica-a")

    assert follower.led.wait(SAFETY_SECONDS)
    assert term.cancelled and "not renewed within the renew deadline (1 s)" in term.reason
    assert follower.others_leading_when_elected == [False]  # the old leader had stopped before
    assert not one.leading
    standin.restore()
    follower.leadership.release()
    one.release()
    follower.halt()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_skewed_clocks_between_replicas_do_not_matter(standin: KubeStandIn, clients: Callable[..., KubeClient]) -> None:
    hour = datetime.timedelta(hours=1)
    behind = elector(clients("replica-a", -hour), "replica-a")  # writes renewTimes an hour in the past
    assert behind.acquire(threading.Event()) is not None
    ahead = Candidate(elector(clients("replica-b", hour), "replica-b")).start(behind)
    for _ in range(20):  # about three lease durations: by renewTime the lease looks an hour expired to the other
        renewed = lease_spec(standin)["renewTime"]
        while lease_spec(standin)["renewTime"] == renewed:
            time.sleep(0.05)
    assert not ahead.led.is_set() and behind.leading
    behind.release()
    assert ahead.led.wait(SAFETY_SECONDS) and ahead.others_leading_when_elected == [False]
    ahead.leadership.release()
    ahead.halt()
