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
"""

from __future__ import annotations

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
    return LeaseLeadership(kube, namespace, name, identity or default_identity(), timing)


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

    # --- one attempt, as client-go's tryAcquireOrRenew ---

    def _try_acquire_or_renew(self, timeout_s: float) -> bool:
        with self._guard:
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
                if not record.same_record(self._observed):
                    self._observe(record)
                held_by_other = bool(record.holder) and record.holder != self._identity
                if held_by_other and self._monotonic() < self._observed_at + record.duration_s:
                    return False  # not expired: it changed less than its duration ago, as seen from here
                written = self.kube.update_lease_record(
                    self.namespace, self.name, record, self._identity, self.timing.lease_duration_s, timeout_s=timeout_s
                )
            except KubeError as exc:
                log.warning("leader.attempt_failed", lease=self.where, identity=self._identity, error=str(exc))
                return False
            if written is None:
                return False  # someone else wrote it first
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
