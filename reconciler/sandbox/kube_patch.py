"""Kubernetes stand-in, patch documents: RFC 7386 merge patch, strategic merge patch, RFC 6902 JSON patch.

Pure functions from (live object, patch) to the patched object; kube_verbs.py picks one by the
request's content type, and server-side apply (kube_fields.py tracks its field ownership) merges
like a strategic merge. Errors are the API server's own (`ApiStatusError` from kube_store.py).

Simplifications, on purpose: strategic merge knows the merge keys of the lists a workload carries
(containers, env, volumes, ports...) by field name, not from the OpenAPI schema; `$retainKeys`,
`$setElementOrder` and `$deleteFromPrimitiveList` directives are dropped.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.sandbox.kube_store import ApiStatusError, bad_request

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
