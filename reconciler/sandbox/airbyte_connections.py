"""Airbyte stand-in, connections: their handlers, the checks on what a connection asks for, and `/streams`.

Routed by airbyte_server.py (`/connections`, `/connections/{connectionId}`, `/streams`); finds a
connection's source and destination through airbyte_actors.py, and airbyte_jobs.py finds
connections through `stored_connection`. Answers carry the quirks of a real Airbyte: cron echoed
with " UTC", streams in a different order on every read, a deleted connection still readable with
status `deprecated`. Whether configured streams fit their source, and whether a cron expression is
valid, is airbyte_connection_checks.py's call.
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.sandbox import airbyte_catalog as catalog
from reconciler.sandbox import airbyte_connection_checks as checks
from reconciler.sandbox.airbyte_actors import DESTINATION_ACTOR, SOURCE_ACTOR, ActorHandlers
from reconciler.sandbox.airbyte_problems import bad_request, not_found
from reconciler.sandbox.airbyte_requests import (
    bool_param,
    list_filters,
    page_response,
    request_body,
    required_string,
    workspace_ids,
)
from reconciler.sandbox.airbyte_store import CONNECTIONS, Store
from reconciler.sandbox.http_util import Request, Response, empty_response, json_response

_NAMESPACE_DEFINITIONS = ("source", "destination", "custom_format")
_NON_BREAKING = ("ignore", "disable_connection", "propagate_columns", "propagate_fully")
_STATUSES = ("active", "inactive", "deprecated", "locked")
_SCHEDULE_TYPES = ("manual", "cron")


class ConnectionHandlers:
    """Handlers of one stand-in's connections; `base_url` is the public API URL, for page links."""

    def __init__(self, store: Store, base_url: Callable[[], str], actors: ActorHandlers) -> None:
        self._store, self._base_url, self._actors = store, base_url, actors
        self._reads = 0  # seeds the stream shuffle: a different order on every read

    def _connection_answer(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        schedule: dict[str, Any] = {"scheduleType": stored["schedule"]["scheduleType"]}
        if stored["schedule"].get("cronExpression"):
            schedule["cronExpression"] = f"{stored['schedule']['cronExpression']} UTC"
        answer: dict[str, Any] = {
            "connectionId": stored["connectionId"],
            "name": stored["name"],
            "sourceId": stored["sourceId"],
            "destinationId": stored["destinationId"],
            "workspaceId": stored["workspaceId"],
            "status": stored["status"],
            "schedule": schedule,
            "dataResidency": stored["dataResidency"],
            "nonBreakingSchemaUpdatesBehavior": stored["nonBreakingSchemaUpdatesBehavior"],
            "namespaceDefinition": stored["namespaceDefinition"],
            "prefix": stored["prefix"],
            "configurations": {"streams": self._shuffled(stored["configurations"]["streams"])},
            "createdAt": stored["createdAt"],
            "tags": copy.deepcopy(stored["tags"]),
        }
        if stored.get("namespaceFormat") is not None:
            answer["namespaceFormat"] = stored["namespaceFormat"]
        return answer

    def _shuffled(self, streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._store.lock:
            self._reads += 1
            seed = self._reads
        answer = copy.deepcopy(streams)
        random.Random(seed).shuffle(answer)
        return answer

    def stored_connection(self, connection_id: str, *, include_deleted: bool = False) -> dict[str, Any]:
        found = self._store.get(CONNECTIONS, connection_id, include_deleted=include_deleted)
        if found is None:
            raise not_found("connection", connection_id)
        return found

    def list_connections(self, request: Request) -> Response:
        wanted = workspace_ids(request)
        include_deleted = bool_param(request, "includeDeleted")
        filters = list_filters(request, wanted, include_deleted)
        with self._store.lock:
            stored = self._store.all(CONNECTIONS, include_deleted=include_deleted)
            items = [obj for obj in stored if not wanted or obj["workspaceId"] in wanted]
            return page_response(request, self._base_url(), "/connections", items, filters, self._connection_answer)

    def get_connection(self, connection_id: str) -> Response:
        """A deleted connection still answers, with status `deprecated`."""
        with self._store.lock:
            return json_response(
                200, self._connection_answer(self.stored_connection(connection_id, include_deleted=True))
            )

    def create_connection(self, request: Request) -> Response:
        body = request_body(request)
        with self._store.lock:
            source = self._actors.stored_actor(SOURCE_ACTOR, required_string(body, "sourceId"))
            destination = self._actors.stored_actor(DESTINATION_ACTOR, required_string(body, "destinationId"))
            spec = catalog.connector(catalog.SOURCE, source["sourceType"])
            stored: dict[str, Any] = {
                "connectionId": str(uuid.uuid4()),
                "name": body.get("name") or f"{source['name']} → {destination['name']}",
                "sourceId": source["sourceId"],
                "destinationId": destination["destinationId"],
                "workspaceId": source["workspaceId"],
                "status": _enum(body, "status", _STATUSES) or "active",
                "schedule": _schedule(body.get("schedule")) if body.get("schedule") else {"scheduleType": "manual"},
                "dataResidency": "auto",  # deprecated in requests: always the workspace's
                "nonBreakingSchemaUpdatesBehavior": _enum(body, "nonBreakingSchemaUpdatesBehavior", _NON_BREAKING)
                or "ignore",
                "namespaceDefinition": _enum(body, "namespaceDefinition", _NAMESPACE_DEFINITIONS) or "destination",
                "namespaceFormat": body.get("namespaceFormat"),
                "prefix": body.get("prefix") or "",
                "configurations": {"streams": _configure(spec, _requested_streams(body))},
                "createdAt": int(time.time()),
                "tags": _tags(body.get("tags")),
            }
            self._store.put(CONNECTIONS, stored)
            return json_response(200, self._connection_answer(stored))

    def patch_connection(self, request: Request, connection_id: str) -> Response:
        """Only the fields sent change; a non-empty streams list replaces the configured catalog."""
        body = request_body(request)
        with self._store.lock:
            stored = copy.deepcopy(self.stored_connection(connection_id))
            for name, allowed in (
                ("status", _STATUSES),
                ("nonBreakingSchemaUpdatesBehavior", _NON_BREAKING),
                ("namespaceDefinition", _NAMESPACE_DEFINITIONS),
            ):
                value = _enum(body, name, allowed)
                if value is not None:
                    stored[name] = value
            for name in ("name", "namespaceFormat", "prefix"):
                if body.get(name) is not None:
                    stored[name] = body[name]
            if body.get("schedule") is not None:
                stored["schedule"] = _schedule(body["schedule"])
            if body.get("tags") is not None:
                stored["tags"] = _tags(body["tags"])
            requested = _requested_streams(body)
            if requested:
                source = self._actors.stored_actor(SOURCE_ACTOR, stored["sourceId"])
                spec = catalog.connector(catalog.SOURCE, source["sourceType"])
                stored["configurations"] = {"streams": _configure(spec, requested)}
            self._store.put(CONNECTIONS, stored)
            return json_response(200, self._connection_answer(stored))

    def delete_connection(self, connection_id: str) -> Response:
        with self._store.lock:
            self._store.deprecate_connection(self.stored_connection(connection_id))
        return empty_response(204)

    # --- streams ---

    def stream_properties(self, request: Request) -> Response:
        source_id = request.first("sourceId")
        if not source_id:
            raise bad_request("Required parameter sourceId is missing.")
        destination_id = request.first("destinationId")
        with self._store.lock:
            source = self._actors.stored_actor(SOURCE_ACTOR, source_id)
            if destination_id:
                self._actors.stored_actor(DESTINATION_ACTOR, destination_id)
        spec = catalog.connector(catalog.SOURCE, source["sourceType"])
        return json_response(200, [stream.properties() for stream in spec.streams])


def _enum(body: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise bad_request(f"{name}: {value!r} is not one of {list(allowed)}.")
    return str(value)


def _tags(tags: Any) -> list[dict[str, Any]]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise bad_request("tags must be a list of Tag objects.")
    return copy.deepcopy(tags)


def _requested_streams(body: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    configurations = body.get("configurations")
    if configurations is None:
        return None
    streams = configurations.get("streams") if isinstance(configurations, dict) else None
    if streams is None:
        return None
    if not isinstance(streams, list) or not all(isinstance(item, dict) for item in streams):
        raise bad_request("configurations.streams must be a list of stream configurations.")
    return streams


def _configure(spec: catalog.Connector, requested: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    try:
        return checks.configure_streams(spec, requested)
    except checks.CatalogError as error:
        raise bad_request(str(error)) from error


def _schedule(schedule: Any) -> dict[str, Any]:
    """Stored schedule: Quartz cron without the " UTC" a client may have copied from a read."""
    if not isinstance(schedule, dict):
        raise bad_request("schedule must be an object.")
    schedule_type = _enum(schedule, "scheduleType", _SCHEDULE_TYPES)
    if schedule_type is None:
        raise bad_request("schedule.scheduleType is required.")
    if schedule_type == "manual":
        return {"scheduleType": "manual"}
    expression = schedule.get("cronExpression")
    if not isinstance(expression, str) or not expression.strip():
        raise bad_request("Missing cron expression in the schedule.")
    try:
        return {"scheduleType": "cron", "cronExpression": checks.normalize_cron(expression)}
    except checks.CatalogError as error:
        raise bad_request(str(error)) from error
