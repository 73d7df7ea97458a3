"""Airbyte stand-in, workspaces: the one default workspace every resource lives in.

Routed by airbyte_server.py (`/workspaces`, `/workspaces/{workspaceId}`); airbyte_actors.py asks
`require_workspace` before creating a source or destination. Nothing here is stored: a
self-hosted Airbyte starts with exactly one workspace, and so does the stand-in.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.sandbox.airbyte_problems import bad_request, not_found
from reconciler.sandbox.airbyte_requests import list_filters, page_response, workspace_ids
from reconciler.sandbox.http_util import Request, Response, json_response

DEFAULT_WORKSPACE_ID = "2f1b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
DEFAULT_WORKSPACE_NAME = "Default Workspace"


def workspace() -> dict[str, Any]:
    off = {"email": {"enabled": False}, "webhook": {"enabled": False}}
    notifications = {name: copy.deepcopy(off) for name in ("failure", "success", "syncDisabled")}
    return {
        "workspaceId": DEFAULT_WORKSPACE_ID,
        "name": DEFAULT_WORKSPACE_NAME,
        "dataResidency": "auto",
        "notifications": notifications,
    }


def list_workspaces(request: Request, base_url: str) -> Response:
    wanted = workspace_ids(request)
    items = [workspace()] if not wanted or DEFAULT_WORKSPACE_ID in wanted else []
    return page_response(request, base_url, "/workspaces", items, list_filters(request, wanted))


def get_workspace(workspace_id: str) -> Response:
    if workspace_id != DEFAULT_WORKSPACE_ID:
        raise not_found("workspace", workspace_id)
    return json_response(200, workspace())


def require_workspace(workspace_id: Any) -> str:
    if not isinstance(workspace_id, str) or not workspace_id:
        raise bad_request("workspaceId is required.")
    if workspace_id != DEFAULT_WORKSPACE_ID:
        raise not_found("workspace", workspace_id)
    return workspace_id
