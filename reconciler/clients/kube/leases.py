"""Kubernetes client, leases: leader election on a coordination.k8s.io Lease, the way client-go does it.

A part of KubeClient (kube.py), on the plumbing of kube_calls.py. A holder acquires a Lease,
renews it within its duration, takes it over only after it expired, and gives it up by clearing
the holder; a write that loses a race (409) answers False instead of raising.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from reconciler.clients.kube.calls import KubeCalls, KubeConflict, KubeNotFound


class LeaseCalls(KubeCalls):
    """Acquire, renew and release a coordination.k8s.io/v1 Lease."""

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
