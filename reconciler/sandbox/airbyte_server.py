"""Local stand-in for Airbyte's public API, used by the demo, the sandbox command and the tests.

It answers the way a self-hosted Airbyte does (`/api/public/v1`), quirks included, so a client that
works here works there: masked secrets, cron echoed with " UTC", `selectedFields: []` for null,
streams in a different order on every read, `next` links on every non-empty page, RFC 9457 problems,
self-hosted 401s in Micronaut's shape, duplicate names allowed. It can also misbehave on purpose
(429, 500, hangs, lost responses, expired tokens, hand edits, a create that lands late) so clients can be
tested for it.

This module is the top of the stand-in: lifecycle, test controls, faults and routing. Handlers
live in airbyte_workspaces.py, airbyte_actors.py (sources, destinations), airbyte_connections.py
(connections, streams) and airbyte_jobs.py; tokens in airbyte_auth.py; request parsing and paging
in airbyte_requests.py; error answers in airbyte_problems.py; connector knowledge in
airbyte_catalog.py; state in airbyte_store.py.
"""

from __future__ import annotations

import json
import pathlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox import airbyte_catalog as catalog
from reconciler.sandbox.airbyte_actors import DESTINATION_ACTOR, SOURCE_ACTOR, ActorHandlers, ActorKind
from reconciler.sandbox.airbyte_auth import AccessTokens
from reconciler.sandbox.airbyte_connections import ConnectionHandlers
from reconciler.sandbox.airbyte_jobs import JobHandlers
from reconciler.sandbox.airbyte_problems import (
    Problem,
    method_not_allowed,
    not_found,
    rate_limited,
    unauthorized,
    unexpected,
)
from reconciler.sandbox.airbyte_store import Store, kind_name
from reconciler.sandbox.airbyte_workspaces import DEFAULT_WORKSPACE_ID, get_workspace, list_workspaces
from reconciler.sandbox.http_util import (
    DropConnection,
    FaultPlan,
    JsonHttpServer,
    Request,
    RequestStats,
    Response,
    empty_response,
)

BASE_PATH = "/api/public/v1"
TIMEOUT_HANG_SECONDS = 3.0
FAULT_KINDS = ("rate_limit", "server_error", "timeout", "lose_response")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_ROUTE, HEALTH_ROUTE = "/applications/token", "/health"
LATE_CREATE_SAFETY_SECONDS = 120.0
"""A create held to land late is carried out after this even if no listing came (a test never hangs)."""


@dataclass
class LateCreate:
    """A create held by `land_create_late`: `received` is set once the request is in."""

    collection: str
    name: str
    received: threading.Event
    release: threading.Event
    landed: threading.Event


# --- Routing ---


@dataclass(frozen=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Callable[[Request, str], Response]]


def _route(template: str, methods: Mapping[str, Callable[[Request, str], Response]]) -> _Route:
    pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "(?P<id>[^/]+)", template) + "/?$")
    return _Route(template, pattern, methods)


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host, self._port = host, port
        self._tokens = AccessTokens(client_id, client_secret, token_ttl_seconds, clock)
        """`clock` times tokens: a test moves it instead of sleeping past a lifetime."""
        self.latency_seconds = latency_seconds  # public: benchmarks change it between runs
        self.write_latency_seconds = 0.0
        """Public: how long each write waits, once received (and counted), before it is carried out: an apply whose
        actions take a while, for tests that stop or disturb it mid-way."""
        self._store = Store(state_file)
        self._server: JsonHttpServer | None = None
        self._faults = FaultPlan(FAULT_KINDS)
        self._late: list[LateCreate] = []
        self.hang_seconds = TIMEOUT_HANG_SECONDS
        self.stats = RequestStats()
        self._actors = ActorHandlers(self._store, lambda: self.url)
        self._connections = ConnectionHandlers(self._store, lambda: self.url, self._actors)
        self._jobs = JobHandlers(self._store, lambda: self.url, self._connections)
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

    def land_create_late(self, kind: str, name: str) -> LateCreate:
        """The next create of `name` in `kind` is received, then carried out only after the stand-in has answered the
        last (empty) page of a listing of `kind` that began after it came in, whether or not its client is still there.

        This is a real server's handler running to completion after its client stopped waiting (or died), and
        landing after someone else listed: Airbyte's server finishes a request it has read.
        """
        late = LateCreate(f"/{kind_name(kind)}", name, threading.Event(), threading.Event(), threading.Event())
        with self._store.lock:
            self._late.append(late)
        return late

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid: the next request with one gets a 401."""
        self._tokens.expire_all()

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
        source, destination = SOURCE_ACTOR, DESTINATION_ACTOR
        connections, jobs = self._connections, self._jobs
        return [
            _route(TOKEN_ROUTE, {"POST": lambda request, _: self._tokens.issue(request)}),
            _route(HEALTH_ROUTE, {"GET": lambda request, _: empty_response(200)}),
            _route("/workspaces", {"GET": lambda request, _: list_workspaces(request, self.url)}),
            _route("/workspaces/{workspaceId}", {"GET": lambda request, ident: get_workspace(ident)}),
            _route("/sources", self._collection_methods(source)),
            _route("/sources/{sourceId}", self._item_methods(source)),
            _route("/destinations", self._collection_methods(destination)),
            _route("/destinations/{destinationId}", self._item_methods(destination)),
            _route(
                "/connections",
                {
                    "GET": lambda r, _: connections.list_connections(r),
                    "POST": lambda r, _: connections.create_connection(r),
                },
            ),
            _route(
                "/connections/{connectionId}",
                {
                    "GET": lambda r, ident: connections.get_connection(ident),
                    "PATCH": lambda r, ident: connections.patch_connection(r, ident),
                    "DELETE": lambda r, ident: connections.delete_connection(ident),
                },
            ),
            _route("/streams", {"GET": lambda r, _: connections.stream_properties(r)}),
            _route("/jobs", {"GET": lambda r, _: jobs.list_jobs(r), "POST": lambda r, _: jobs.create_job(r)}),
            _route("/jobs/{jobId}", {"GET": lambda r, ident: jobs.get_job(ident)}),
        ]

    def _collection_methods(self, actor: ActorKind) -> dict[str, Callable[[Request, str], Response]]:
        actors = self._actors
        return {
            "GET": lambda r, _: actors.list_actors(actor, r),
            "POST": lambda r, _: actors.create_actor(actor, r),
        }

    def _item_methods(self, actor: ActorKind) -> dict[str, Callable[[Request, str], Response]]:
        actors = self._actors
        return {
            "GET": lambda r, ident: actors.get_actor(actor, ident),
            "PATCH": lambda r, ident: actors.update_actor(actor, r, ident, replace=False),
            "PUT": lambda r, ident: actors.update_actor(actor, r, ident, replace=True),
            "DELETE": lambda r, ident: actors.delete_actor(actor, ident),
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
        write = _is_write(request.method, route)
        self.stats.record(f"{request.method} {template}", write=write)
        if write and self.write_latency_seconds > 0:
            time.sleep(self.write_latency_seconds)
        if template in (TOKEN_ROUTE, HEALTH_ROUTE):
            return self._dispatch(request, route, resource_id, path)
        fault = self._faults.next()
        if fault == "rate_limit":
            return rate_limited().response()
        if fault == "server_error":
            return unexpected().response()
        if fault == "timeout":
            raise DropConnection(self.hang_seconds)
        if not self._tokens.authorized(request):
            response = unauthorized(request.path)
        else:
            late = self._held(request, template)
            listed_after = [held for held in self._late if held.collection == template and held.received.is_set()]
            response = self._dispatch(request, route, resource_id, path)
            if late is not None:
                with self._store.lock:
                    self._late.remove(late)
                late.landed.set()
            if request.method == "GET" and listed_after and _is_last_page(response):
                for held in listed_after:
                    held.release.set()
        if fault == "lose_response":
            raise DropConnection(0.0)  # the work is done; the answer never leaves
        return response

    def _held(self, request: Request, template: str) -> LateCreate | None:
        """The late create this request is, after waiting for its release; None for any other request."""
        if request.method != "POST":
            return None
        try:
            name = request.json().get("name")
        except (ValueError, AttributeError):
            return None
        with self._store.lock:
            waiting = (h for h in self._late if (h.collection, h.name) == (template, name) and not h.received.is_set())
            late = next(waiting, None)
            if late is None:
                return None
            late.received.set()
        late.release.wait(LATE_CREATE_SAFETY_SECONDS)
        return late

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


def _is_last_page(response: Response) -> bool:
    """A listing's answer with no objects: where a client paging by offset stops."""
    try:
        return bool(json.loads(response.body).get("data") == [])
    except (ValueError, AttributeError):
        return False


def _is_write(method: str, route: _Route | None) -> bool:
    """A write to a resource: not the token request, not an unknown route or method."""
    if route is None or route.template == TOKEN_ROUTE:
        return False
    return method in WRITE_METHODS and method in route.methods
