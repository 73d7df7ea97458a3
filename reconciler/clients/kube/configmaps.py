"""Kubernetes client, ConfigMaps as storage: read, create, replace (only at a resourceVersion), list and delete.

A part of KubeClient (client.py), on the plumbing of calls.py, under the state and alert stores
(state_store.py, alert_store.py). Objects go and come back as plain API dicts, `binaryData`
included (base64 on the wire); a replace carries the resourceVersion it was computed from, so a
concurrent write answers KubeConflict instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from reconciler.clients.kube.calls import KubeCalls, KubeNotFound


class ConfigMapCalls(KubeCalls):
    """Whole-object ConfigMap calls for the stores (one-key writes are `KubeClient.set_config_map_key`)."""

    def read_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap as an API dict, or None when it does not exist."""
        what = f"read configmap {namespace}/{name}"
        try:
            return self._dict(self._call(what, lambda: self.core.read_namespaced_config_map(name, namespace)))
        except KubeNotFound:
            return None

    def _body(self, namespace: str, name: str, manifest: Mapping[str, Any]) -> client.V1ConfigMap:
        metadata = {**(manifest.get("metadata") or {}), "name": name, "namespace": namespace}
        return client.V1ConfigMap.model_validate(
            {"apiVersion": "v1", "kind": "ConfigMap", **manifest, "metadata": metadata}
        )

    def create_config_map(self, namespace: str, name: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create it (KubeConflict when it already exists); returns the stored object."""
        body = self._body(namespace, name, manifest)
        what = f"create configmap {namespace}/{name}"
        return self._dict(
            self._call(
                what, lambda: self.core.create_namespaced_config_map(namespace, body, field_manager=self.field_manager)
            )
        )

    def replace_config_map(
        self, namespace: str, name: str, manifest: Mapping[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """Replace it only if unchanged since `resource_version` (else KubeConflict); returns the stored object."""
        metadata = {**(manifest.get("metadata") or {}), "resourceVersion": resource_version}
        body = self._body(namespace, name, {**manifest, "metadata": metadata})
        what = f"replace configmap {namespace}/{name}"
        return self._dict(
            self._call(
                what,
                lambda: self.core.replace_namespaced_config_map(
                    name, namespace, body, field_manager=self.field_manager
                ),
            )
        )

    def list_config_maps(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        what = f"list configmaps in {namespace} ({label_selector})"
        found = self._call(what, lambda: self.core.list_namespaced_config_map(namespace, label_selector=label_selector))
        return [self._dict(item) for item in found.items or []]

    def delete_config_map(self, namespace: str, name: str) -> bool:
        """Delete it; False when it was already gone."""
        what = f"delete configmap {namespace}/{name}"
        try:
            self._call(what, lambda: self.core.delete_namespaced_config_map(name, namespace))
        except KubeNotFound:
            return False
        return True
