"""Local stand-in for Airbyte's public API, used by the demo, the sandbox command and the tests.

It answers the way a self-hosted Airbyte does (`/api/public/v1`), quirks included, so a client that
works here works there: masked secrets, cron echoed with " UTC", `selectedFields: []` for null,
streams in a different order on every read, `next` links on every non-empty page, RFC 9457 problems,
self-hosted 401s in Micronaut's shape, duplicate names allowed. It can also misbehave on purpose
(429, 500, hangs, lost responses, expired tokens, hand edits) so clients can be tested for it.
Connector knowledge lives in airbyte_catalog.py, state in airbyte_store.py.
"""

from __future__ import annotations

import copy
import datetime
import pathlib
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from reconciler.sandbox import airbyte_catalog as catalog
from reconciler.sandbox.airbyte_store import CONNECTIONS, DESTINATIONS, JOBS, SOURCES, TOMBSTONE, Store, kind_name
from reconciler.sandbox.http_util import (
    DropConnection,
    FaultPlan,
    JsonHttpServer,
    Request,
    RequestStats,
    Response,
    empty_response,
    json_response,
)

BASE_PATH = "/api/public/v1"
DEFAULT_WORKSPACE_ID = "2f1b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
DEFAULT_WORKSPACE_NAME = "Default Workspace"
PROBLEM_JSON = "application/problem+json"
ERRORS_URL = "https://reference.airbyte.com/reference/errors"
TIMEOUT_HANG_SECONDS = 3.0
FAULT_KINDS = ("rate_limit", "server_error", "timeout", "lose_response")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_ROUTE, HEALTH_ROUTE = "/applications/token", "/health"

_NAMESPACE_DEFINITIONS = ("source", "destination", "custom_format")
_NON_BREAKING = ("ignore", "disable_connection", "propagate_columns", "propagate_fully")
_STATUSES = ("active", "inactive", "deprecated", "locked")
_SCHEDULE_TYPES = ("manual", "cron")
_JOB_TYPES = ("sync", "reset")


# --- Problems (api-problems.yaml): type, title and detail are constants per problem kind ---


class Problem(Exception):
    def __init__(self, status: int, type_: str, title: str, detail: str, data: Mapping[str, Any] | None = None):
        super().__init__(f"{status} {title}: {data or detail}")
        self.status, self.type, self.title, self.detail, self.data = status, type_, title, detail, data

    def response(self) -> Response:
        body = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "documentationUrl": None,
            "data": dict(self.data) if self.data is not None else None,
        }
        return json_response(self.status, body, PROBLEM_JSON)


def bad_request(message: str) -> Problem:
    detail = "The request could not be understood by the server due to malformed syntax."
    return Problem(400, f"{ERRORS_URL}#bad-request", "bad-request", detail, {"message": message})


def unprocessable(message: str = "The body of the request was not understood") -> Problem:
    detail = "The body of the request was not understood"
    return Problem(422, f"{ERRORS_URL}#unprocessable-entity", "unprocessable-entity", detail, {"message": message})


def unknown_value(value: str) -> Problem:
    return Problem(400, ERRORS_URL, "value-not-found", "The submitted value could not be found.", {"value": value})


def not_found(resource_type: str, resource_id: str) -> Problem:
    detail = "The requested resource could not be found."
    data = {"resourceType": resource_type, "resourceId": resource_id}
    return Problem(404, f"{ERRORS_URL}#resource-not-found", "resource-not-found", detail, data)


def method_not_allowed(method: str, path: str) -> Problem:
    detail = "The requested method is not allowed for this resource."
    return Problem(405, ERRORS_URL, "method-not-allowed", detail, {"message": f"{method} {path} is not supported."})


def rate_limited() -> Problem:
    return Problem(429, ERRORS_URL, "rate-limited", "You are being rate limited.")


def unexpected(message: str = "") -> Problem:
    detail = (
        "An unexpected problem has occurred. If this is an error that needs to be addressed, "
        "please submit a pull request or github issue."
    )
    return Problem(500, ERRORS_URL, "unexpected-problem", detail, {"message": message} if message else None)


def unauthorized(path: str) -> Response:
    """Self-hosted 401s come from Micronaut security, not from the problems library."""
    body = {
        "message": "Unauthorized",
        "_links": {"self": {"href": path, "templated": False}},
        "_embedded": {"errors": [{"message": "Unauthorized"}]},
    }
    return json_response(401, body)


# --- Routing ---


@dataclass(frozen=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Callable[[Request, str], Response]]


def _route(template: str, methods: Mapping[str, Callable[[Request, str], Response]]) -> _Route:
    pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "(?P<id>[^/]+)", template) + "/?$")
    return _Route(template, pattern, methods)


@dataclass(frozen=True)
class _ActorKind:
    """What differs between sources and destinations."""

    kind: str  # catalog.SOURCE or catalog.DESTINATION
    store_kind: str
    id_field: str
    type_field: str


_SOURCE = _ActorKind(catalog.SOURCE, SOURCES, "sourceId", "sourceType")
_DESTINATION = _ActorKind(catalog.DESTINATION, DESTINATIONS, "destinationId", "destinationType")


class AirbyteStandIn:
    """A local Airbyte public API on a daemon thread. See the module docstring for what it imitates."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str = "reconciler",
        client_secret: str = "sandbox-secret",
        token_ttl_seconds: float = 900.0,
        state_file: pathlib.Path | None = None,
        latency_seconds: float = 0.0,
    ) -> None:
        self._host, self._port = host, port
        self._client_id, self._client_secret = client_id, client_secret
        self._token_ttl = token_ttl_seconds
        self.latency_seconds = latency_seconds  # public: benchmarks change it between runs
        self._store = Store(state_file)
        self._server: JsonHttpServer | None = None
        self._tokens: dict[str, float] = {}
        self._tokens_lock = threading.Lock()
        self._faults = FaultPlan(FAULT_KINDS)
        self._reads = 0  # seeds the stream shuffle: a different order on every read
        self.hang_seconds = TIMEOUT_HANG_SECONDS
        self.stats = RequestStats()
        self._routes = self._build_routes()

    # --- lifecycle ---

    def start(self) -> AirbyteStandIn:
        if self._server is None:
            self._store.load()
            server = JsonHttpServer(self._handle, self._host, self._port)
            server.start()
            self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> AirbyteStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("the Airbyte stand-in is not started")
        return self._server.origin

    @property
    def url(self) -> str:
        """Base URL a client uses, e.g. http://127.0.0.1:PORT/api/public/v1."""
        return self.origin + BASE_PATH

    @property
    def workspace_id(self) -> str:
        return DEFAULT_WORKSPACE_ID

    # --- test and demo controls (none of them count as client requests) ---

    def set_faults(
        self,
        *,
        rate_limit: int = 0,
        server_error: int = 0,
        timeout: int = 0,
        lose_response: int = 0,
        seed: int | None = None,
        probability: float = 0.0,
    ) -> None:
        """Queue faults for the next requests (token requests excluded), then fail at random with `probability`.

        Queued faults come in this order: 429s, 500s, hangs (longer than a client timeout, then the
        socket closes), lost responses (the request is carried out, then the socket closes unanswered).
        """
        counts = dict(rate_limit=rate_limit, server_error=server_error, timeout=timeout, lose_response=lose_response)
        self._faults.configure(counts, seed=seed, probability=probability)

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid: the next request with one gets a 401."""
        with self._tokens_lock:
            self._tokens.clear()

    def edit(self, kind: str, resource_id: str, changes: Mapping[str, Any]) -> None:
        """A hand edit in the UI: deep-merge `changes` into a stored object (stored shape, real secrets)."""
        store_kind = kind_name(kind)
        with self._store.lock:
            found = self._store.get(store_kind, str(resource_id), include_deleted=True)
            if found is None:
                raise KeyError(f"no {store_kind} with id {resource_id}")
            self._store.put(store_kind, catalog.deep_merge(found, changes))

    def stored(self, kind: str) -> list[dict[str, Any]]:
        """Raw stored objects, real secrets and tombstoned ones included. Never print them."""
        return self._store.snapshot(kind_name(kind))

    # --- request pipeline ---

    def _build_routes(self) -> list[_Route]:
        source, destination = _SOURCE, _DESTINATION
        return [
            _route(TOKEN_ROUTE, {"POST": lambda request, _: self._issue_token(request)}),
            _route(HEALTH_ROUTE, {"GET": lambda request, _: empty_response(200)}),
            _route("/workspaces", {"GET": lambda request, _: self._list_workspaces(request)}),
            _route("/workspaces/{workspaceId}", {"GET": lambda request, ident: self._get_workspace(ident)}),
            _route("/sources", self._collection_methods(source)),
            _route("/sources/{sourceId}", self._item_methods(source)),
            _route("/destinations", self._collection_methods(destination)),
            _route("/destinations/{destinationId}", self._item_methods(destination)),
            _route(
                "/connections",
                {"GET": lambda r, _: self._list_connections(r), "POST": lambda r, _: self._create_connection(r)},
            ),
            _route(
                "/connections/{connectionId}",
                {
                    "GET": lambda r, ident: self._get_connection(ident),
                    "PATCH": lambda r, ident: self._patch_connection(r, ident),
                    "DELETE": lambda r, ident: self._delete_connection(ident),
                },
            ),
            _route("/streams", {"GET": lambda r, _: self._stream_properties(r)}),
            _route("/jobs", {"GET": lambda r, _: self._list_jobs(r), "POST": lambda r, _: self._create_job(r)}),
            _route("/jobs/{jobId}", {"GET": lambda r, ident: self._get_job(ident)}),
        ]

    def _collection_methods(self, actor: _ActorKind) -> dict[str, Callable[[Request, str], Response]]:
        return {
            "GET": lambda r, _: self._list_actors(actor, r),
            "POST": lambda r, _: self._create_actor(actor, r),
        }

    def _item_methods(self, actor: _ActorKind) -> dict[str, Callable[[Request, str], Response]]:
        return {
            "GET": lambda r, ident: self._get_actor(actor, ident),
            "PATCH": lambda r, ident: self._update_actor(actor, r, ident, replace=False),
            "PUT": lambda r, ident: self._update_actor(actor, r, ident, replace=True),
            "DELETE": lambda r, ident: self._delete_actor(actor, ident),
        }

    def _handle(self, request: Request) -> Response:
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)
        if not request.path.startswith(BASE_PATH):
            self.stats.record(f"{request.method} {request.path}", write=False)
            return not_found("route", request.path).response()
        path = request.path[len(BASE_PATH) :] or "/"
        route, resource_id = self._match(path)
        template = route.template if route else path
        self.stats.record(f"{request.method} {template}", write=_is_write(request.method, route))
        if template in (TOKEN_ROUTE, HEALTH_ROUTE):
            return self._dispatch(request, route, resource_id, path)
        fault = self._faults.next()
        if fault == "rate_limit":
            return rate_limited().response()
        if fault == "server_error":
            return unexpected().response()
        if fault == "timeout":
            raise DropConnection(self.hang_seconds)
        if not self._authorized(request):
            response = unauthorized(request.path)
        else:
            response = self._dispatch(request, route, resource_id, path)
        if fault == "lose_response":
            raise DropConnection(0.0)  # the work is done; the answer never leaves
        return response

    def _match(self, path: str) -> tuple[_Route | None, str]:
        for route in self._routes:
            matched = route.pattern.match(path)
            if matched:
                return route, matched.groupdict().get("id") or ""
        return None, ""

    def _dispatch(self, request: Request, route: _Route | None, resource_id: str, path: str) -> Response:
        try:
            if route is None:
                raise not_found("route", path)
            handler = route.methods.get(request.method)
            if handler is None:
                problem = method_not_allowed(request.method, route.template)
                response = problem.response()
                response.headers["Allow"] = ", ".join(sorted(route.methods))
                return response
            return handler(request, resource_id)
        except Problem as problem:
            return problem.response()
        except Exception as error:  # a stand-in bug must still answer like a server would
            return unexpected(type(error).__name__).response()

    # --- auth ---

    def _issue_token(self, request: Request) -> Response:
        fields = self._token_fields(request)
        grant = fields.get("grant_type") or fields.get("grant-type") or "client_credentials"
        if grant != "client_credentials":
            raise bad_request(f"Unsupported grant type {grant!r}.")
        if fields.get("client_id") != self._client_id or fields.get("client_secret") != self._client_secret:
            return unauthorized(request.path)
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = time.monotonic() + self._token_ttl
        body = {"access_token": token, "token_type": "Bearer", "expires_in": int(self._token_ttl)}
        return json_response(200, body)

    @staticmethod
    def _token_fields(request: Request) -> dict[str, Any]:
        """The token request comes as JSON (api.yaml) or as a form (what OAuth clients, the SDK included, send)."""
        if "x-www-form-urlencoded" in request.headers.get("content-type", ""):
            return dict(request.form())
        try:
            body = request.json()
        except ValueError as error:
            raise bad_request("The token request body is not valid JSON.") from error
        if not isinstance(body, dict):
            raise bad_request("The token request body must be an object.")
        return body

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._tokens_lock:
            expiry = self._tokens.get(token.strip())
            return expiry is not None and time.monotonic() < expiry

    # --- shared request helpers ---

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError as error:
            raise bad_request("The request body is not valid JSON.") from error
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        return body

    def _page(self, request: Request, path: str, items: list[dict[str, Any]], filters: Mapping[str, str]) -> Response:
        """One page of a list, with `next` on every non-empty page and `previous` after the first (else "")."""
        limit = _int_param(request, "limit", 20, 1, 100)
        offset = _int_param(request, "offset", 0, 0, None)
        page = items[offset : offset + limit]

        def link(at: int) -> str:
            return f"{self.url}{path}?{urlencode({**filters, 'limit': limit, 'offset': at})}"

        body = {
            "next": link(offset + limit) if page else "",
            "previous": link(max(offset - limit, 0)) if offset else "",
            "data": page,
        }
        return json_response(200, body)

    def _shuffled(self, streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._store.lock:
            self._reads += 1
            seed = self._reads
        answer = copy.deepcopy(streams)
        random.Random(seed).shuffle(answer)
        return answer

    # --- workspaces ---

    def _workspace(self) -> dict[str, Any]:
        off = {"email": {"enabled": False}, "webhook": {"enabled": False}}
        notifications = {name: copy.deepcopy(off) for name in ("failure", "success", "syncDisabled")}
        return {
            "workspaceId": DEFAULT_WORKSPACE_ID,
            "name": DEFAULT_WORKSPACE_NAME,
            "dataResidency": "auto",
            "notifications": notifications,
        }

    def _list_workspaces(self, request: Request) -> Response:
        wanted = _workspace_ids(request)
        items = [self._workspace()] if not wanted or DEFAULT_WORKSPACE_ID in wanted else []
        return self._page(request, "/workspaces", items, _list_filters(request, wanted))

    def _get_workspace(self, workspace_id: str) -> Response:
        if workspace_id != DEFAULT_WORKSPACE_ID:
            raise not_found("workspace", workspace_id)
        return json_response(200, self._workspace())

    def _require_workspace(self, workspace_id: Any) -> str:
        if not isinstance(workspace_id, str) or not workspace_id:
            raise bad_request("workspaceId is required.")
        if workspace_id != DEFAULT_WORKSPACE_ID:
            raise not_found("workspace", workspace_id)
        return workspace_id

    # --- sources and destinations ---

    def _actor_answer(self, actor: _ActorKind, stored: Mapping[str, Any]) -> dict[str, Any]:
        spec = catalog.connector(actor.kind, stored[actor.type_field])
        return {
            actor.id_field: stored[actor.id_field],
            "name": stored["name"],
            actor.type_field: stored[actor.type_field],
            "definitionId": stored["definitionId"],
            "workspaceId": stored["workspaceId"],
            "configuration": catalog.masked(spec, stored["configuration"]),
            "createdAt": stored["createdAt"],
        }

    def _stored_actor(self, actor: _ActorKind, resource_id: str) -> dict[str, Any]:
        found = self._store.get(actor.store_kind, resource_id)
        if found is None:
            raise not_found(actor.kind, resource_id)
        return found

    def _list_actors(self, actor: _ActorKind, request: Request) -> Response:
        wanted = _workspace_ids(request)
        include_deleted = _bool_param(request, "includeDeleted")
        with self._store.lock:
            stored = self._store.all(actor.store_kind, include_deleted=include_deleted)
            items = [self._actor_answer(actor, obj) for obj in stored if not wanted or obj["workspaceId"] in wanted]
        return self._page(request, f"/{actor.store_kind}", items, _list_filters(request, wanted, include_deleted))

    def _get_actor(self, actor: _ActorKind, resource_id: str) -> Response:
        with self._store.lock:
            return json_response(200, self._actor_answer(actor, self._stored_actor(actor, resource_id)))

    def _create_actor(self, actor: _ActorKind, request: Request) -> Response:
        body = self._body(request)
        name = _required_string(body, "name")
        workspace_id = self._require_workspace(body.get("workspaceId"))
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
    def _resolve_connector(
        actor: _ActorKind, definition_id: Any, configuration: Mapping[str, Any]
    ) -> catalog.Connector:
        """By definitionId, else by configuration.<type field> (422 when neither is there)."""
        connector_type = configuration.get(actor.type_field)
        if definition_id:
            known = catalog.connector_by_definition(actor.kind, str(definition_id))
            if known is not None:
                return known
            if not isinstance(connector_type, str):
                raise unknown_value(str(definition_id))
        if not isinstance(connector_type, str) or not connector_type:
            raise unprocessable()
        return catalog.connector(actor.kind, connector_type)

    def _update_actor(self, actor: _ActorKind, request: Request, resource_id: str, *, replace: bool) -> Response:
        """PUT replaces the configuration, PATCH deep-merges it; a masked secret keeps its stored value."""
        body = self._body(request)
        with self._store.lock:
            stored = copy.deepcopy(self._stored_actor(actor, resource_id))
            spec = catalog.connector(actor.kind, stored[actor.type_field])
            if replace or "name" in body:
                stored["name"] = _required_string(body, "name")
            sent = _configuration(body) if replace else _optional_configuration(body)
            if sent is not None:
                sent.pop(actor.type_field, None)
                new = sent if replace else catalog.deep_merge(stored["configuration"], sent)
                stored["configuration"] = catalog.keep_masked_secrets(spec, new, stored["configuration"])
                _check_required(spec, stored["configuration"])
            self._store.put(actor.store_kind, stored)
            return json_response(200, self._actor_answer(actor, stored))

    def _delete_actor(self, actor: _ActorKind, resource_id: str) -> Response:
        """Soft delete. Like Airbyte, deleting a source or destination also deletes (deprecates) its connections."""
        with self._store.lock:
            self._stored_actor(actor, resource_id)
            self._store.tombstone(actor.store_kind, resource_id)
            for connection in self._store.all(CONNECTIONS):
                if connection[actor.id_field] == resource_id:
                    self._deprecate(connection)
        return empty_response(204)

    # --- connections ---

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

    def _stored_connection(self, connection_id: str, *, include_deleted: bool = False) -> dict[str, Any]:
        found = self._store.get(CONNECTIONS, connection_id, include_deleted=include_deleted)
        if found is None:
            raise not_found("connection", connection_id)
        return found

    def _list_connections(self, request: Request) -> Response:
        wanted = _workspace_ids(request)
        include_deleted = _bool_param(request, "includeDeleted")
        with self._store.lock:
            stored = self._store.all(CONNECTIONS, include_deleted=include_deleted)
            items = [self._connection_answer(obj) for obj in stored if not wanted or obj["workspaceId"] in wanted]
        return self._page(request, "/connections", items, _list_filters(request, wanted, include_deleted))

    def _get_connection(self, connection_id: str) -> Response:
        """A deleted connection still answers, with status `deprecated`."""
        with self._store.lock:
            return json_response(
                200, self._connection_answer(self._stored_connection(connection_id, include_deleted=True))
            )

    def _create_connection(self, request: Request) -> Response:
        body = self._body(request)
        with self._store.lock:
            source = self._stored_actor(_SOURCE, _required_string(body, "sourceId"))
            destination = self._stored_actor(_DESTINATION, _required_string(body, "destinationId"))
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

    def _patch_connection(self, request: Request, connection_id: str) -> Response:
        """Only the fields sent change; a non-empty streams list replaces the configured catalog."""
        body = self._body(request)
        with self._store.lock:
            stored = copy.deepcopy(self._stored_connection(connection_id))
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
                source = self._stored_actor(_SOURCE, stored["sourceId"])
                spec = catalog.connector(catalog.SOURCE, source["sourceType"])
                stored["configurations"] = {"streams": _configure(spec, requested)}
            self._store.put(CONNECTIONS, stored)
            return json_response(200, self._connection_answer(stored))

    def _delete_connection(self, connection_id: str) -> Response:
        with self._store.lock:
            self._deprecate(self._stored_connection(connection_id))
        return empty_response(204)

    def _deprecate(self, connection: Mapping[str, Any]) -> None:
        updated = {**copy.deepcopy(dict(connection)), "status": "deprecated", TOMBSTONE: True}
        self._store.put(CONNECTIONS, updated)

    # --- streams ---

    def _stream_properties(self, request: Request) -> Response:
        source_id = request.first("sourceId")
        if not source_id:
            raise bad_request("Required parameter sourceId is missing.")
        destination_id = request.first("destinationId")
        with self._store.lock:
            source = self._stored_actor(_SOURCE, source_id)
            if destination_id:
                self._stored_actor(_DESTINATION, destination_id)
        spec = catalog.connector(catalog.SOURCE, source["sourceType"])
        return json_response(200, [stream.properties() for stream in spec.streams])

    # --- jobs ---

    def _create_job(self, request: Request) -> Response:
        """Jobs finish at once: a sandbox has no data to move."""
        body = self._body(request)
        job_type = body.get("jobType")
        if job_type not in _JOB_TYPES:
            raise bad_request(f"Job type {job_type!r} is not supported. Use one of {list(_JOB_TYPES)}.")
        now = _iso_now()
        with self._store.lock:
            connection = self._stored_connection(_required_string(body, "connectionId"))
            job = {
                "jobId": self._store.next_job_id(),
                "status": "succeeded",
                "jobType": job_type,
                "startTime": now,
                "connectionId": connection["connectionId"],
                "lastUpdatedAt": now,
                "duration": "PT0S",
                "bytesSynced": 0,
                "rowsSynced": 0,
                "workspaceId": connection["workspaceId"],
            }
            self._store.put(JOBS, job)
        return json_response(200, _job_answer(job))

    def _get_job(self, job_id: str) -> Response:
        with self._store.lock:
            job = self._store.get(JOBS, job_id)
            if job is None:
                raise not_found("job", job_id)
            return json_response(200, _job_answer(job))

    def _list_jobs(self, request: Request) -> Response:
        wanted = _workspace_ids(request)
        filters = {name: request.first(name) for name in ("connectionId", "jobType", "status")}
        with self._store.lock:
            jobs = [
                _job_answer(job)
                for job in self._store.all(JOBS)
                if (not wanted or job["workspaceId"] in wanted)
                and all(value is None or str(job[name]) == value for name, value in filters.items())
            ]
        link_filters = {name: value for name, value in filters.items() if value is not None}
        return self._page(request, "/jobs", jobs, {**_list_filters(request, wanted), **link_filters})


# --- request parsing helpers (raise Problem) ---


def _is_write(method: str, route: _Route | None) -> bool:
    """A write to a resource: not the token request, not an unknown route or method."""
    if route is None or route.template == TOKEN_ROUTE:
        return False
    return method in WRITE_METHODS and method in route.methods


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


def _bool_param(request: Request, name: str) -> bool:
    raw = (request.first(name) or "false").lower()
    if raw not in ("true", "false"):
        raise bad_request(f"{name} must be true or false, got {raw!r}.")
    return raw == "true"


def _workspace_ids(request: Request) -> list[str]:
    """workspaceIds, repeated (`?workspaceIds=a&workspaceIds=b`) or comma separated."""
    ids = [part.strip() for value in request.query.get("workspaceIds", []) for part in value.split(",") if part.strip()]
    for workspace_id in ids:
        try:
            uuid.UUID(workspace_id)
        except ValueError as error:
            raise bad_request(f"workspaceIds: {workspace_id!r} is not a UUID.") from error
    return ids


def _list_filters(request: Request, workspace_ids: list[str], include_deleted: bool | None = None) -> dict[str, str]:
    """The query parameters a next/previous link carries before limit and offset."""
    filters = {"workspaceIds": ",".join(workspace_ids)}
    if include_deleted is not None:
        filters["includeDeleted"] = "true" if include_deleted else "false"
    return filters


def _required_string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name} is required and must be a non-empty string.")
    return value


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
        return catalog.configure_streams(spec, requested)
    except catalog.CatalogError as error:
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
        return {"scheduleType": "cron", "cronExpression": catalog.normalize_cron(expression)}
    except catalog.CatalogError as error:
        raise bad_request(str(error)) from error


def _job_answer(job: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in job.items() if name not in ("workspaceId", TOMBSTONE)}


def _iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
