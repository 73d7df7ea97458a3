"""Kubernetes client, leases: leader election on a coordination.k8s.io Lease, the way client-go does it.

A part of KubeClient (kube.py), on the plumbing of kube_calls.py. A holder acquires a Lease,
renews it within its duration, takes it over only after it expired, and gives it up by clearing
the holder; a write that loses a race (409) answers False instead of raising.

`acquire_or_renew_lease` judges expiry by the holder's `renewTime` against this machine's clock;
the leader elector (controller/leader.py) and the environment lock (lease_lock.py) judge it by
when they last saw the record change, as client-go does, on the record calls below
(`read_lease_record`, `create_lease_record`, `update_lease_record`), which carry a request timeout
so a slow API server cannot hold a renewal past its deadline. `annotate_lease` sets annotations
and nothing else (a standby's poll request on the leader Lease): `same_record` looks only at the
spec, as client-go's LeaderElectionRecord does, so such a write never looks like a renewal.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from reconciler.clients.kube.calls import KubeCalls, KubeConflict, KubeNotFound


@dataclass(frozen=True)
class LeaseRecord:
    """A Lease's holder record as read (or written), with the resourceVersion a conditional update needs."""

    holder: str
    """"" when nobody holds it (released, or never held)."""
    duration_s: int
    transitions: int
    acquire_time: str | None
    renew_time: str | None
    resource_version: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    def same_record(self, other: LeaseRecord | None) -> bool:
        """Whether `other` is this record unchanged (what client-go compares to judge expiry by observation)."""
        return other is not None and (
            self.holder,
            self.duration_s,
            self.transitions,
            self.acquire_time,
            self.renew_time,
        ) == (other.holder, other.duration_s, other.transitions, other.acquire_time, other.renew_time)


class LeaseCalls(KubeCalls):
    """Acquire, renew and release a coordination.k8s.io/v1 Lease."""

    # --- holder records (expiry judged by the caller, by observation) ---

    def _record(self, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        meta = lease.get("metadata") or {}
        return LeaseRecord(
            holder=str(spec.get("holderIdentity") or ""),
            duration_s=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            resource_version=str(meta.get("resourceVersion") or ""),
            annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
        )

    def read_lease_record(self, namespace: str, name: str, *, timeout_s: float | None = None) -> LeaseRecord | None:
        """The Lease's record, or None when it does not exist."""
        what = f"read lease {namespace}/{name}"
        try:
            lease = self._call(
                what, lambda: self.coordination.read_namespaced_lease(name, namespace, _request_timeout=timeout_s)
            )
        except KubeNotFound:
            return None
        return self._record(self._dict(lease))

    def _lease_body(
        self, namespace: str, name: str, spec: Mapping[str, Any], annotations: Mapping[str, str], rv: str | None
    ) -> client.V1Lease:
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": dict(annotations)}
        if rv is not None:
            metadata["resourceVersion"] = rv
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": dict(spec)}
        return client.V1Lease.model_validate(body)

    def create_lease_record(
        self,
        namespace: str,
        name: str,
        holder: str,
        duration_s: float,
        *,
        annotations: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> LeaseRecord | None:
        """Create the Lease held by `holder`; None when someone created it first."""
        stamp = self._micro_time()
        spec = {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, math.ceil(duration_s)),
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        }
        body = self._lease_body(namespace, name, spec, annotations or {}, None)
        what = f"create lease {namespace}/{name}"
        try:
            created = self._call(
                what,
                lambda: self.coordination.create_namespaced_lease(
                    namespace, body, field_manager=self.field_manager, _request_timeout=timeout_s
                ),
            )
        except KubeConflict:
            return None
        return self._record(self._dict(created))

    def update_lease_record(
        self,
        namespace: str,
        name: str,
        current: LeaseRecord,
        holder: str,
        duration_s: float,
        *,
        annotations: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> LeaseRecord | None:
        """Write `holder` ("" releases) over `current`, only if unchanged since it was read; None when someone
        wrote first. Taking it from another holder stamps acquireTime and counts a transition, as client-go does."""
        stamp = self._micro_time()
        taken = bool(holder) and holder != current.holder
        spec: dict[str, Any] = {
            "holderIdentity": holder or None,
            "leaseDurationSeconds": max(1, math.ceil(duration_s)),
            "acquireTime": stamp if taken else current.acquire_time,
            "renewTime": stamp,
            "leaseTransitions": current.transitions + (1 if taken else 0),  # from a released lease too
        }
        kept = dict(current.annotations if annotations is None else annotations)
        body = self._lease_body(namespace, name, spec, kept, current.resource_version)
        what = f"update lease {namespace}/{name}"
        try:
            written = self._call(
                what,
                lambda: self.coordination.replace_namespaced_lease(
                    name, namespace, body, field_manager=self.field_manager, _request_timeout=timeout_s
                ),
            )
        except KubeConflict:
            return None
        return self._record(self._dict(written))

    def annotate_lease(
        self, namespace: str, name: str, annotations: Mapping[str, str], *, timeout_s: float | None = None
    ) -> bool:
        """Set `annotations` on the Lease and leave everything else as read (holderIdentity, renewTime, the whole
        spec): written with the resourceVersion read, re-read and retried on 409. False when it does not exist."""
        what = f"annotate lease {namespace}/{name}"

        def attempt() -> bool:
            try:
                lease = self._dict(
                    self._call(
                        f"read lease {namespace}/{name}",
                        lambda: self.coordination.read_namespaced_lease(name, namespace, _request_timeout=timeout_s),
                    )
                )
            except KubeNotFound:
                return False
            meta = lease.setdefault("metadata", {})
            current = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
            if all(current.get(key) == value for key, value in annotations.items()):
                return True
            meta["annotations"] = {**current, **annotations}
            body = client.V1Lease.model_validate(lease)
            self._call(
                what,
                lambda: self.coordination.replace_namespaced_lease(
                    name, namespace, body, field_manager=self.field_manager, _request_timeout=timeout_s
                ),
            )
            return True

        return self._with_conflict_retry(what, attempt)

    # --- renewTime-judged calls ---

    def _read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            what = f"read lease {namespace}/{name}"
            return self._dict(self._call(what, lambda: self.coordination.read_namespaced_lease(name, namespace)))
        except KubeNotFound:
            return None

    def _micro_time(self) -> str:
        return self._now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def acquire_or_renew_lease(self, namespace: str, name: str, holder: str, duration_s: float) -> bool:
        """True when `holder` holds the lease afterwards: created, renewed, or taken over after expiry."""
        stamp, seconds = self._micro_time(), max(1, math.ceil(duration_s))
        lease = self._read_lease(namespace, name)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": seconds,
                    "acquireTime": stamp,
                    "renewTime": stamp,
                    "leaseTransitions": 0,
                },
            }
            create = client.V1Lease.model_validate(body)
            try:
                self._call(
                    f"create lease {namespace}/{name}",
                    lambda: self.coordination.create_namespaced_lease(namespace, create),
                )
            except KubeConflict:
                return False  # someone else created it first
            return True
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != holder:
            if not self._lease_expired(spec):
                return False
            spec.update(holderIdentity=holder, acquireTime=stamp)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(renewTime=stamp, leaseDurationSeconds=seconds)
        return self._replace_lease(namespace, name, {**lease, "spec": spec})

    def _lease_expired(self, spec: Mapping[str, Any]) -> bool:
        if not spec.get("holderIdentity") or not spec.get("renewTime"):
            return True
        renewed = datetime.datetime.fromisoformat(str(spec["renewTime"]).replace("Z", "+00:00"))
        expires = renewed + datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))
        return self._now() >= expires

    def _replace_lease(self, namespace: str, name: str, lease: dict[str, Any]) -> bool:
        body = client.V1Lease.model_validate(lease)
        try:
            self._call(
                f"update lease {namespace}/{name}",
                lambda: self.coordination.replace_namespaced_lease(
                    name, namespace, body, field_manager=self.field_manager
                ),
            )
        except KubeConflict:
            return False  # someone else renewed or took it between our read and write
        return True

    def release_lease(self, namespace: str, name: str, holder: str) -> bool:
        """Give the lease up if `holder` holds it (as client-go does: empty holder, 1 s duration)."""
        lease = self._read_lease(namespace, name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != holder:
            return False
        spec = {**(lease.get("spec") or {}), "holderIdentity": None, "leaseDurationSeconds": 1}
        spec["renewTime"] = self._micro_time()
        return self._replace_lease(namespace, name, {**lease, "spec": spec})
