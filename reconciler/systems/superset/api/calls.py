"""Superset client, plumbing: sign-in, CSRF, one request with renewals and retries, JSON answers, paging.

The base of SupersetClient (client.py) and of its resource and security calls
(resources.py, security.py), which go through `request_json`, `get_json`,
`iter_pages` and `_send`. Errors come from errors.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from reconciler.clients.http import TRANSIENT_ERRORS, RequestCounter, RetryPolicy
from reconciler.systems.superset.api.errors import (
    SupersetAuthError,
    SupersetError,
    SupersetNotFoundError,
    SupersetResponseError,
    csrf_refused,
    describe,
    token_refused,
)

PAGE_SIZE = 100
GET_RETRY_STATUS = frozenset({429, 502, 503, 504})
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
MAX_ROWS = 100_000
MAX_PAGES = 5_000
"""A listing longer than these is refused (a server that pages forever must not hang a plan)."""


def rison(value: Any) -> str:
    """Encode a value as Rison, the URL-friendly JSON Superset's `q=` parameters use."""
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        if re.fullmatch(r"[A-Za-z_./~][A-Za-z0-9_./~-]*", value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, Mapping):
        return "(" + ",".join(f"{rison(str(key))}:{rison(item)}" for key, item in value.items()) + ")"
    if isinstance(value, Sequence):
        return "!(" + ",".join(rison(item) for item in value) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as rison")


def _text(answer: Mapping[str, Any], key: str, method: str, path: str) -> str:
    """A non-empty string the answer must carry (a token), or an error naming the call; never the answer itself."""
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise SupersetResponseError(
            f"the answer has no {key} (keys: {', '.join(sorted(answer))})", method=method, path=path
        )
    return value


class SupersetCalls:
    """Credentials, the HTTP session and its counters, and the one way every call is made."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None,
        password: str | None,
        access_token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not access_token and not (username and password):
            raise SupersetAuthError("no credentials: give a username and password, or an access token")
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._access_token = access_token
        self._refresh_token: str | None = None
        self._csrf_token: str | None = None
        self._retry = retry or RetryPolicy()
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={"Accept": "application/json"})
        self.counter = RequestCounter()

    @property
    def requests_made(self) -> int:
        return self.counter.requests

    @property
    def writes_made(self) -> int:
        return self.counter.writes

    def close(self) -> None:
        self._http.close()

    # ---- auth and CSRF ----------------------------------------------------------------------

    def _auth_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.counter.record(method, write=False)  # signing in changes nothing in Superset
        try:
            return self._http.request(method, f"{self.base_url}{path}", **kwargs)
        except TRANSIENT_ERRORS as exc:
            raise SupersetError(f"cannot reach {self.base_url}: {exc}", method=method, path=path) from exc

    def login(self) -> None:
        """Sign in with username and password; keeps the access and refresh tokens."""
        if not (self._username and self._password):
            raise SupersetAuthError("the access token was refused (401) and no username/password is configured")
        path = "/api/v1/security/login"
        body = {"username": self._username, "password": self._password, "provider": "db", "refresh": True}
        response = self._auth_call("POST", path, json=body)
        if response.status_code != 200:
            raise SupersetAuthError(f"sign-in failed: {describe(response)}", status=response.status_code)
        answer = self._expect_json(response, "POST", path)
        self._access_token = _text(answer, "access_token", "POST", path)
        self._refresh_token = str(answer["refresh_token"]) if answer.get("refresh_token") else None
        self._csrf_token = None  # a new identity needs a new CSRF session

    def _renew_access(self) -> None:
        """After a 401: use the refresh token if there is one, else sign in again."""
        if self._refresh_token:
            path = "/api/v1/security/refresh"
            headers = {"Authorization": f"Bearer {self._refresh_token}"}
            response = self._auth_call("POST", path, headers=headers)
            if response.status_code == 200:
                self._access_token = _text(self._expect_json(response, "POST", path), "access_token", "POST", path)
                return
            self._refresh_token = None
        self.login()

    def _bearer(self) -> dict[str, str]:
        if not self._access_token:
            self.login()
        return {"Authorization": f"Bearer {self._access_token}"}

    def _csrf_headers(self) -> dict[str, str]:
        if self._csrf_token is None:
            path = "/api/v1/security/csrf_token/"
            response = self._auth_call("GET", path, headers=self._bearer())
            if token_refused(response):
                self._renew_access()
                response = self._auth_call("GET", path, headers=self._bearer())
            if response.status_code != 200:
                raise SupersetError(f"cannot get a CSRF token: {describe(response)}", status=response.status_code)
            self._csrf_token = _text(self._expect_json(response, "GET", path), "result", "GET", path)
        return {"X-CSRFToken": self._csrf_token, "Referer": f"{self.base_url}/"}

    # ---- one request ------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, write: bool | None = None, **kwargs: Any) -> httpx.Response:
        """One call with auth, CSRF, a renewed token after a 401 and, for GETs, retries."""
        url = f"{self.base_url}{path}"
        renewed = csrf_renewed = False
        attempt = 0
        while True:
            csrf = self._csrf_headers() if method in WRITE_METHODS else {}  # may renew the access token
            headers = self._bearer() | csrf
            self.counter.record(method, write=write)
            try:
                response = self._http.request(method, url, headers=headers, **kwargs)
            except TRANSIENT_ERRORS as exc:
                if method != "GET" or attempt + 1 >= self._retry.attempts:
                    raise SupersetError(f"cannot reach {self.base_url}: {exc}", method=method, path=path) from exc
                self._retry.pause(attempt)
                attempt += 1
                self.counter.retries += 1
                continue
            if token_refused(response) and not renewed:
                renewed = True
                self._renew_access()
                continue
            if method in WRITE_METHODS and csrf_refused(response) and not csrf_renewed:
                csrf_renewed = True
                self._csrf_token = None
                continue
            if method == "GET" and response.status_code in GET_RETRY_STATUS and attempt + 1 < self._retry.attempts:
                self._retry.pause(attempt)
                attempt += 1
                self.counter.retries += 1
                continue
            return response

    @staticmethod
    def _fail(response: httpx.Response, method: str, path: str) -> SupersetError:
        status = response.status_code
        if response.is_redirect:
            location = response.headers.get("location", "")
            reason = " (refused CSRF token or session)" if "/login" in location else ""
            return SupersetResponseError(
                f"expected JSON, got HTTP {status} redirect to {location}{reason}",
                status=status,
                method=method,
                path=path,
            )
        kind = SupersetNotFoundError if status == 404 else SupersetAuthError if status in (401, 403) else SupersetError
        return kind(describe(response), status=status, method=method, path=path)

    @staticmethod
    def _expect_json(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        content_type = response.headers.get("content-type", "")
        try:
            body = response.json() if "json" in content_type else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            start = response.text.strip()[:200]
            raise SupersetResponseError(
                f"expected JSON, got HTTP {response.status_code} {content_type or 'without a content type'}: {start}",
                status=response.status_code,
                method=method,
                path=path,
            )
        return body

    def request_json(
        self,
        method: str,
        path: str,
        *,
        ok: Sequence[int] = (200, 201),
        write: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A call whose answer must be a JSON object with one of the `ok` statuses."""
        response = self._send(method, path, write=write, **kwargs)
        if response.status_code not in ok:
            raise self._fail(response, method, path)
        return self._expect_json(response, method, path)

    def get_json(self, path: str, *, q: Any = None) -> dict[str, Any]:
        return self.request_json("GET", path, params={"q": rison(q)} if q is not None else None)

    def iter_pages(self, path: str, *, q: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every row of a list endpoint, `PAGE_SIZE` at a time, until `count` rows or an empty page.

        Each row must be an object with an `id`. A page holding only rows already listed (a server
        ignoring `page`), more than `MAX_ROWS` rows or `MAX_PAGES` pages is an error naming the listing.
        """
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            answer = self.get_json(path, q={**(q or {}), "page": page, "page_size": PAGE_SIZE})
            rows = answer.get("result") or []
            if not isinstance(rows, list) or not all(isinstance(row, dict) and "id" in row for row in rows):
                raise SupersetResponseError("`result` is not a list of objects with an id", method="GET", path=path)
            ids = {str(row["id"]) for row in rows}
            if rows and ids <= seen:
                raise SupersetResponseError(f"page {page} repeats rows already listed", method="GET", path=path)
            seen |= ids
            if len(seen) > MAX_ROWS:
                raise SupersetResponseError(
                    f"more than {MAX_ROWS} rows; refusing to list further", method="GET", path=path
                )
            yield from rows
            count = answer.get("count")
            if not rows or (isinstance(count, int) and len(seen) >= count):
                return
        raise SupersetResponseError(f"more than {MAX_PAGES} pages; refusing to list further", method="GET", path=path)

    def _create(self, path: str, payload: Mapping[str, Any]) -> int:
        return int(self.request_json("POST", path, ok=(201,), json=dict(payload))["id"])

    def _update(self, path: str, payload: Mapping[str, Any]) -> None:
        self.request_json("PUT", path, ok=(200,), json=dict(payload))

    def _delete(self, path: str) -> None:
        self.request_json("DELETE", path, ok=(200,))
