"""Superset client, errors: the `SupersetError` tree, and how an answer is recognised as refused.

The bottom of the Superset client (client.py): the request plumbing of calls.py raises
these errors and uses `describe`, `token_refused` and `csrf_refused` to read Superset's answers.
"""

from __future__ import annotations

import json

import httpx

from reconciler.errors import ApiError, redact_credentials

SYSTEM = "superset"


class SupersetError(ApiError):
    """Superset refused a request or answered something unusable."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "", path: str = "") -> None:
        self.message = redact_credentials(message)  # shown alone in verification tables
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(SYSTEM, f"{where}{message}", status=status)


class SupersetAuthError(SupersetError):
    """Signing in failed, or the access token was refused and cannot be renewed."""


class SupersetNotFoundError(SupersetError):
    """The object asked for does not exist (404)."""


class SupersetResponseError(SupersetError):
    """The answer was not of the expected kind (HTML where JSON was due, JSON where a ZIP was)."""


def describe(response: httpx.Response) -> str:
    """Superset's own message from an error answer, or the start of whatever came back."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:200] or response.reason_phrase}"
    if isinstance(body, dict):
        detail = body.get("message") or body.get("errors") or body.get("msg") or body
        return f"HTTP {response.status_code}: {json.dumps(detail)[:500] if not isinstance(detail, str) else detail}"
    return f"HTTP {response.status_code}: {str(body)[:500]}"


def token_refused(response: httpx.Response) -> bool:
    """A 401, or the 422 `{"msg": ...}` flask-jwt-extended gives for a malformed or foreign token."""
    if response.status_code == 401:
        return True
    if response.status_code != 422 or "json" not in response.headers.get("content-type", ""):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"msg"}


def csrf_refused(response: httpx.Response) -> bool:
    """A write refused for its CSRF token: 400 "The CSRF token is missing" for JSON bodies; a
    redirect to the login page for multipart ones (an import)."""
    if response.status_code == 400:
        return "csrf" in response.text.lower()
    return response.is_redirect and "/login" in response.headers.get("location", "")
