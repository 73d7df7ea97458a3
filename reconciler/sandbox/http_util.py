"""Sandbox plumbing under the local stand-ins: a small threaded JSON HTTP server on the stdlib.

A stand-in supplies one function, `Request -> Response`; this module does the sockets, threads,
keep-alive and the two failure modes a fault injector needs: answer late, or never answer at all.
It also has the instruments stand-ins share: request counters and a fault plan.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request. Header names are lower-case; query values keep repeats."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON (None when empty); raises ValueError when it is not JSON."""
        return json.loads(self.body) if self.body.strip() else None

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded fields (last value wins)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in parsed.items()}

    def first(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, content_type: str = JSON) -> Response:
    return Response(status, json.dumps(payload).encode("utf-8"), content_type)


def empty_response(status: int = 204) -> Response:
    return Response(status, b"", None)


class DropConnection(Exception):
    """Raised by a handler to close the socket without answering, after `delay_seconds`."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        super().__init__(f"drop connection after {delay_seconds}s")
        self.delay_seconds = delay_seconds


Handler = Callable[[Request], Response]


def _parse(method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Request:
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    return Request(method, parts.path or "/", query, headers, body)


class _RequestHandler(BaseHTTPRequestHandler):
    """Adapts BaseHTTPRequestHandler to a `Handler`; HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30.0  # idle keep-alive connections give their thread back
    disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms delayed-ACK stall

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = _parse(self.command, self.path, headers, body)
        try:
            response = self.server.handler(request)
        except DropConnection as drop:
            self._drop(drop.delay_seconds)
            return
        self._send(response)

    def _drop(self, delay_seconds: float) -> None:
        if delay_seconds > 0:
            time.sleep(delay_seconds)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: stand-ins run inside tests and demos."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    """A real server's listen backlog (socketserver's default of 5 drops connections a burst of clients opens)."""

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        super().__init__(address, _RequestHandler)
        self.handler = handler

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-request (a plan refused while its early listings ran, a killed apply) is
        routine for a server, as for the real ones behind these stand-ins: not a traceback on the test's stderr.
        Anything else is still printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class JsonHttpServer:
    """Serves `handler` on host:port (0 picks a free port) from a daemon thread."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _Server(self._address, self._handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="json-http-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not started")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """`http://host:port` of the running server."""
        return f"http://{self._address[0]}:{self.port}"


# --- Instruments a stand-in can share: request counters and a fault plan ---


class RequestStats:
    """Thread-safe request counters: every request in `total`, the ones counted as writes in `writes`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._writes = 0
        self._by_route: dict[str, int] = {}

    def record(self, route: str, *, write: bool) -> None:
        with self._lock:
            self._total += 1
            self._writes += int(write)
            self._by_route[route] = self._by_route.get(route, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self._total = self._writes = 0
            self._by_route = {}

    @property
    def total(self) -> int:
        return self._total

    @property
    def writes(self) -> int:
        return self._writes

    @property
    def by_route(self) -> dict[str, int]:
        """Counts per route, e.g. {"GET /connections": 3}; a copy."""
        with self._lock:
            return dict(self._by_route)


class FaultPlan:
    """Which fault, if any, the next request gets: queued ones first (in `kinds` order), then a seeded coin toss."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self.kinds = kinds
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._probability = 0.0
        self._random = random.Random()

    def configure(self, counts: Mapping[str, int], *, seed: int | None = None, probability: float = 0.0) -> None:
        """Replace the plan: `counts[kind]` faults queued per kind, then `probability` per request."""
        unknown = set(counts) - set(self.kinds)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected {list(self.kinds)}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        with self._lock:
            self._queue = deque(kind for kind in self.kinds for _ in range(max(0, counts.get(kind, 0))))
            self._probability = probability
            self._random = random.Random(seed)

    def next(self) -> str | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._probability and self._random.random() < self._probability:
                return self._random.choice(self.kinds)
            return None
