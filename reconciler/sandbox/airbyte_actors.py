"""Airbyte stand-in, sources and destinations ("actors"): their handlers and configuration checks.

Routed by airbyte_server.py (`/sources`, `/destinations` and their `/{id}` items, one ActorKind
each); airbyte_connections.py looks actors up through `stored_actor`. Answers name the type only
of connector definitions the server knows by id (a custom one reads back with ""), mask secrets, PUT
replaces a configuration while PATCH deep-merges it (a masked secret sent back keeps its stored
value), and delete is soft: the actor is tombstoned and its connections deprecated, like Airbyte.
Connector knowledge (secret and required fields) comes from airbyte_catalog.py.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox import airbyte_catalog as catalog
from reconciler.sandbox.airbyte_problems import bad_request, not_found, unknown_value, unprocessable
from reconciler.sandbox.airbyte_requests import (
    bool_param,
    list_filters,
    page_response,
    request_body,
    required_string,
    workspace_ids,
)
from reconciler.sandbox.airbyte_store import CONNECTIONS, DESTINATIONS, SOURCES, Store
from reconciler.sandbox.airbyte_workspaces import require_workspace
from reconciler.sandbox.http_util import Request, Response, empty_response, json_response


@dataclass(frozen=True)
class ActorKind:
    """What differs between sources and destinations."""

    kind: str  # catalog.SOURCE or catalog.DESTINATION
    store_kind: str
    id_field: str
    type_field: str


SOURCE_ACTOR = ActorKind(catalog.SOURCE, SOURCES, "sourceId", "sourceType")
DESTINATION_ACTOR = ActorKind(catalog.DESTINATION, DESTINATIONS, "destinationId", "destinationType")


class ActorHandlers:
    """Handlers of one stand-in's sources and destinations; `base_url` is the public API URL, for page links."""

    def __init__(self, store: Store, base_url: Callable[[], str]) -> None:
        self._store, self._base_url = store, base_url

    def _actor_answer(self, actor: ActorKind, stored: Mapping[str, Any]) -> dict[str, Any]:
        """The type is named only for definitions the server knows by name (empty for a custom one)."""
        spec = catalog.connector(actor.kind, stored[actor.type_field])
        return {
            actor.id_field: stored[actor.id_field],
            "name": stored["name"],
            actor.type_field: _known_type(actor, stored),
            "definitionId": stored["definitionId"],
            "workspaceId": stored["workspaceId"],
            "configuration": catalog.masked(spec, stored["configuration"]),
            "createdAt": stored["createdAt"],
        }

    def stored_actor(self, actor: ActorKind, resource_id: str) -> dict[str, Any]:
        found = self._store.get(actor.store_kind, resource_id)
        if found is None:
            raise not_found(actor.kind, resource_id)
        return found

    def list_actors(self, actor: ActorKind, request: Request) -> Response:
        wanted = workspace_ids(request)
        include_deleted = bool_param(request, "includeDeleted")
        filters = list_filters(request, wanted, include_deleted)
        with self._store.lock:
            stored = self._store.all(actor.store_kind, include_deleted=include_deleted)
            items = [obj for obj in stored if not wanted or obj["workspaceId"] in wanted]
            return page_response(
                request,
                self._base_url(),
                f"/{actor.store_kind}",
                items,
                filters,
                lambda obj: self._actor_answer(actor, obj),
            )

    def get_actor(self, actor: ActorKind, resource_id: str) -> Response:
        with self._store.lock:
            return json_response(200, self._actor_answer(actor, self.stored_actor(actor, resource_id)))

    def create_actor(self, actor: ActorKind, request: Request) -> Response:
        body = request_body(request)
        name = required_string(body, "name")
        workspace_id = require_workspace(body.get("workspaceId"))
        configuration = _configuration(body)
        spec = self._resolve_connector(actor, body.get("definitionId"), configuration)
        configuration.pop(actor.type_field, None)  # the server keeps the type out of the stored configuration
        _check_required(spec, configuration)
        stored = {
            actor.id_field: str(uuid.uuid4()),
            "name": name,
            actor.type_field: spec.type,
            "definitionId": spec.definition_id,
            "workspaceId": workspace_id,
            "configuration": configuration,
            "createdAt": int(time.time()),
        }
        with self._store.lock:
            self._store.put(actor.store_kind, stored)
            return json_response(200, self._actor_answer(actor, stored))

    @staticmethod
    def _resolve_connector(actor: ActorKind, definition_id: Any, configuration: Mapping[str, Any]) -> catalog.Connector:
        """By definitionId, else by configuration.<type field> (422 when neither is there).

        An unknown definitionId sent with a type stands for a custom connector definition of that name.
        """
        connector_type = configuration.get(actor.type_field)
        if definition_id:
            known = catalog.connector_by_definition(actor.kind, str(definition_id))
            if known is not None:
                return known
            if not isinstance(connector_type, str) or not connector_type:
                raise unknown_value(str(definition_id))
            return dataclasses.replace(catalog.connector(actor.kind, connector_type), definition_id=str(definition_id))
        if not isinstance(connector_type, str) or not connector_type:
            raise unprocessable()
        return catalog.connector(actor.kind, connector_type)

    def update_actor(self, actor: ActorKind, request: Request, resource_id: str, *, replace: bool) -> Response:
        """PUT replaces the configuration, PATCH deep-merges it; a masked secret keeps its stored value."""
        body = request_body(request)
        with self._store.lock:
            stored = copy.deepcopy(self.stored_actor(actor, resource_id))
            spec = catalog.connector(actor.kind, stored[actor.type_field])
            if replace or "name" in body:
                stored["name"] = required_string(body, "name")
            sent = _configuration(body) if replace else _optional_configuration(body)
            if sent is not None:
                sent.pop(actor.type_field, None)
                new = sent if replace else catalog.deep_merge(stored["configuration"], sent)
                stored["configuration"] = catalog.keep_masked_secrets(spec, new, stored["configuration"])
                _check_required(spec, stored["configuration"])
            self._store.put(actor.store_kind, stored)
            return json_response(200, self._actor_answer(actor, stored))

    def delete_actor(self, actor: ActorKind, resource_id: str) -> Response:
        """Soft delete. Like Airbyte, deleting a source or destination also deletes (deprecates) its connections."""
        with self._store.lock:
            self.stored_actor(actor, resource_id)
            self._store.tombstone(actor.store_kind, resource_id)
            for connection in self._store.all(CONNECTIONS):
                if connection[actor.id_field] == resource_id:
                    self._store.deprecate_connection(connection)
        return empty_response(204)


def _known_type(actor: ActorKind, stored: Mapping[str, Any]) -> str:
    """Like SourceReadMapper: the name of a definition the server knows by id, else ""."""
    known = catalog.connector_by_definition(actor.kind, stored["definitionId"])
    return known.type if known is not None else ""


def _configuration(body: Mapping[str, Any]) -> dict[str, Any]:
    configuration = body.get("configuration")
    if not isinstance(configuration, dict):
        raise bad_request("configuration is required and must be an object.")
    return copy.deepcopy(configuration)


def _optional_configuration(body: Mapping[str, Any]) -> dict[str, Any] | None:
    return None if body.get("configuration") is None else _configuration(body)


def _check_required(spec: catalog.Connector, configuration: Mapping[str, Any]) -> None:
    missing = catalog.missing_required(spec, configuration)
    if missing:
        errors = ", ".join(f"$.{name}: is missing but it is required" for name in missing)
        raise bad_request(
            "The provided configuration does not fulfill the specification. Errors: json schema validation "
            f"failed when comparing the data to the json schema. \nErrors: {errors}"
        )
