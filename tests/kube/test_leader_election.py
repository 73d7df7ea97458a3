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
    POLL_REQUEST_ANNOTATION,
    ElectionConfigError,
    ElectionTiming,
    LeaseLeadership,
    lease_leadership,
    lease_namespace,
)
from reconciler.sandbox.kube_server import KubeStandIn
from reconciler.sandbox.kube_store import ApiStatusError
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


LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}"


def lease_spec(standin: KubeStandIn) -> dict[str, object]:
    return dict(standin.get_object(LEASE_PATH)["spec"])


def poll_request(standin: KubeStandIn) -> str:
    """The poll request a standby recorded on the Lease ("" when none)."""
    return str((standin.get_object(LEASE_PATH)["metadata"].get("annotations") or {}).get(POLL_REQUEST_ANNOTATION, ""))


def lease_calls(standin: KubeStandIn, agent: str, verb: str | None = None) -> list[tuple[str, str, str, str]]:
    """The Kubernetes calls one replica (its User-Agent) made, of `verb` if given."""
    return [call for call in list(standin.audit_by_agent[agent]) if verb is None or call[0] == verb]


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + SAFETY_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


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


# --- a push webhook that reached a standby, passed on through the Lease ---------------------------------------------

ONLY_LEASE_READS_AND_UPDATES = {("get", "coordination.k8s.io", "leases", NAMESPACE)} | {
    ("update", "coordination.k8s.io", "leases", NAMESPACE)
}


def test_a_standbys_poll_request_wakes_the_leader_once_and_the_election_does_not_see_it(
    standin: KubeStandIn, clients: Callable[..., KubeClient]
) -> None:
    leader = elector(clients("replica-a"), "replica-a")
    woken: list[str] = []
    leader.on_poll_requested(woken.append)
    term = leader.acquire(threading.Event())
    assert term is not None
    standby = Candidate(elector(clients("replica-b"), "replica-b")).start(leader)

    standby.leadership.request_poll("a" * 40)
    wait_until(lambda: woken, "the leader woken")
    assert woken == [poll_request(standin)] and woken[0].startswith("a" * 40 + "@")
    standby.leadership.request_poll("b" * 40)
    wait_until(lambda: len(woken) == 2, "the leader woken by the second request")
    assert woken[1].startswith("b" * 40 + "@")
    for _ in range(5):  # five more renewals read the same request: it wakes nobody again
        renewed = lease_spec(standin)["renewTime"]
        wait_until(lambda: lease_spec(standin)["renewTime"] != renewed, "a renewal")  # noqa: B023
    assert len(woken) == 2

    assert leader.leading and not term.cancelled and not standby.led.is_set()
    spec = lease_spec(standin)
    assert spec["holderIdentity"] == "replica-a" and spec["leaseTransitions"] == 0
    assert len(lease_calls(standin, "replica-b", "update")) >= 2
    assert set(lease_calls(standin, "replica-b")) <= ONLY_LEASE_READS_AND_UPDATES  # the chart's RBAC: no new verb
    leader.release()
    standby.halt()


def test_a_poll_request_changes_nothing_on_the_lease_but_its_annotation_and_creates_none(
    standin: KubeStandIn, clients: Callable[..., KubeClient]
) -> None:
    standby = elector(clients("replica-b"), "replica-b", ElectionTiming(60, 40, 0.2))
    standby.request_poll("c" * 40)  # no Lease yet: nobody leads, whoever takes it first polls anyway
    wait_until(lambda: lease_calls(standin, "replica-b", "get"), "the standby looking for the Lease")
    with pytest.raises(ApiStatusError):
        standin.get_object(LEASE_PATH)
    assert lease_calls(standin, "replica-b") == [("get", "coordination.k8s.io", "leases", NAMESPACE)]

    clients("replica-a").create_lease_record(NAMESPACE, LEASE, "replica-a", 3600)  # a leader that went quiet
    before = standin.get_object(LEASE_PATH)
    standby.request_poll("d" * 40)
    wait_until(lambda: poll_request(standin), "the poll request recorded")
    after = standin.get_object(LEASE_PATH)
    assert after["spec"] == before["spec"]  # holderIdentity, renewTime, acquireTime, transitions: untouched
    assert after["metadata"]["annotations"] == {POLL_REQUEST_ANNOTATION: poll_request(standin)}
    assert poll_request(standin).startswith("d" * 40 + "@")
    unchanged = {"name", "namespace", "uid", "creationTimestamp"}
    assert {k: after["metadata"][k] for k in unchanged} == {k: before["metadata"][k] for k in unchanged}
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]  # a conditional write
    assert len(lease_calls(standin, "replica-b", "update")) == 1
    standby.release()


def test_a_storm_of_poll_requests_makes_one_or_two_lease_writes(
    standin: KubeStandIn, clients: Callable[..., KubeClient]
) -> None:
    clients("replica-a").create_lease_record(NAMESPACE, LEASE, "replica-a", 3600)
    standby = elector(clients("replica-b"), "replica-b", ElectionTiming(60, 40, 2.0))
    callers = [threading.Thread(target=standby.request_poll, args=(f"{n:040x}",)) for n in range(50)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(SAFETY_SECONDS)
    wait_until(lambda: poll_request(standin), "the poll request recorded")
    standby.release()  # stops the relay: what was still pending is dropped (the leader polls on its own anyway)
    # the first write, and at most one for every request that arrived while it was written
    assert 1 <= len(lease_calls(standin, "replica-b", "update")) <= 2


def test_poll_requests_do_not_keep_a_dead_leaders_lease_alive(
    standin: KubeStandIn, clients: Callable[..., KubeClient]
) -> None:
    clients("replica-a").create_lease_record(NAMESPACE, LEASE, "replica-a", SHORT.lease_duration_s)  # then killed
    standby = Candidate(elector(clients("replica-b"), "replica-b")).start()
    sent = 0
    while not standby.led.wait(0.02):  # webhooks keep arriving at the standby, each one a Lease write
        standby.leadership.request_poll(f"{sent:040x}")
        sent += 1
        assert sent < SAFETY_SECONDS / 0.02, "the standby never took the dead leader's Lease"
    assert lease_spec(standin)["holderIdentity"] == "replica-b" and lease_spec(standin)["leaseTransitions"] == 1
    assert len(lease_calls(standin, "replica-b", "update")) >= 4  # poll requests were written while it waited
    standby.leadership.release()
    standby.halt()
