"""Kubernetes stand-in, state layer: stored objects, the errors the API server answers with, validation.

Below kube_verbs.py (what each verb does) and kube_server.py (HTTP, auth, routing), beside
kube_rollout.py (the Deployment controller), kube_patch.py (patch formats) and kube_fields.py
(field ownership). It keeps objects in API shape under one lock and stamps what the API server
stamps (uid, creationTimestamp, a global resourceVersion bumped on every write, generation for
objects with a spec).

Simplifications, on purpose: validation covers only what the stand-in relies on (names, selector,
container name/image, env value vs valueFrom, base64 Secret data).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import pathlib
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from reconciler.atomic import atomic_write  # the file holds secrets: mode 0600

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ResourceType:
    plural: str
    group: str
    version: str
    kind: str
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the API server names the resource in messages: `deployments.apps`, `configmaps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


CONFIGMAPS = ResourceType("configmaps", "", "v1", "ConfigMap")
SECRETS = ResourceType("secrets", "", "v1", "Secret")
PODS = ResourceType("pods", "", "v1", "Pod")
DEPLOYMENTS = ResourceType("deployments", "apps", "v1", "Deployment", has_generation=True)
LEASES = ResourceType("leases", "coordination.k8s.io", "v1", "Lease")
STORED = {rt.plural: rt for rt in (CONFIGMAPS, SECRETS, DEPLOYMENTS, LEASES)}
BY_KIND = {rt.kind: rt for rt in STORED.values()}
Key = tuple[str, str, str]  # (plural, namespace, name)


def now_rfc3339(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- errors: always a Status object ------------------------------------------------------


class ApiStatusError(Exception):
    """An error the stand-in answers with, as a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body.update(message=self.message, reason=self.reason, code=self.code)
        if self.details is not None:
            body["details"] = self.details
        return body


def status_details(rt: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": rt.group, "kind": rt.plural} if rt.group else {"name": name, "kind": rt.plural}


def not_found(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(404, "NotFound", f'{rt.qualified} "{name}" not found', status_details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', status_details(rt, name))


def modified_conflict(rt: ResourceType, name: str) -> ApiStatusError:
    message = (
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiStatusError(409, "Conflict", message, status_details(rt, name))


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)


def invalid(rt: ResourceType, name: str, problems: list[tuple[str, str]]) -> ApiStatusError:
    """422 Invalid, worded like the API server: `Deployment.apps "x" is invalid: field: Required value`."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    text = ", ".join(f"{field}: {problem}" for field, problem in problems)
    causes = [{"reason": "FieldValueInvalid", "message": problem, "field": field} for field, problem in problems]
    details = {**status_details(rt, name), "kind": rt.kind, "causes": causes}
    return ApiStatusError(422, "Invalid", f'{kind} "{name}" is invalid: {text}', details)


# --- validation and defaults ---------------------------------------------------------------


def fold_secret(obj: dict[str, Any]) -> None:
    """stringData folds into base64 `data` on write, like the API server; data must be base64."""
    data = dict(obj.get("data") or {})
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as error:
            raise bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at key {key!r}'
            ) from error
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data
    obj.setdefault("type", "Opaque")


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    )


MAX_DATA_BYTES = 1024 * 1024
"""What a ConfigMap's data + binaryData (decoded) or a Secret's data may total (`core.MaxSecretSize`)."""
MAX_ANNOTATION_BYTES = 256 * 1024
"""What an object's annotations (keys and values) may total (`TotalAnnotationSizeLimitB`)."""


def _data_bytes(rt: ResourceType, obj: dict[str, Any]) -> int:
    """The size the API server's validation counts: Go `len` of each value, binary data decoded."""
    total = 0
    for value in (obj.get("data") or {}).values():
        text = str(value)
        total += len(base64.b64decode(text)) if rt is SECRETS else len(text.encode())
    for value in (obj.get("binaryData") or {}).values():
        try:
            total += len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError) as error:
            raise bad_request(
                'ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal base64 data in binaryData'
            ) from error
    return total


def validate_size(rt: ResourceType, obj: dict[str, Any]) -> None:
    """422 Invalid for data over 1 MiB (ConfigMap, Secret) or annotations over 256 KiB, worded like the API server:
    `ConfigMap "x" is invalid: []: Too long: must have at most 1048576 bytes` (ValidateConfigMap's empty field path;
    a Secret's is `data`)."""
    name = str(obj["metadata"]["name"])
    annotations = obj["metadata"].get("annotations") or {}
    if sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items()) > MAX_ANNOTATION_BYTES:
        problem = f"Too long: must have at most {MAX_ANNOTATION_BYTES} bytes"
        raise invalid(rt, name, [("metadata.annotations", problem)])
    if rt in (CONFIGMAPS, SECRETS) and _data_bytes(rt, obj) > MAX_DATA_BYTES:
        where = "data" if rt is SECRETS else "[]"
        raise invalid(rt, name, [(where, f"Too long: must have at most {MAX_DATA_BYTES} bytes")])


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    validate_size(rt, obj)
    if rt is not DEPLOYMENTS:
        return
    problems: list[tuple[str, str]] = []
    spec = obj.get("spec") or {}
    if not (spec.get("selector") or {}).get("matchLabels"):
        problems.append(("spec.selector", "Required value"))
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key, value in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
        if template_labels.get(key) != value:
            problems.append(
                ("spec.template.metadata.labels", "Invalid value: `selector` does not match template `labels`")
            )
            break
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        problems.append(("spec.template.spec.containers", "Required value"))
    for i, container in enumerate(containers):
        where = f"spec.template.spec.containers[{i}]"
        for required in ("name", "image"):
            if not container.get(required):
                problems.append((f"{where}.{required}", "Required value"))
        for j, env in enumerate(container.get("env") or []):
            if env.get("value") and env.get("valueFrom"):
                problems.append(
                    (f"{where}.env[{j}].valueFrom", 'Invalid value: "": may not be specified when `value` is not empty')
                )
    if problems:
        raise invalid(rt, name, problems)


# --- the store ---------------------------------------------------------------------------


class KubeStore:
    """Objects by (plural, namespace, name), plus per-object controller state. Hold `lock` around read-modify-write."""

    def __init__(self, state_file: pathlib.Path | None = None) -> None:
        self.lock = threading.RLock()
        self.objects: dict[Key, dict[str, Any]] = {}
        self.controller: dict[Key, dict[str, Any]] = {}  # e.g. a Deployment's ReplicaSets
        self._resource_version = 0
        self._state_file = state_file

    @property
    def resource_version(self) -> str:
        return str(self._resource_version)

    def next_resource_version(self) -> str:
        with self.lock:
            self._resource_version += 1
            return str(self._resource_version)

    def listed(self, rt: ResourceType, namespace: str) -> list[dict[str, Any]]:
        with self.lock:
            found = [obj for (plural, ns, _), obj in self.objects.items() if plural == rt.plural and ns == namespace]
            return sorted(found, key=lambda obj: str(obj["metadata"]["name"]))

    def stamp_write(self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], moment: float) -> None:
        """System metadata for a write of `new` over `old`: uid, creation time, generation, resourceVersion."""
        meta = new.setdefault("metadata", {})
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339(moment)
            if rt.has_generation:
                meta["generation"] = 1
        else:
            for field in ("uid", "creationTimestamp", "generation"):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)
            if rt.has_generation and new.get("spec") != old.get("spec"):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = self.next_resource_version()

    # --- persistence ---

    def load(self) -> None:
        if self._state_file is None or not self._state_file.exists():
            return
        data = json.loads(self._state_file.read_text(encoding="utf-8"))
        with self.lock:
            self._resource_version = int(data.get("resourceVersion", 0))
            self.objects = {tuple(entry["key"]): entry["object"] for entry in data.get("objects", [])}
            self.controller = {tuple(entry["key"]): entry["state"] for entry in data.get("controller", [])}

    def save(self) -> None:
        """Atomically replace the state file (no-op without one)."""
        if self._state_file is None:
            return
        with self.lock:
            data = {
                "version": _FORMAT_VERSION,
                "resourceVersion": self._resource_version,
                "objects": [{"key": list(key), "object": obj} for key, obj in sorted(self.objects.items())],
                "controller": [{"key": list(key), "state": state} for key, state in sorted(self.controller.items())],
            }
            atomic_write(self._state_file, json.dumps(data, indent=1, sort_keys=True))
