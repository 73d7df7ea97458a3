"""The environment lock as a Kubernetes Lease (`<state name>-lock`): the CLI and the controller take the same one.

An `EnvironmentLock` (reconciler/lock.py) on LeaseCalls, chosen by the service (`open_session`)
when the environment file says `state: {kubernetes: ...}`. The holder's pid, host and command
are in the annotation `reconciler.io/lock-holder`; its holderIdentity is unique per acquisition.
While held, a background thread renews it every third of its duration; a holder that cannot
renew for two thirds of it sets the `Cancellation` it was given (the apply stops starting
actions) before anyone may take the lock over.

Expiry: a Lease whose renewTime, read on this machine's clock, is older than its duration (or
further in the future than its duration: a holder's clock that wrong, a dead pod's years ahead,
proves nothing) looks dead; it is then watched for half its duration more (a live holder renews
within a third), and taken over only if its record did not change. A clock running ahead here
therefore never takes a live holder's lock; a clock running behind only delays taking a dead one's.
"""

from __future__ import annotations

import datetime
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

import structlog

from reconciler.cancellation import Cancellation
from reconciler.clients.kube.calls import KubeError
from reconciler.clients.kube.leases import LeaseCalls, LeaseRecord
from reconciler.errors import ApiError, LockedError
from reconciler.lock import LockHolder

log = structlog.get_logger("reconciler.lock")

HOLDER_ANNOTATION = "reconciler.io/lock-holder"
DEFAULT_LOCK_SECONDS = 30.0


def lock_lease_name(state_name: str) -> str:
    return f"{state_name}-lock"


def _parse_time(stamp: str | None) -> datetime.datetime | None:
    if not stamp:
        return None
    try:
        return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


class KubeLeaseLock:
    """One environment's write lock in Lease `<namespace>/<name>`, renewed in the background while held."""

    def __init__(
        self,
        kube: LeaseCalls,
        namespace: str,
        name: str,
        environment: str,
        *,
        duration_s: float = DEFAULT_LOCK_SECONDS,
        cancellation: Cancellation | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.environment = environment
        self.duration_s = duration_s
        self.renew_every_s = duration_s / 3
        self.renew_deadline_s = duration_s * 2 / 3
        self.cancellation = cancellation
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._identity: str | None = None
        self._record: LeaseRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()
        """Set when a renewal missed its deadline (the lock may be someone else's now)."""

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    # --- EnvironmentLock ---

    def acquire(self, holder: LockHolder) -> LockHolder | None:
        if self._identity is not None:
            raise LockedError(f"environment {self.environment} is already locked by this process")
        identity = f"{holder.host}/{holder.pid}/{secrets.token_hex(4)}"
        annotations = {HOLDER_ANNOTATION: json.dumps({**asdict(holder), "environment": self.environment})}
        try:
            previous = self._take(identity, annotations)
        except KubeError as exc:
            raise ApiError(
                "kubernetes", f"lock of environment {self.environment} ({self.where}): {exc}", status=exc.status
            ) from None
        self._identity = identity
        self._stop.clear()
        self.lost.clear()
        self._thread = threading.Thread(target=self._renew, name=f"lock-{self.environment}", daemon=True)
        self._thread.start()
        return previous

    def release(self) -> None:
        if self._identity is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        identity, self._identity, self._thread = self._identity, None, None
        try:
            current = self.kube.read_lease_record(self.namespace, self.name, timeout_s=self.renew_every_s)
            if current is not None and current.holder == identity:
                self.kube.update_lease_record(
                    self.namespace, self.name, current, "", 1, annotations={}, timeout_s=self.renew_every_s
                )
        except KubeError as exc:  # it expires on its own after its duration
            log.warning("lock.release_failed", env=self.environment, lease=self.where, error=str(exc))

    # --- taking it ---

    def _locked(self, record: LeaseRecord) -> LockedError:
        found = self._holder(record)
        who = found.describe() if found is not None else f"holder {record.holder!r}"
        return LockedError(
            f"environment {self.environment} is locked by {who} ({self.where}); wait for it to finish and try again"
        )

    def _holder(self, record: LeaseRecord) -> LockHolder | None:
        return LockHolder.parse(record.annotations.get(HOLDER_ANNOTATION, ""))

    def _looks_expired(self, record: LeaseRecord) -> bool:
        renewed = _parse_time(record.renew_time)
        if renewed is None:
            return True
        now, duration = self._wall_clock(), datetime.timedelta(seconds=max(record.duration_s, 1))
        if renewed > now + duration:
            # stamped further ahead than a lease lasts: a clock that wrong proves nothing (a dead pod's, years
            # ahead, would hold the lock until then); watch it like an expired one: a live holder still renews
            return True
        return now >= renewed + duration

    def _confirm_dead(self, record: LeaseRecord) -> LeaseRecord | None:
        """Watch `record` for half the lock's duration: the record still unchanged (its holder is not renewing),
        or None when it changed (a live holder renewed it, or someone else took it)."""
        until = self._monotonic() + max(self.duration_s, record.duration_s) / 2
        while self._monotonic() < until:
            time.sleep(min(self.renew_every_s / 4, max(0.0, until - self._monotonic())))
            current = self.kube.read_lease_record(self.namespace, self.name)
            if current is None or not current.same_record(record):
                return None
        return record

    def _take(self, identity: str, annotations: dict[str, str]) -> LockHolder | None:
        for _ in range(5):
            record = self.kube.read_lease_record(self.namespace, self.name)
            if record is None:
                created = self.kube.create_lease_record(
                    self.namespace, self.name, identity, self.duration_s, annotations=annotations
                )
                if created is not None:
                    self._record = created
                    return None
                continue  # someone created it first: read what they wrote
            previous: LockHolder | None = None
            if record.holder:
                if not self._looks_expired(record):
                    raise self._locked(record)
                confirmed = self._confirm_dead(record)
                if confirmed is None:
                    continue  # it changed while watched: judge it again
                previous = self._holder(record) or LockHolder(0, "unknown", record.holder, record.renew_time or "")
            written = self.kube.update_lease_record(
                self.namespace, self.name, record, identity, self.duration_s, annotations=annotations
            )
            if written is not None:
                self._record = written
                return previous
        latest = self.kube.read_lease_record(self.namespace, self.name)
        if latest is not None and latest.holder:
            raise self._locked(latest)
        raise LockedError(f"environment {self.environment}: the lock ({self.where}) keeps changing hands; try again")

    # --- keeping it ---

    def _renew(self) -> None:
        last_ok = self._monotonic()
        while not self._stop.wait(self.renew_every_s):
            while True:
                if self._renew_once():
                    last_ok = self._monotonic()
                    break
                if self._monotonic() - last_ok >= self.renew_deadline_s:
                    self._lose(f"the lock of environment {self.environment} ({self.where}) could not be renewed")
                    return
                if self._stop.wait(min(self.renew_every_s / 4, 1.0)):
                    return

    def _renew_once(self) -> bool:
        record, identity = self._record, self._identity
        if record is None or identity is None:
            return False
        try:
            written = self.kube.update_lease_record(
                self.namespace, self.name, record, identity, self.duration_s, timeout_s=self.renew_every_s
            )
            if written is None:  # written since our last renewal: still ours only if it still names us
                current = self.kube.read_lease_record(self.namespace, self.name, timeout_s=self.renew_every_s)
                if current is None or current.holder != identity:
                    self._lose(f"the lock of environment {self.environment} ({self.where}) was taken by another run")
                    self._stop.set()
                    return False
                self._record = current
                return False
        except KubeError as exc:
            log.warning("lock.renew_failed", env=self.environment, lease=self.where, error=str(exc))
            return False
        self._record = written
        return True

    def _lose(self, reason: str) -> None:
        log.error("lock.lost", env=self.environment, lease=self.where, reason=reason)
        self.lost.set()
        if self.cancellation is not None:
            self.cancellation.cancel(reason)
