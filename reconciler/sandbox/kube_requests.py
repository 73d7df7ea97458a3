"""Kubernetes stand-in, request side: which object a path names, label selectors, and a request's body.

Under kube_server.py (which resolves every object path here before dispatching) and kube_verbs.py
(which reads bodies, field managers and selectors). Only the real API's paths for the resource
types served are recognised; anything else is a 404 Status, set-based selectors a 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.sandbox import kube_store as ks
from reconciler.sandbox.http_util import Request
from reconciler.sandbox.kube_store import ApiStatusError, ResourceType

_CORE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>configmaps|secrets|pods)(?:/(?P<name>[^/]+))?$")
_GROUPED = re.compile(
    r"^/apis/(?P<group>apps|coordination\.k8s\.io)/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>deployments|leases)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$"
)
_GROUP_OF = {"deployments": "apps", "leases": "coordination.k8s.io"}


def resolve_path(path: str) -> tuple[ResourceType, str, str | None, str | None]:
    """(resource type, namespace, name, subresource) of an object path; 404 Status otherwise."""
    match = _CORE.match(path) or _GROUPED.match(path)
    groups = match.groupdict() if match else {}
    plural = groups.get("plural")
    if not match or plural is None or groups.get("group", _GROUP_OF.get(plural)) != _GROUP_OF.get(plural):
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource", {})
    rt = ks.PODS if plural == "pods" else ks.STORED[plural]
    return rt, groups["ns"], groups.get("name"), groups.get("sub")


def parse_selector(text: str) -> list[tuple[str, str, str | None]]:
    """`a=b,c!=d,e,!f` -> [(op, key, value)]; set-based selectors are refused."""
    terms: list[tuple[str, str, str | None]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        if " in " in raw or " notin " in raw or "(" in raw:
            raise ks.bad_request(f"unable to parse requirement: set-based selector {raw!r} is not supported here")
        for op in ("!=", "==", "="):
            if op in raw:
                key, value = raw.split(op, 1)
                terms.append(("!=" if op == "!=" else "=", key.strip(), value.strip()))
                break
        else:
            terms.append(("!", raw[1:].strip(), None) if raw.startswith("!") else ("exists", raw, None))
    return terms


def selects(terms: list[tuple[str, str, str | None]], labels: dict[str, str]) -> bool:
    for op, key, value in terms:
        if (
            (op == "=" and labels.get(key) != value)
            or (op == "!=" and labels.get(key) == value)
            or (op == "exists" and key not in labels)
            or (op == "!" and key in labels)
        ):
            return False
    return True


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise ks.bad_request(f"error decoding request body: {error}") from error


def object_body(request: Request) -> dict[str, Any]:
    body = json_body(request.body)
    if not isinstance(body, dict):
        raise ks.bad_request("the request body must be a JSON object")
    return body


def field_manager(request: Request) -> str:
    """fieldManager, else the User-Agent's first word, as the API server names an Update's manager."""
    return request.first("fieldManager") or (request.headers.get("user-agent") or "unknown").split("/")[0]
