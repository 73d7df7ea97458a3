"""Client for Superset's REST API (the only code that talks to Superset): auth, CSRF, paging, import/export.

- Auth: JWT from `/api/v1/security/login` (provider db, with a refresh token; a 401 refreshes once,
  then signs in again), or a pre-issued access token for deployments that sign in through an IdP.
- CSRF: a token from `/api/v1/security/csrf_token/` is fetched once per session; its session cookie
  stays in the cookie jar; every POST/PUT/DELETE sends `X-CSRFToken` and `Referer`. A write refused
  with 400 "CSRF ..." fetches a fresh token and is sent once more.
- Every answer must be what was asked for: a call expecting JSON that gets anything else (Superset
  answers some refused writes with HTTP 200 and an HTML page) raises `SupersetResponseError`.
- GETs are retried with backoff on 429/502/503/504 and lost connections; writes never are.
- `requests_made` / `writes_made` count what the client sent (sign-in and CSRF calls are not writes).

Errors (all `SupersetError`, itself an `ApiError` so the CLI reports them):

    SupersetError              status, method, path and Superset's message
    ├── SupersetAuthError      sign-in refused, or a pre-issued token no longer accepted
    ├── SupersetNotFoundError  404
    └── SupersetResponseError  an answer of the wrong kind (HTML instead of JSON, not a ZIP)

`SupersetClient` is put together here from calls.py (auth, CSRF, one request, paging),
resources.py (assets, export/import, chart data) and security.py (roles and
permissions); the errors live in errors.py. Every public name stays importable from here.
"""

from __future__ import annotations

from reconciler.systems.superset.api.calls import GET_RETRY_STATUS, PAGE_SIZE, WRITE_METHODS, rison
from reconciler.systems.superset.api.errors import (
    SYSTEM,
    SupersetAuthError,
    SupersetError,
    SupersetNotFoundError,
    SupersetResponseError,
    csrf_refused,
    describe,
    token_refused,
)
from reconciler.systems.superset.api.resources import ChartRef, DashboardRef, DatabaseRef, DatasetRef, ResourceCalls
from reconciler.systems.superset.api.security import PermissionViewMenu, Role, RoleCalls

__all__ = [
    "GET_RETRY_STATUS",
    "PAGE_SIZE",
    "SYSTEM",
    "WRITE_METHODS",
    "ChartRef",
    "DashboardRef",
    "DatabaseRef",
    "DatasetRef",
    "PermissionViewMenu",
    "Role",
    "SupersetAuthError",
    "SupersetClient",
    "SupersetError",
    "SupersetNotFoundError",
    "SupersetResponseError",
    "csrf_refused",
    "describe",
    "rison",
    "token_refused",
]


class SupersetClient(ResourceCalls, RoleCalls):
    """A thin, typed client for the Superset endpoints reconciler uses."""

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
