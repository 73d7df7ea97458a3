"""Kubernetes stand-in, state layer: stored objects and how each kind of write changes them.

Below kube_server.py (HTTP, auth, routing) and beside kube_rollout.py (the Deployment controller).
It keeps objects in API shape under one lock, stamps what the API server stamps (uid,
creationTimestamp, a global resourceVersion bumped on every write, generation for objects with a
spec), implements the patch formats (RFC 7386 merge, strategic merge, RFC 6902 JSON patch,
server-side apply) and tracks field ownership in metadata.managedFields.

Simplifications, on purpose: strategic merge knows the merge keys of the lists a workload carries
(containers, env, volumes, ports...) by field name, not from the OpenAPI schema; `$retainKeys`,
`$setElementOrder` and `$deleteFromPrimitiveList` directives are dropped. Server-side apply merges
like a strategic merge, tracks which manager owns which leaf field (409 on a conflicting value
unless force=true), but does not remove fields a manager stops applying. Incoming managedFields in
a request body are ignored. Validation covers only what the stand-in relies on (names, selector,
container name/image, env value vs valueFrom, base64 Secret data).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import json
import os
import pathlib
import tempfile
import threading
import uuid
from dataclasses import dataclass
from typing import Any

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


# --- patch documents ---------------------------------------------------------------------

# Strategic merge keys by list field name (what a workload's objects carry).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
}
_DIRECTIVE_PREFIXES = ("$retainKeys", "$setElementOrder/", "$deleteFromPrimitiveList/")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, field: str | None = None) -> Any:
    """Kubernetes strategic merge patch: keyed lists merge item by item, `$patch` directives apply."""
    if isinstance(patch, list) and field in MERGE_KEYS and isinstance(target, list):
        return _merge_keyed_list(target, patch, MERGE_KEYS[field])
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    body = {k: v for k, v in patch.items() if k != "$patch" and not k.startswith(_DIRECTIVE_PREFIXES)}
    if directive == "replace":
        return copy.deepcopy(body)
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in body.items():
        if value is None:
            result.pop(key, None)
            continue
        merged = strategic_merge(result.get(key), value, key)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_keyed_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {key}")
        position = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(strategic_merge({}, item))
        else:
            result[position] = strategic_merge(result[position], item)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise KeyError(part)
    return doc


def _json_patch_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, parts = op.get("op"), _pointer(str(op.get("path", "")))
    if kind == "test":
        if _walk(doc, parts) != op.get("value"):
            raise ValueError(f"testing value {op.get('path')} failed")
        return doc
    if kind in ("move", "copy"):
        value = copy.deepcopy(_walk(doc, _pointer(str(op.get("from", "")))))
        if kind == "move":
            doc = _json_patch_op(doc, {"op": "remove", "path": op["from"]})
        return _json_patch_op(doc, {"op": "add", "path": op["path"], "value": value})
    if not parts:
        return None if kind == "remove" else copy.deepcopy(op.get("value"))
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    if kind == "add":
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if index > len(parent):
                raise KeyError(last)
            parent.insert(index, copy.deepcopy(op.get("value")))
        elif isinstance(parent, dict):
            parent[last] = copy.deepcopy(op.get("value"))
        else:
            raise KeyError(last)
    elif kind in ("remove", "replace"):
        _walk(parent, [last])  # must exist
        if kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op.get("value"))
    else:
        raise bad_request(f"Unexpected kind: {kind}")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch, all or nothing. A failed op answers 422 the way the API server does."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result = copy.deepcopy(doc)
    try:
        for op in ops:
            result = _json_patch_op(result, op)
    except (KeyError, ValueError, IndexError) as error:
        # The API server wraps jsonpatch errors in a generic 422 that drops the detail.
        message = "the server rejected our request due to an error in our request"
        raise ApiStatusError(422, "Invalid", message, {}) from error
    return result


# --- field ownership (metadata.managedFields, FieldsV1) ----------------------------------

Path = tuple[Any, ...]  # str for a map key, ("k", json_of_key) for an item of a keyed list
_UNOWNED = {("metadata", f) for f in ("name", "namespace", "uid", "resourceVersion", "generation")}


def leaf_fields(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every leaf of `obj` by path; items of keyed lists are addressed by their merge key."""
    if isinstance(obj, dict) and obj:
        out: dict[Path, Any] = {}
        for key, value in obj.items():
            out.update(leaf_fields(value, (*prefix, key)))
        return out
    field = prefix[-1] if prefix and isinstance(prefix[-1], str) else None
    if isinstance(obj, list) and obj and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        if all(isinstance(item, dict) and key in item for item in obj):
            out = {}
            for item in obj:
                out.update(leaf_fields(item, (*prefix, ("k", json.dumps({key: item[key]}, separators=(",", ":"))))))
            return out
    return {prefix: obj}


def owned_leaves(obj: dict[str, Any]) -> dict[Path, Any]:
    """Leaves a field manager can own: not status, not the system-set metadata."""
    leaves = leaf_fields({k: v for k, v in obj.items() if k not in ("status", "apiVersion", "kind")})
    return {
        path: value
        for path, value in leaves.items()
        if path[:2] not in _UNOWNED
        and path[:2] != ("metadata", "managedFields")
        and path[:2] != ("metadata", "creationTimestamp")
    }


def render_path(path: Path) -> str:
    """`.spec.template.spec.containers[name="app"].image`, as apply conflicts name fields."""
    out = ""
    for part in path:
        if isinstance(part, str):
            out += f".{part}"
        else:
            ((key, value),) = json.loads(part[1]).items()
            out += f"[{key}={json.dumps(value)}]"
    return out


def encode_fields(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path:
            if isinstance(part, str):
                node = node.setdefault(f"f:{part}", {})
            else:
                node = node.setdefault(f"k:{part[1]}", {})
                node.setdefault(".", {})
    return tree


def decode_fields(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for name, sub in tree.items():
        if name == ".":
            continue
        part: Any = name[2:] if name.startswith("f:") else ("k", name[2:])
        children = {k: v for k, v in sub.items() if k != "."}
        if children:
            paths |= decode_fields(children, (*prefix, part))
        elif name.startswith("f:"):
            paths.add((*prefix, part))
    return paths


def ownership(obj: dict[str, Any]) -> dict[tuple[str, str], set[Path]]:
    """(manager, operation) -> owned paths, from metadata.managedFields."""
    owners: dict[tuple[str, str], set[Path]] = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        owners[(entry["manager"], entry["operation"])] = decode_fields(entry.get("fieldsV1") or {})
    return owners


def set_ownership(obj: dict[str, Any], owners: dict[tuple[str, str], set[Path]], rt: ResourceType, stamp: str) -> None:
    previous = {
        (e["manager"], e["operation"]): e.get("time", stamp) for e in obj["metadata"].get("managedFields") or []
    }
    entries = [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": rt.api_version,
            "time": previous.get((manager, operation), stamp),
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(paths),
        }
        for (manager, operation), paths in owners.items()
        if paths
    ]
    obj["metadata"]["managedFields"] = entries


def record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, rt: ResourceType, stamp: str) -> None:
    """An Update by `manager` takes the fields it changed from everyone else."""
    owners = ownership(old) if old else {}
    before, after = owned_leaves(old) if old else {}, owned_leaves(new)
    changed = {p for p, v in after.items() if before.get(p, object()) != v}
    gone = set(before) - set(after)
    for paths in owners.values():
        paths -= changed | gone
    owners.setdefault((manager, "Update"), set()).update(changed)
    new["metadata"]["managedFields"] = (old or {}).get("metadata", {}).get("managedFields") or []
    set_ownership(new, owners, rt, stamp)
    if changed:
        for entry in new["metadata"]["managedFields"]:
            if (entry["manager"], entry["operation"]) == (manager, "Update"):
                entry["time"] = stamp


def apply_conflicts(live: dict[str, Any], config: dict[str, Any], manager: str) -> dict[Path, list[str]]:
    """Fields the apply would change that another manager owns: path -> those managers."""
    owners, current = ownership(live), owned_leaves(live)
    conflicts: dict[Path, list[str]] = {}
    for path, value in owned_leaves(config).items():
        if path in current and current[path] != value:
            others = sorted({m for (m, _), paths in owners.items() if m != manager and path in paths})
            if others:
                conflicts[path] = others
    return conflicts


def record_apply(
    live: dict[str, Any], config: dict[str, Any], manager: str, taken: set[Path], rt: ResourceType, stamp: str
) -> None:
    """After an apply `manager` owns exactly what it applied; a forced apply `taken` those fields from the others."""
    owners = ownership(live)
    for (name, _), paths in owners.items():
        if name != manager:
            paths -= taken
    owners[(manager, "Apply")] = set(owned_leaves(config))
    set_ownership(live, owners, rt, stamp)
    for entry in live["metadata"]["managedFields"]:
        if (entry["manager"], entry["operation"]) == (manager, "Apply"):
            entry["time"] = stamp


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


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
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
            _atomic_write(self._state_file, json.dumps(data, indent=1, sort_keys=True))


def _atomic_write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o600)  # it holds Secrets
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
