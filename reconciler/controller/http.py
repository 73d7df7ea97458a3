"""The controller's one HTTP server: probes, metrics and the GitHub push webhook.

GET /healthz answers 200 while the loop ticks (503 once it has not for three poll intervals),
GET /readyz 200 for a standby waiting to lead, and for the leader once every owned environment
finished its first sync (whatever the result), GET /metrics the controller's own registry (HEAD
as GET), POST /webhook/github a poll at once for a push to the followed branch (on a standby, the leader's: the
loop passes it on through the Lease), its JSON as the
body or as the `payload` field of a form (GitHub's preselected content type). The webhook's
X-Hub-Signature-256 (HMAC-SHA256 of the raw body) is checked in constant time before anything is
read from the body; a bad or missing one is 401 and nothing happens. Neither the secret nor a
signature is ever logged. A request has REQUEST_DEADLINE_SECONDS in all, however slowly it drips.
A signed delivery whose X-GitHub-Delivery id was seen already (a replay, a redelivery) polls nothing.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

log = structlog.get_logger("reconciler.controller")

MAX_BODY = 1024 * 1024
"""GitHub sends at most 25 MB, but a push event's payload worth reading is far smaller; more is refused (413)."""
READ_TIMEOUT_SECONDS = 10.0
"""How long a connection may sit without sending what it announced (headers, a body) before it is closed."""
REQUEST_DEADLINE_SECONDS = 30.0
"""How long one request may take in all, from its first byte: a client dripping a byte at a time (slowloris)
never trips READ_TIMEOUT_SECONDS, which counts per read."""
FORM = "application/x-www-form-urlencoded"
DELIVERIES_REMEMBERED = 4096
"""X-GitHub-Delivery ids remembered: a delivery seen again (replayed, or redelivered by GitHub) polls nothing."""
CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Endpoints:
    """What the server asks of the controller."""

    alive: Callable[[], bool]
    ready: Callable[[], bool]
    metrics: Callable[[], bytes]
    on_push: Callable[[str], None]
    """A push to the followed branch arrived (the pushed commit, "" when the payload names none)."""
    branch: str
    webhook_secret: str | None


def signature(secret: str, body: bytes) -> str:
    """GitHub's `X-Hub-Signature-256` of `body`: `sha256=<hex HMAC-SHA256 of body with secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is `signature(secret, body)`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = signature(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode(errors="replace"))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SECONDS  # a client that stops sending mid-request loses its connection, not a thread

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body in separate writes

    def handle_one_request(self) -> None:
        """One request (or the wait for the next on a kept-alive connection), cut off whole past the deadline."""
        cutoff = threading.Timer(REQUEST_DEADLINE_SECONDS, self._cut_off)
        cutoff.daemon = True
        cutoff.start()
        try:
            super().handle_one_request()
        finally:
            cutoff.cancel()

    def _cut_off(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # already closed
            self.connection.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once; the thread ends

    def log_message(self, format: str, *args: Any) -> None:
        return None  # no access log: a request line is no event of ours

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        endpoints = self.server.endpoints
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            alive = endpoints.alive()
            self._answer(200 if alive else 503, b"ok\n" if alive else b"the loop is stuck\n")
        elif path == "/readyz":
            ready = endpoints.ready()
            self._answer(200 if ready else 503, b"ready\n" if ready else b"first sync not finished\n")
        elif path == "/metrics":
            self._answer(200, endpoints.metrics(), CONTENT_TYPE_METRICS)
        else:
            self._answer(404, b"not found\n")

    do_HEAD = do_GET  # uptime checkers and load balancers probe with HEAD; `_answer` sends no body then

    def do_POST(self) -> None:
        endpoints = self.server.endpoints
        if self.path.split("?", 1)[0] != "/webhook/github":
            self._answer(404, b"not found\n")
            return
        if not endpoints.webhook_secret:
            self._answer(404, b"webhook not configured\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._answer(411, b"Content-Length required\n")
            return
        if length < 0 or length > MAX_BODY:
            self.close_connection = True  # the body is not read: this connection cannot carry another request
            self._answer(413, b"payload too large\n")
            return
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            log.warning("webhook.refused", reason="the body did not arrive in time", delivery=self._delivery())
            return
        if len(body) < length:
            self.close_connection = True
            return
        if not signature_ok(endpoints.webhook_secret, body, self.headers.get("X-Hub-Signature-256")):
            log.warning("webhook.refused", reason="bad or missing signature", delivery=self._delivery())
            self._answer(401, b"bad signature\n")
            return
        if not self.server.first_delivery(self._delivery()):
            self._answer(200, b"already received\n")
            return
        event = self.headers.get("X-GitHub-Event", "")
        if event == "ping":
            self._answer(200, b"pong\n")
            return
        if event != "push":
            self._answer(204)
            return
        payload = _payload(body, self.headers.get("Content-Type", ""))
        if payload is None:
            self._answer(400, b"the body is not JSON (nor a form with one JSON payload field)\n")
            return
        ref = payload.get("ref") if isinstance(payload, dict) else None
        if ref != f"refs/heads/{endpoints.branch}":
            self._answer(204)
            return
        after = payload.get("after")
        commit = after if isinstance(after, str) and len(after) in (40, 64) else ""
        log.info("webhook.push", branch=endpoints.branch, revision=commit, delivery=self._delivery())
        endpoints.on_push(commit)
        self._answer(202, b"poll triggered\n")

    def _delivery(self) -> str:
        delivery = self.headers.get("X-GitHub-Delivery", "")
        return delivery if len(delivery) <= 64 and delivery.replace("-", "").isalnum() else ""


def _payload(body: bytes, content_type: str) -> Any:
    """The delivery's JSON: the body itself (`application/json`), or its one `payload` field when GitHub was set
    to `application/x-www-form-urlencoded` (the content type its webhook form preselects); None when neither."""
    text = body
    if content_type.split(";", 1)[0].strip().lower() == FORM:
        try:
            fields = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            return None
        values = fields.get("payload", [])
        if len(values) != 1:
            return None
        text = values[0].encode()
    try:
        return json.loads(text)
    except ValueError:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections in a burst (50 webhook deliveries at once)

    def __init__(self, address: tuple[str, int], endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._deliveries: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._deliveries_lock = threading.Lock()
        super().__init__(address, _Handler)

    def first_delivery(self, delivery: str) -> bool:
        """Whether a signed delivery is new (one without an id always is); remembers the last ones."""
        if not delivery:
            return True
        with self._deliveries_lock:
            if delivery in self._deliveries:
                return False
            self._deliveries[delivery] = None
            while len(self._deliveries) > DELIVERIES_REMEMBERED:
                self._deliveries.popitem(last=False)
            return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log event instead of the stdlib's traceback on stderr (a client gone mid-answer, a bug)."""
        log.warning("http.request_failed", exc_info=True)


class ControllerServer:
    """The server in a background thread: `start()`, `port`, `stop()`."""

    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        self._server = _Server((host, port), endpoints)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="controller-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080`, `:8080` for every address) -> (host, port); ValueError when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)
