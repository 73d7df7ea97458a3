"""Alert records in Kubernetes: the controller's message-per-alert map in a ConfigMap beside the state shards.

An `AlertStore` (reconciler/alerts.py) on ConfigMapCalls, opened by the service's `alert_store`
for an environment with `state: {kubernetes: ...}`: ConfigMap `<name>-alerts` in the state
namespace, `binaryData["alerts.json.gz"]`. Each save carries the resourceVersion it was computed
from; on a 409 it re-reads and applies only the keys it changed since its last read (`merge_alerts`),
so a record another writer added or changed is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.alerts import AlertRecord, decode_alerts, encode_alerts, merge_alerts
from reconciler.clients.kube.calls import KubeConflict, KubeError
from reconciler.clients.kube.configmaps import ConfigMapCalls
from reconciler.clients.kube.state_store import (
    ENVIRONMENT_LABEL,
    MANAGED_BY,
    PART_LABEL,
    STATE_LABEL,
    WRITE_ATTEMPTS,
    gunzip_b64,
    gzip_b64,
)
from reconciler.errors import ApiError

ALERTS_KEY = "alerts.json.gz"


def alerts_config_map(state_name: str) -> str:
    return f"{state_name}-alerts"


class KubeAlertStore:
    """One environment's alert records in ConfigMap `<state name>-alerts`."""

    def __init__(self, kube: ConfigMapCalls, namespace: str, state_name: str, environment: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.state_name = state_name
        self.name = alerts_config_map(state_name)
        self.environment = environment
        self._base: dict[str, AlertRecord] = {}
        self._resource_version: str | None = None

    @property
    def where(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    def _read(self) -> tuple[dict[str, AlertRecord], str | None]:
        live = self.kube.read_config_map(self.namespace, self.name)
        if live is None:
            return {}, None
        data = (live.get("binaryData") or {}).get(ALERTS_KEY)
        alerts = decode_alerts(gunzip_b64(data, self.where), self.where, self.environment) if data else {}
        return alerts, str(live["metadata"]["resourceVersion"])

    def load(self) -> dict[str, AlertRecord]:
        try:
            self._base, self._resource_version = self._read()
        except KubeError as exc:
            raise ApiError("kubernetes", f"alert records {self.where}: {exc}", status=exc.status) from None
        return dict(self._base)

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        ours = dict(alerts)
        theirs, version = dict(self._base), self._resource_version
        try:
            for _ in range(WRITE_ATTEMPTS):
                merged = merge_alerts(self._base, ours, theirs)
                if merged == theirs and (version is not None or not merged):
                    break  # nothing new to store
                manifest: dict[str, Any] = {
                    "metadata": {
                        "labels": {
                            **MANAGED_BY,
                            STATE_LABEL: self.state_name,
                            PART_LABEL: "alerts",
                            ENVIRONMENT_LABEL: self.environment,
                        }
                    },
                    "binaryData": {ALERTS_KEY: gzip_b64(encode_alerts(self.environment, merged))},
                }
                try:
                    if version is None:
                        written = self.kube.create_config_map(self.namespace, self.name, manifest)
                    else:
                        written = self.kube.replace_config_map(self.namespace, self.name, manifest, version)
                except KubeConflict:
                    theirs, version = self._read()  # someone wrote since our read: merge onto theirs
                    continue
                version = str(written["metadata"]["resourceVersion"])
                break
            else:
                raise ApiError("kubernetes", f"alert records {self.where}: still conflicting", status=409)
        except KubeError as exc:
            raise ApiError("kubernetes", f"alert records {self.where}: {exc}", status=exc.status) from None
        self._base, self._resource_version = ours, version
