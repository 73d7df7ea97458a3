"""Client for Airbyte's public API (the only module that talks to Airbyte): auth, paging, retries.

- Auth: client credentials at `/applications/token` (refreshed before expiry and on a 401) or a
  static bearer token.
- Connections: each thread keeps its own pool (apply's workers send at once, as a plain client's
  threads would), all with one TLS context.
- Lists page with `limit`/`offset` and stop on an empty page (the server sets `next` whenever a
  page is non-empty, so `next` alone never ends a listing); observe's listings ask for the next pages
  while one is read (`iter_list(ahead=...)`). A page repeating what was listed (a
  server ignoring `offset`) or a listing past `MAX_LISTED` objects or `MAX_PAGES` pages is an
  error naming the listing.
- Answers are checked for shape (an object where one is due, ids on listed and created objects):
  a wrong one is an `ApiError` naming the call, never a KeyError.
- Errors: RFC 9457 problem objects (and self-hosted `{"message": ...}` 401s) become `ApiError`.
- Retries follow the one policy (`clients.http`): with backoff on 429, 500, 502-504, timeouts and
  dropped connections for idempotent calls, never sooner than a 429's or 503's `Retry-After`. A
  create whose answer was lost looks the resource up by name before trying again, so a retry
  never makes a duplicate; a create answered 500 (a failure inside the server) is looked up by
  name, then reported with its cause, never retried. A create the server may still be carrying
  out (it timed out waiting for the answer, or a proxy answered 502/504) is sent again only once
  lookups have not found it until `create_settle_seconds` after it was sent: Airbyte finishes a
  request it has read, so an early lookup can miss what lands later.
"""

from __future__ import annotations

import math
import ssl
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import Future
from functools import partial
from typing import Any

import httpx
import structlog

from reconciler.background import DaemonWorkers
from reconciler.clients.http import (
    RETRY_AFTER_STATUS,
    RETRYABLE_STATUS,
    SERVER_ERROR,
    RequestCounter,
    RetryPolicy,
    answer_hooks,
    retry_after_seconds,
)
from reconciler.errors import ApiError, RedactedError

SYSTEM = "airbyte"
PAGE_SIZE = 100
TOKEN_MARGIN_SECONDS = 60.0
MAX_LISTED = 100_000
MAX_PAGES = 5_000
"""A listing longer than these is refused (a server that pages forever must not hang a plan)."""
CREATE_SETTLE_FACTOR = 2.0
"""A create not visible twice the request timeout after it was sent is taken as never made."""
SETTLE_LOOKUP_SECONDS = 2.0
"""Seconds between lookups while a create the server may still be carrying out settles."""
IN_FLIGHT_STATUS = frozenset({502, 504})
"""A proxy's answers after which the server behind it may still be carrying out the request."""
ID_FIELDS = {
    "sources": "sourceId",
    "destinations": "destinationId",
    "connections": "connectionId",
    "workspaces": "workspaceId",
    "jobs": "jobId",
}

log = structlog.get_logger(__name__)


class _Retryable(RedactedError):
    """A failure worth another try; its text (logged) carries no URL credentials."""

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool,
        status: int | None = None,
        retry_after: float | None = None,
        in_flight: bool = False,
    ) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        self.in_flight = in_flight or status in IN_FLIGHT_STATUS
        """The server may still be carrying the request out (it was sent whole, no answer came)."""
        self.status = status
        self.retry_after = retry_after


def problem_message(response: httpx.Response) -> str:
    """A readable message from a problem+json body, a `{message}` body or plain text.

    Airbyte's problem `title` and `detail` are constants per problem type: the cause is in `data`
    (`message`, `validationErrorMessage`, ...), and Micronaut's own errors list theirs under
    `_embedded.errors`. The cause is shown when there is one, the constant detail otherwise.
    """
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return f"HTTP {response.status_code}: {text[:200] or response.reason_phrase}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {str(body)[:300]}"
    title = body.get("title") or body.get("message") or response.reason_phrase
    causes, facts = _problem_causes(body)
    detail = body.get("detail")
    text = "; ".join(causes) or (str(detail) if detail and detail != title else "")
    if facts:
        text = f"{text} ({facts})" if text else facts
    return f"HTTP {response.status_code} {title}" + (f": {text[:1000]}" if text else "")


_CAUSE_FIELDS = ("message", "validationErrorMessage", "failedPreconditionDetail", "error")


def _problem_causes(body: dict[str, Any]) -> tuple[list[str], str]:
    """The causes a problem body carries, and its other scalar facts as `key=value, ...`."""
    causes: list[str] = []
    facts: list[str] = []
    data = body.get("data")
    if isinstance(data, str) and data.strip():
        causes.append(data.strip())
    elif isinstance(data, dict):
        for name, value in data.items():
            if value is None or value == "":
                continue
            if name in _CAUSE_FIELDS and isinstance(value, str):
                causes.append(value)
            elif name == "errors" and isinstance(value, list):
                causes += [_field_error(item) for item in value]
            elif isinstance(value, str | int | float | bool):
                facts.append(f"{name}={value}")
    embedded = body.get("_embedded")
    errors = embedded.get("errors") if isinstance(embedded, dict) else None
    for item in errors if isinstance(errors, list) else []:
        cause = _field_error(item)
        if cause and cause != body.get("message"):
            causes.append(cause)
    return causes, ", ".join(facts)


def _field_error(item: Any) -> str:
    """One entry of an errors list: `path: message`, `stream: error`, or the entry as text."""
    if not isinstance(item, dict):
        return str(item)
    message = item.get("message") or item.get("error") or item.get("validationErrorMessage") or ""
    where = item.get("path") or item.get("field") or item.get("stream")
    return f"{where}: {message}" if where and message else str(message or item)


def _json(response: httpx.Response, what: str) -> Any:
    """The JSON body, or an error naming the call: a proxy's HTML page is not an answer."""
    try:
        return response.json()
    except ValueError as exc:
        snippet = response.text.strip().replace("\n", " ")[:120]
        raise ApiError(SYSTEM, f"{what}: expected JSON, got {snippet!r}", status=response.status_code) from exc


def _drop(asked: dict[int, Future[Any]]) -> None:
    """Forget pages asked for ahead: those not started are not sent; those on their way are left unread."""
    for future in asked.values():
        future.cancel()
    asked.clear()


def _release(response: httpx.Response) -> None:
    """Free a read answer's body as soon as it is decoded. An httpx Response and its stream refer to each other,
    so otherwise each listed page (some 100 KB) waits for the cyclic collector, which is paused while the specs
    load: a plan listing 5,000 connections during the load held every page until it ended."""
    response.stream = httpx.ByteStream(b"")


def _recovered(
    resource: str, body: dict[str, Any], find_existing: Callable[[], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """The object an earlier POST of `body` created after all, if it exists."""
    existing = find_existing()
    if existing is not None:
        log.info("airbyte.create.recovered", resource=resource, name=body.get("name"))
    return existing


def _object(answer: Any, what: str, id_field: str | None = None) -> dict[str, Any]:
    """`answer` as a JSON object (carrying a string `id_field`), or an error naming the call."""
    if not isinstance(answer, dict):
        raise ApiError(SYSTEM, f"{what}: expected a JSON object, got {_kind(answer)}")
    if id_field is not None and not (isinstance(answer.get(id_field), str) and answer[id_field]):
        raise ApiError(SYSTEM, f"{what}: an object without its {id_field}")
    return answer


def _kind(value: Any) -> str:
    """A JSON value's kind, for messages (never the value: it may hold a secret)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def tls_context(base_url: str) -> ssl.SSLContext:
    """The TLS context of a client of `base_url`: httpx's (the CA bundle, `SSL_CERT_FILE`, ...) for an https
    server; for an http one, which never uses it, a context trusting no certificate at all, so any https URL it
    might be sent to fails verification (closed, never open), without loading the CA bundle (20-40 ms of CPU)."""
    if base_url.lower().startswith("https://"):
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class AirbyteClient:
    """A thin, typed-enough client for the endpoints reconciler uses."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._static_token = token
        self._token: str | None = token
        self._token_expires = float("inf") if token else 0.0
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self.timeout = timeout
        """Seconds a request may go without an answer before it is given up (the server may still carry it out)."""
        self.create_settle_seconds = CREATE_SETTLE_FACTOR * timeout
        """How long after a create is sent its object may still appear."""
        self._transport = transport
        self._verify: ssl.SSLContext | None = None  # one for every thread's pool: building one costs 20-40 ms
        self._local = threading.local()
        self._pools: list[httpx.Client] = []
        self._pools_lock = threading.Lock()
        self.counter = RequestCounter()
        self._signing_in = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """This thread's connection pool. Apply's workers each keep their own, as a plain client's threads do:
        one pool shared by ten threads made every request wait for its lock and poll each idle connection."""
        pool: httpx.Client | None = getattr(self._local, "pool", None)
        if pool is None:
            with self._pools_lock:
                if self._verify is None:
                    self._verify = tls_context(self._base)
                pool = httpx.Client(
                    timeout=self.timeout,
                    transport=self._transport,
                    headers={"Accept": "application/json"},
                    event_hooks=answer_hooks(SYSTEM),
                    verify=self._verify,
                )
                self._pools.append(pool)
            self._local.pool = pool
        return pool

    def close(self) -> None:
        with self._pools_lock:
            pools, self._pools = self._pools, []
        for pool in pools:
            pool.close()

    def same_sign_in(self, other: AirbyteClient) -> bool:
        """Whether `other` signs in to the same server with the same credentials (as resolved when each was made)."""
        mine = (self._base, self._client_id, self._client_secret, self._static_token)
        return mine == (other._base, other._client_id, other._client_secret, other._static_token)

    def __enter__(self) -> AirbyteClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- auth ---------------------------------------------------------------------------

    def _fetch_token(self) -> None:
        if not (self._client_id and self._client_secret):
            if self._static_token:
                raise ApiError(SYSTEM, "the static token was refused (401): check the token", status=401)
            raise ApiError(SYSTEM, "no credentials configured (clientId/clientSecret or token)")
        body = {"client_id": self._client_id, "client_secret": self._client_secret, "grant-type": "client_credentials"}
        try:
            self.counter.record("POST", write=False)  # a token request changes nothing in Airbyte
            response = self._http.post(f"{self._base}/applications/token", json=body)
        except httpx.HTTPError as exc:
            raise ApiError(SYSTEM, f"cannot reach {self._base}: {exc}", transient=True) from exc
        if response.status_code != 200:
            raise ApiError(SYSTEM, f"sign-in failed: {problem_message(response)}", status=response.status_code)
        what = "POST /applications/token"
        try:
            answer = _object(_json(response, what), what)
        finally:
            _release(response)
        token, lifetime = answer.get("access_token"), answer.get("expires_in", 180)
        if not isinstance(token, str) or not token:
            raise ApiError(SYSTEM, f"{what}: the answer has no access_token (keys: {', '.join(sorted(answer))})")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            raise ApiError(SYSTEM, f"{what}: expires_in is {_kind(lifetime)}, not a number of seconds")
        self._token = token
        self._token_expires = self._clock() + float(lifetime) - TOKEN_MARGIN_SECONDS

    def _auth_header(self) -> dict[str, str]:
        if self._token is None or self._clock() >= self._token_expires:
            with self._signing_in:  # threads listing or applying at once sign in once
                if self._token is None or self._clock() >= self._token_expires:
                    self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    # ---- one request --------------------------------------------------------------------

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None, body: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self._base}{path}"
        for attempt in range(2):
            self.counter.record(method)
            try:
                response = self._http.request(method, url, params=params, json=body, headers=self._auth_header())
            except httpx.TimeoutException as exc:
                sent = isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)  # not a connect or pool timeout
                raise _Retryable(f"{method} {path} timed out", ambiguous=True, in_flight=sent) from exc
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                raise _Retryable(f"{method} {path}: connection lost ({exc})", ambiguous=True) from exc
            except httpx.HTTPError as exc:  # bad URL, unsupported protocol, ...: not worth retrying
                raise ApiError(SYSTEM, f"{method} {url}: {exc}") from exc
            if response.status_code == 401 and attempt == 0 and (self._client_id or not self._static_token):
                self._token = None  # expired or revoked: sign in again once
                continue
            if response.status_code in RETRYABLE_STATUS:
                status = response.status_code
                wait = (
                    retry_after_seconds(response.headers.get("Retry-After")) if status in RETRY_AFTER_STATUS else None
                )
                raise _Retryable(
                    f"{method} {path}: {problem_message(response)}",
                    ambiguous=status != 429,
                    status=status,
                    retry_after=wait,
                )
            if response.status_code >= 400:
                raise ApiError(SYSTEM, f"{method} {path}: {problem_message(response)}", status=response.status_code)
            return response
        raise ApiError(SYSTEM, f"{method} {path}: unauthorized after signing in again", status=401)

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """An idempotent call, retried with backoff on 429, 5xx, timeouts and lost connections."""
        last = ""
        for attempt in range(self._retry.attempts):
            try:
                response = self._send(method, path, params=params, body=body)
                try:
                    return _json(response, f"{method} {path}") if response.content else None
                finally:
                    _release(response)
            except _Retryable as exc:
                last = str(exc)
                self.counter.retries += 1
                log.warning("airbyte.retry", method=method, path=path, attempt=attempt + 1, reason=last)
                self._retry.pause(attempt, exc.retry_after)
        raise ApiError(SYSTEM, f"gave up after {self._retry.attempts} attempts: {last}", transient=True)

    # ---- resources ----------------------------------------------------------------------

    def iter_list(
        self, resource: str, *, workspace_id: str | None = None, ahead: int = 0
    ) -> Generator[dict[str, Any], None, None]:
        """Every object of a kind, a page of up to 100 at a time; ends on an empty page.

        Refuses a page that is not `{data: [objects with ids]}`, a page holding only objects already
        listed (a server ignoring `offset` would repeat its first page forever) and more than
        `MAX_LISTED` objects or `MAX_PAGES` pages (a server ignoring `limit`), naming the listing.

        With `ahead`, while a full page is read the next `ahead` pages are already asked for, on as many
        daemon threads (each with its own connection pool): round trips and the server's work overlap.
        Pages are still taken in order, each checked as above, and a page shorter than asked for (the
        last one, or a server that pages by less) ends the asking ahead: from there pages are asked for
        one after another, from where the objects listed end. What was asked for past the end is dropped.
        """
        what = f"GET /{resource}"
        id_field = ID_FIELDS.get(resource)
        seen: set[str] = set()
        offset = 0

        def page_at(at: int) -> Any:
            params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": at}
            if workspace_id:
                params["workspaceIds"] = workspace_id
            return self._request("GET", f"/{resource}", params=params)

        workers = DaemonWorkers(ahead, f"airbyte-{resource}-pages") if ahead > 0 else None
        asked: dict[int, Future[Any]] = {}  # offset -> the page asked for ahead
        try:
            for _page in range(MAX_PAGES):
                early = asked.pop(offset, None)
                answer = early.result() if early is not None else page_at(offset)
                page = _object(answer or {}, what)
                data = page.get("data") or []
                if not isinstance(data, list):
                    raise ApiError(SYSTEM, f"{what}: `data` is {_kind(data)}, expected a list of objects")
                if not data:
                    return
                items = [_object(item, f"{what} (offset {offset})", id_field) for item in data]
                ids = {str(item[id_field]) for item in items} if id_field else set()
                if ids and ids <= seen:
                    raise ApiError(SYSTEM, f"{what}: the page at offset {offset} repeats objects already listed")
                seen |= ids
                offset += len(items)
                if offset > MAX_LISTED:
                    raise ApiError(SYSTEM, f"{what}: more than {MAX_LISTED} objects; refusing to list further")
                if workers is not None and len(items) == PAGE_SIZE:
                    for at in range(offset, offset + ahead * PAGE_SIZE, PAGE_SIZE):
                        if at not in asked:
                            asked[at] = workers.submit(partial(page_at, at))
                else:
                    _drop(asked)
                yield from items
            raise ApiError(SYSTEM, f"{what}: more than {MAX_PAGES} pages; refusing to list further")
        finally:
            _drop(asked)
            if workers is not None:
                workers.close()

    def list_all(self, resource: str, *, workspace_id: str | None = None) -> list[dict[str, Any]]:
        return [*self.iter_list(resource, workspace_id=workspace_id)]

    def get(self, resource: str, resource_id: str) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}"
        return _object(self._request("GET", path), f"GET {path}", ID_FIELDS.get(resource))

    def patch(self, resource: str, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}"
        return _object(self._request("PATCH", path, body=body), f"PATCH {path}")

    def put(self, resource: str, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}"
        return _object(self._request("PUT", path, body=body), f"PUT {path}")

    def delete(self, resource: str, resource_id: str) -> None:
        """Delete; a resource already gone (404) counts as deleted."""
        try:
            self._request("DELETE", f"/{resource}/{resource_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    def create(
        self,
        resource: str,
        body: dict[str, Any],
        *,
        find_existing: Callable[[], dict[str, Any] | None],
    ) -> dict[str, Any]:
        """POST once; after an ambiguous failure ask `find_existing` before anything else.

        Only transient failures (429, 502-504, timeouts, lost connections) are tried again. A 500 is
        Airbyte's answer to a create that failed inside the server (a connection failing validation
        comes back so): looked up by name in case it was stored after all, then reported, not retried.
        """
        last, id_field = "", ID_FIELDS.get(resource)
        in_flight_since: float | None = None
        for attempt in range(self._retry.attempts):
            if attempt > 0 and (existing := self._settled(resource, body, find_existing, in_flight_since)) is not None:
                return existing
            try:
                what = f"POST /{resource}"
                sent_at = self._clock()
                response = self._send("POST", f"/{resource}", params=None, body=body)
                try:
                    return _object(_json(response, what), what, id_field)
                finally:
                    _release(response)
            except _Retryable as exc:
                in_flight_since = sent_at if exc.in_flight else None
                if exc.status == SERVER_ERROR:
                    if (existing := _recovered(resource, body, find_existing)) is not None:
                        return existing
                    # the server refused what it was sent (validation fails so): the same request fails again
                    raise ApiError(SYSTEM, str(exc), status=exc.status, transient=False) from None
                last = str(exc)
                self.counter.retries += 1
                log.warning("airbyte.retry", method="POST", path=f"/{resource}", attempt=attempt + 1, reason=last)
                self._retry.pause(attempt, exc.retry_after)
        raise ApiError(
            SYSTEM, f"gave up creating in /{resource} after {self._retry.attempts} attempts: {last}", transient=True
        )

    def _settled(
        self,
        resource: str,
        body: dict[str, Any],
        find_existing: Callable[[], dict[str, Any] | None],
        in_flight_since: float | None,
    ) -> dict[str, Any] | None:
        """What an earlier POST created, looked up once; when the server may still be carrying it out (sent at
        `in_flight_since`), looked up again until `create_settle_seconds` after it was sent."""
        existing = _recovered(resource, body, find_existing)
        if existing is not None or in_flight_since is None:
            return existing
        deadline = in_flight_since + self.create_settle_seconds
        for _ in range(math.ceil(self.create_settle_seconds / SETTLE_LOOKUP_SECONDS)):  # bounded, whatever the clock
            left = deadline - self._clock()
            if left <= 0:
                break
            log.warning("airbyte.create.settling", resource=resource, name=body.get("name"), seconds_left=round(left))
            self._retry.sleep(min(SETTLE_LOOKUP_SECONDS, left))
            if (existing := _recovered(resource, body, find_existing)) is not None:
                return existing
        return None

    def workspaces(self) -> list[dict[str, Any]]:
        return self.list_all("workspaces")
