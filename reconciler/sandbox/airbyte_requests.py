"""Airbyte stand-in, request side: a request's JSON body and query parameters, and one page of a list.

Shared by the resource handlers (airbyte_workspaces.py, airbyte_actors.py, airbyte_connections.py,
airbyte_jobs.py) under airbyte_server.py. Every helper answers a bad request by raising a Problem
(400), as the real server does. Pages carry `next` on every non-empty page, like Airbyte's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from reconciler.sandbox.airbyte_problems import bad_request
from reconciler.sandbox.http_util import Request, Response, json_response


def request_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError as error:
        raise bad_request("The request body is not valid JSON.") from error
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def page_response(
    request: Request,
    base_url: str,
    path: str,
    items: Sequence[Mapping[str, Any]],
    filters: Mapping[str, str],
    answer: Callable[[Mapping[str, Any]], dict[str, Any]] = dict,
) -> Response:
    """One page of a list, with `next` on every non-empty page and `previous` after the first (else "").

    `items` are the stored objects that match; only the page's own are turned into answers by
    `answer`, so reading every page of N objects costs O(N) answers, not O(N) per page.
    """
    limit = _int_param(request, "limit", 20, 1, 100)
    offset = _int_param(request, "offset", 0, 0, None)
    page = [answer(item) for item in items[offset : offset + limit]]

    def link(at: int) -> str:
        return f"{base_url}{path}?{urlencode({**filters, 'limit': limit, 'offset': at})}"

    body = {
        "next": link(offset + limit) if page else "",
        "previous": link(max(offset - limit, 0)) if offset else "",
        "data": page,
    }
    return json_response(200, body)


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.first(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise bad_request(f"{name} must be an integer, got {raw!r}.") from error
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request(f"{name} must be {bounds}, got {value}.")
    return value


def bool_param(request: Request, name: str) -> bool:
    raw = (request.first(name) or "false").lower()
    if raw not in ("true", "false"):
        raise bad_request(f"{name} must be true or false, got {raw!r}.")
    return raw == "true"


def workspace_ids(request: Request) -> list[str]:
    """workspaceIds, repeated (`?workspaceIds=a&workspaceIds=b`) or comma separated."""
    ids = [part.strip() for value in request.query.get("workspaceIds", []) for part in value.split(",") if part.strip()]
    for workspace_id in ids:
        try:
            uuid.UUID(workspace_id)
        except ValueError as error:
            raise bad_request(f"workspaceIds: {workspace_id!r} is not a UUID.") from error
    return ids


def list_filters(request: Request, workspace_ids: list[str], include_deleted: bool | None = None) -> dict[str, str]:
    """The query parameters a next/previous link carries before limit and offset."""
    filters = {"workspaceIds": ",".join(workspace_ids)}
    if include_deleted is not None:
        filters["includeDeleted"] = "true" if include_deleted else "false"
    return filters


def required_string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name} is required and must be a non-empty string.")
    return value
