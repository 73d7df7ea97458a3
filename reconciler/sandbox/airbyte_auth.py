"""Airbyte stand-in, auth: the client-credentials token endpoint and the bearer check on every other request.

Used by airbyte_server.py, which routes `POST /applications/token` to `AccessTokens.issue` and asks
`authorized` before dispatching anything else. Tokens live in memory only and expire after their
TTL (or at once, through `expire_all`, when a test wants the 401 path).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from reconciler.sandbox.airbyte_problems import bad_request, unauthorized
from reconciler.sandbox.airbyte_requests import request_body
from reconciler.sandbox.http_util import Request, Response, json_response


class AccessTokens:
    """Bearer tokens issued to one client id and secret, each valid for `ttl_seconds` of `clock`."""

    def __init__(
        self, client_id: str, client_secret: str, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client_id, self._client_secret = client_id, client_secret
        self._clock = clock
        self._token_ttl = ttl_seconds
        self._tokens: dict[str, float] = {}
        self._tokens_lock = threading.Lock()

    def issue(self, request: Request) -> Response:
        fields = self._token_fields(request)
        grant = fields.get("grant_type") or fields.get("grant-type") or "client_credentials"
        if grant != "client_credentials":
            raise bad_request(f"Unsupported grant type {grant!r}.")
        if fields.get("client_id") != self._client_id or fields.get("client_secret") != self._client_secret:
            return unauthorized(request.path)
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = self._clock() + self._token_ttl
        body = {"access_token": token, "token_type": "Bearer", "expires_in": int(self._token_ttl)}
        return json_response(200, body)

    @staticmethod
    def _token_fields(request: Request) -> dict[str, Any]:
        """The token request comes as JSON (api.yaml) or as a form (what OAuth clients, the SDK included, send)."""
        if "x-www-form-urlencoded" in request.headers.get("content-type", ""):
            return dict(request.form())
        return request_body(request)

    def authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._tokens_lock:
            expiry = self._tokens.get(token.strip())
            return expiry is not None and self._clock() < expiry

    def expire_all(self) -> None:
        """Every token issued so far becomes invalid: the next request with one gets a 401."""
        with self._tokens_lock:
            self._tokens.clear()
