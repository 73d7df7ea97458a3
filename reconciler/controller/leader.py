"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it: the controller's `Leadership`.

Beside the loop (controller/loop.py), which asks `acquire` before acting and stops when the term
it got is cancelled; below it, the lease record calls of clients/kube/leases.py. As in client-go
(tools/leaderelection): a 15 s lease, a 10 s renew deadline and a 2 s retry period by default
(lease > renew deadline > 1.2 x retry period); a Lease held by another replica is expired only
when its record has not changed for its duration since *this* replica saw it change (a
monotonic clock: the holder's renewTime, written by another machine's clock, is never compared);
the leader renews every retry period in a background thread, and a watchdog cancels its term
the moment the renew deadline passes without a renewal, so waits polling the term stop at once
and no new action starts, well before another replica may take the Lease. `release` stops
renewing and clears holderIdentity so another replica takes over without waiting.

A push webhook may reach a standby (one Service before every replica): its `request_poll` records
`reconciler.io/poll-requested: <commit>@<time>` on the Lease (annotations only, so the election
never sees it: expiry is judged on the spec alone), and the leader, which reads the Lease every
retry period to renew it, wakes its loop on a value it has not seen. A standby writes in the
background, at most once per retry period however many deliveries arrive (the leader reads no
faster; more writes would only contend with its renewals), and a renewal whose write loses to one
(409 on a record this replica holds) reads again and retries at once instead of a retry period later.
"""

from __future__ import annotations

import datetime
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from reconciler.cancellation import Cancellation
from reconciler.clients.kube.calls import KubeError
from reconciler.clients.kube.client import KubeClient
from reconciler.clients.kube.leases import LeaseCalls, LeaseRecord
from reconciler.errors import PermanentError

log = structlog.get_logger("reconciler.leader")

JITTER_FACTOR = 1.2
"""client-go's JitterFactor: a retry waits between 1 and 1.2 retry periods, and renew deadline > 1.2 x retry."""
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
POLL_REQUEST_ANNOTATION = "reconciler.io/poll-requested"
"""On the leader Lease: `<commit, or "push">@<time>`, written by a standby that got a push webhook."""


class ElectionConfigError(PermanentError):
    """Leader election timings or identity that cannot work."""


@dataclass(frozen=True)
class ElectionTiming:
    """client-go's LeaderElectionConfig durations, validated like `NewLeaderElector` (without exiting)."""

    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if min(self.lease_duration_s, self.renew_deadline_s, self.retry_period_s) <= 0:
            raise ElectionConfigError("leader election durations must be positive")
        if self.lease_duration_s <= self.renew_deadline_s:
            raise ElectionConfigError(
                f"the lease duration ({self.lease_duration_s:g} s) must be greater than the renew deadline "
                f"({self.renew_deadline_s:g} s)"
            )
        if self.renew_deadline_s <= JITTER_FACTOR * self.retry_period_s:
            raise ElectionConfigError(
                f"the renew deadline ({self.renew_deadline_s:g} s) must be greater than {JITTER_FACTOR:g} x the retry "
                f"period ({self.retry_period_s:g} s)"
            )


def lease_namespace(environ: Mapping[str, str], namespace_file: Path = NAMESPACE_FILE) -> str:
    """The contract's default for --lease-namespace: POD_NAMESPACE, else the in-cluster namespace file."""
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    try:
        found = namespace_file.read_text(encoding="utf-8").strip()
    except OSError:
        found = ""
    if not found:
        raise ElectionConfigError(
            "cannot tell which namespace holds the leader Lease: give --lease-namespace (RECONCILER_LEASE_NAMESPACE) "
            f"or POD_NAMESPACE ({namespace_file} is not readable)"
        )
    return found


def default_identity() -> str:
    """The contract's default for --identity: the hostname (the pod name)."""
    return socket.gethostname() or f"reconciler-{os.getpid()}"


def lease_leadership(
    kubeconfig: str | None,
    namespace: str,
    name: str = "reconciler-leader",
    identity: str | None = None,
    timing: ElectionTiming | None = None,
) -> LeaseLeadership:
    """The controller's Leadership from its options: the cluster of --kubeconfig (in-cluster when
    KUBERNETES_SERVICE_HOST is set and none is given, else KUBECONFIG / ~/.kube/config), --lease-namespace,
    --lease-name and --identity (default: the hostname)."""
    try:
        kube = KubeClient.from_environment(kubeconfig)
    except KubeError as exc:
        raise ElectionConfigError(f"cannot reach the cluster of the leader Lease: {exc}") from None
    identity = identity or default_identity()
    kube.api_client.user_agent = f"reconciler/{_token(identity)}"  # the API server's audit log names the replica
    return LeaseLeadership(kube, namespace, name, identity, timing)


def _token(text: str) -> str:
    """`text` with only characters a header value and a log line take as they are."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)[:128]


class LeaseLeadership:
    """A `Leadership` (controller/ports.py) on Lease `namespace/name`, held as `identity`."""

    def __init__(
        self,
        kube: LeaseCalls,
        namespace: str,
        name: str,
        identity: str,
        timing: ElectionTiming | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not identity:
            raise ElectionConfigError("the leader election identity must not be empty")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.timing = timing or ElectionTiming()
        self._identity = identity
        self._monotonic = monotonic
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._guard = threading.Lock()
        self._term: Cancellation | None = None
        self._stop = threading.Event()
        self._renewed = threading.Condition()
        self._last_renewal = 0.0
        self._threads: list[threading.Thread] = []
        self._on_poll_requested: Callable[[str], None] | None = None
        self._poll_seen = ""
        """The Lease's poll request as last read: only a different one wakes the leader."""
        self._relay_guard = threading.Lock()
        self._relay_wanted = threading.Event()
        self._relay_reason = ""
        self._relay: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def leading(self) -> bool:
        term = self._term
        return term is not None and not term.cancelled

    # --- Leadership ---

    def acquire(self, stop: threading.Event) -> Cancellation | None:
        """Try every retry period (jittered) until this replica leads or `stop` is set."""
        self._end_term("a new term is starting")
        while not stop.is_set():
            if self._try_acquire_or_renew(self.timing.retry_period_s):
                return self._start_term()
            stop.wait(self.timing.retry_period_s * random.uniform(1.0, JITTER_FACTOR))
        return None

    def release(self) -> None:
        """Stop renewing, cancel the term, and clear holderIdentity if this replica still holds the Lease."""
        held = self.leading
        self._end_term("leadership released")
        self._close_relay()
        if not held:
            return
        try:
            current = self.kube.read_lease_record(self.namespace, self.name, timeout_s=self.timing.retry_period_s)
            if current is not None and current.holder == self._identity:
                released = self.kube.update_lease_record(
                    self.namespace, self.name, current, "", 1, timeout_s=self.timing.retry_period_s
                )
                log.info("leader.released", lease=self.where, identity=self._identity, done=released is not None)
        except KubeError as exc:  # the others take over once the lease expires
            log.warning("leader.release_failed", lease=self.where, identity=self._identity, error=str(exc))

    # --- PollRelay: a push that reached a standby, passed on through the Lease ---

    def on_poll_requested(self, wake: Callable[[str], None]) -> None:
        """`wake(request)` is called (from the renewal thread) when, leading, this replica reads a new poll request."""
        self._on_poll_requested = wake

    def request_poll(self, reason: str) -> None:
        """Have the leader poll at once: record a poll request on the Lease, in the background (returns at once)."""
        if self._closed.is_set():
            return
        with self._relay_guard:
            self._relay_reason = _token(reason) or "push"
            if self._relay is None:
                self._relay = threading.Thread(target=self._relay_requests, name="leader-poll-relay", daemon=True)
                self._relay.start()
        self._relay_wanted.set()

    def _relay_requests(self) -> None:
        """Write the latest request, then wait a retry period: requests arriving meanwhile make one write more."""
        while True:
            self._relay_wanted.wait()
            if self._closed.is_set():
                return
            self._relay_wanted.clear()
            with self._relay_guard:
                reason = self._relay_reason
            self._record_poll_request(reason)
            self._closed.wait(self.timing.retry_period_s)

    def _record_poll_request(self, reason: str) -> None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        request = f"{reason}@{stamp}"
        try:
            found = self.kube.annotate_lease(
                self.namespace, self.name, {POLL_REQUEST_ANNOTATION: request}, timeout_s=self.timing.retry_period_s
            )
        except KubeError as exc:  # the leader still polls on its own schedule
            log.warning("leader.poll_request_failed", lease=self.where, identity=self._identity, error=str(exc))
            return
        if not found:  # nobody leads yet: whoever takes the Lease polls first thing
            log.info("leader.poll_request_dropped", lease=self.where, identity=self._identity, reason="no Lease yet")
            return
        log.info("leader.poll_request_recorded", lease=self.where, identity=self._identity, request=request)

    def _close_relay(self) -> None:
        self._closed.set()
        self._relay_wanted.set()
        relay = self._relay
        if relay is not None and relay is not threading.current_thread():
            relay.join(timeout=self.timing.retry_period_s)  # a write still under way is harmless

    def _notice_poll_request(self, record: LeaseRecord) -> None:
        """Wake the loop when, leading, the Lease carries a poll request not seen before (a term starts with a poll
        anyway: one seen while acquiring is not acted on)."""
        request = record.annotations.get(POLL_REQUEST_ANNOTATION, "")
        if request == self._poll_seen:
            return
        self._poll_seen = request
        if request and self.leading and self._on_poll_requested is not None:
            log.info("leader.poll_requested", lease=self.where, identity=self._identity, request=request)
            self._on_poll_requested(request)

    # --- one attempt, as client-go's tryAcquireOrRenew ---

    def _try_acquire_or_renew(self, timeout_s: float) -> bool:
        with self._guard:
            for _ in range(2):  # a renewal that lost to a standby's poll request (metadata only) tries again at once
                done = self._attempt(timeout_s)
                if done is not None:
                    return done
            return False

    def _attempt(self, timeout_s: float) -> bool | None:
        """One read and write: whether this replica holds the Lease; None when it did and its write got a 409."""
        try:
            record = self.kube.read_lease_record(self.namespace, self.name, timeout_s=timeout_s)
            if record is None:
                created = self.kube.create_lease_record(
                    self.namespace, self.name, self._identity, self.timing.lease_duration_s, timeout_s=timeout_s
                )
                if created is None:
                    return False
                self._observe(created)
                return True
            if not record.same_record(self._observed):  # the spec only: a poll request is no sign of life
                self._observe(record)
            self._notice_poll_request(record)
            held_by_other = bool(record.holder) and record.holder != self._identity
            if held_by_other and self._monotonic() < self._observed_at + record.duration_s:
                return False  # not expired: it changed less than its duration ago, as seen from here
            written = self.kube.update_lease_record(
                self.namespace, self.name, record, self._identity, self.timing.lease_duration_s, timeout_s=timeout_s
            )
        except KubeError as exc:
            log.warning("leader.attempt_failed", lease=self.where, identity=self._identity, error=str(exc))
            return False
        if written is None:  # someone else wrote first: a poll request on our own record, or a rival
            return None if record.holder == self._identity else False
        if held_by_other:
            log.info("leader.took_over", lease=self.where, identity=self._identity, previous=record.holder)
        self._observe(written)
        return True

    def _observe(self, record: LeaseRecord) -> None:
        self._observed, self._observed_at = record, self._monotonic()

    # --- a term: renewal and its watchdog ---

    def _start_term(self) -> Cancellation:
        term = Cancellation()
        self._stop = threading.Event()
        with self._renewed:
            self._last_renewal = self._monotonic()
        self._term = term
        self._threads = [
            threading.Thread(target=self._renew, args=(term, self._stop), name="leader-renew", daemon=True),
            threading.Thread(target=self._watch, args=(term, self._stop), name="leader-watchdog", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("leader.elected", lease=self.where, identity=self._identity)
        return term

    def _end_term(self, reason: str) -> None:
        self._stop.set()
        with self._renewed:
            self._renewed.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        self._threads = []
        if self._term is not None:
            self._term.cancel(reason)

    def _renew(self, term: Cancellation, stop: threading.Event) -> None:
        """Renew every retry period; retry failures every retry period until the watchdog ends the term."""
        while not stop.wait(self.timing.retry_period_s) and not term.cancelled:
            with self._renewed:
                remaining = self._last_renewal + self.timing.renew_deadline_s - self._monotonic()
            if remaining <= 0:
                return
            if self._try_acquire_or_renew(min(self.timing.retry_period_s, remaining)) and not term.cancelled:
                with self._renewed:
                    self._last_renewal = self._monotonic()
                    self._renewed.notify_all()

    def _watch(self, term: Cancellation, stop: threading.Event) -> None:
        """Cancel the term the moment the renew deadline passes without a renewal (even mid-request)."""
        with self._renewed:
            while not stop.is_set():
                remaining = self._last_renewal + self.timing.renew_deadline_s - self._monotonic()
                if remaining <= 0:
                    reason = (
                        f"leadership lost: {self.where} not renewed within the renew deadline "
                        f"({self.timing.renew_deadline_s:g} s)"
                    )
                    log.error("leader.lost", lease=self.where, identity=self._identity)
                    term.cancel(reason)
                    stop.set()
                    return
                self._renewed.wait(remaining)
