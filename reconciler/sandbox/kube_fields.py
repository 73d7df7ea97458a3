"""Kubernetes stand-in, field ownership: who manages which field (metadata.managedFields, FieldsV1).

Used by kube_verbs.py on every write: an Update takes the fields it changed from everyone else;
a server-side apply owns exactly what it applied, and answers 409 when it would change a value
another manager owns (unless force=true, which takes those fields over). Items of keyed lists are
addressed by their merge key (kube_patch.MERGE_KEYS), as `k:{"name":"app"}` in FieldsV1.

Simplifications, on purpose: an apply does not remove fields its manager stops applying, and
incoming managedFields in a request body are ignored.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.sandbox.kube_patch import MERGE_KEYS
from reconciler.sandbox.kube_store import ApiStatusError, ResourceType

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


def apply_conflict_error(rt: ResourceType, name: str, conflicts: dict[Path, list[str]]) -> ApiStatusError:
    """The 409 an apply answers, one cause per conflicting field and manager, worded like the API server."""
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{manager}" using {rt.api_version}',
            "field": render_path(path),
        }
        for path, managers in sorted(conflicts.items(), key=lambda item: render_path(item[0]))
        for manager in managers
    ]
    if len(causes) == 1:
        message = f"Apply failed with 1 conflict: {causes[0]['message']}: {causes[0]['field']}"
    else:
        lines = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
        message = f"Apply failed with {len(causes)} conflicts: \n{lines}"
    return ApiStatusError(
        409, "Conflict", message, {"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}
    )
