"""Client for Superset's REST API (the only code that talks to Superset): auth, CSRF, paging, import/export.

- Auth: JWT from `/api/v1/security/login` (provider db, with a refresh token; a 401 refreshes once,
  then signs in again), or a pre-issued access token for deployments that sign in through an IdP.
- CSRF: a token from `/api/v1/security/csrf_token/` is fetched once per session; its session cookie
  stays in the cookie jar; every POST/PUT/DELETE sends `X-CSRFToken` and `Referer`. A write refused
  with 400 "CSRF ..." fetches a fresh token and is sent once more.
- Every answer must be what was asked for: a call expecting JSON that gets anything else (Superset
  answers some refused writes with HTTP 200 and an HTML page) raises `SupersetResponseError`.
- GETs are retried under the one policy (`clients.http`: 429, 500, 502-504, lost connections);
  writes never are.
- `requests_made` / `writes_made` count what the client sent (sign-in and CSRF calls are not writes).

Errors (all `SupersetError`, itself an `ApiError` so the CLI reports them):

    SupersetError              status, method, path and Superset's message
    ├── SupersetAuthError      sign-in refused, or a pre-issued token no longer accepted
    ├── SupersetNotFoundError  404
    └── SupersetResponseError  an answer of the wrong kind (HTML instead of JSON, not a ZIP)

Sections, bottom up: errors (and how an answer is read as refused), the request plumbing
(`SupersetCalls`: sign-in, CSRF, one request with renewals and retries, paging), asset calls
(`ResourceCalls`), role calls (`RoleCalls`), and `SupersetClient`, which is all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.clients.http import TRANSIENT_ERRORS, RequestCounter, RetryPolicy, answer_hooks
from reconciler.errors import ApiError, redact_credentials

# ---- errors --------------------------------------------------------------------------------------


SYSTEM = "superset"
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before a request left: its outcome is known (nothing happened). After it, a lost answer is not."""


class SupersetError(ApiError):
    """Superset refused a request or answered something unusable."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        transient: bool | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        self.message = redact_credentials(message)  # shown alone in verification tables
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(
            SYSTEM, f"{where}{message}", status=status, transient=transient, outcome_unknown=outcome_unknown
        )


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


# ---- request plumbing ----------------------------------------------------------------------------


PAGE_SIZE = 100
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
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            event_hooks=answer_hooks("superset"),
        )
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
            raise SupersetError(
                f"cannot reach {self.base_url}: {exc}", method=method, path=path, transient=True
            ) from exc

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
                if not self._retry.again(attempt, None, idempotent=method == "GET"):
                    if method in WRITE_METHODS and not isinstance(exc, NOT_SENT_ERRORS):
                        raise SupersetError(
                            f"sent, but the answer was lost ({type(exc).__name__}: {exc}): whether it took effect "
                            "is unknown",
                            method=method,
                            path=path,
                            transient=True,
                            outcome_unknown=True,
                        ) from exc
                    raise SupersetError(
                        f"cannot reach {self.base_url}: {exc}", method=method, path=path, transient=True
                    ) from exc
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
            if self._retry.again(attempt, response.status_code, idempotent=method == "GET"):
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


# ---- assets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardRef:
    id: int
    uuid: str
    slug: str | None
    title: str
    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    """Each owner's e-mail and full name."""


def _owner_names(owner: Mapping[str, Any]) -> list[str]:
    full = " ".join(str(owner[part]) for part in ("first_name", "last_name") if owner.get(part))
    return [name for name in (owner.get("email"), full) if name]


@dataclass(frozen=True)
class ChartRef:
    id: int
    uuid: str
    name: str
    viz_type: str
    dataset_id: int | None
    dashboard_ids: tuple[int, ...]


@dataclass(frozen=True)
class DatasetRef:
    id: int
    uuid: str
    table_name: str
    schema: str | None
    sql: str | None
    database_id: int
    database_name: str


@dataclass(frozen=True)
class DatabaseRef:
    id: int
    uuid: str
    name: str
    backend: str


class ResourceCalls(SupersetCalls):
    """The dashboard, chart, dataset and database endpoints, and the assets import."""

    # ---- listing ----------------------------------------------------------------------------

    def list_dashboards(self) -> list[DashboardRef]:
        columns = ["id", "uuid", "slug", "dashboard_title", "tags.name", "owners.email"]
        columns += ["owners.first_name", "owners.last_name"]
        return [
            DashboardRef(
                row["id"],
                str(row["uuid"]),
                row.get("slug"),
                row["dashboard_title"],
                tuple(sorted(str(tag["name"]) for tag in row.get("tags") or [])),
                tuple(sorted({name for owner in row.get("owners") or [] for name in _owner_names(owner)})),
            )
            for row in self.iter_pages("/api/v1/dashboard/", q={"columns": columns})
        ]

    def list_charts(self) -> list[ChartRef]:
        columns = ["id", "uuid", "slice_name", "viz_type", "datasource_id", "dashboards.id"]
        return [
            ChartRef(
                row["id"],
                str(row["uuid"]),
                row["slice_name"],
                row.get("viz_type") or "",
                row.get("datasource_id"),
                tuple(sorted(d["id"] for d in row.get("dashboards") or [])),
            )
            for row in self.iter_pages("/api/v1/chart/", q={"columns": columns})
        ]

    def list_datasets(self) -> list[DatasetRef]:
        columns = ["id", "uuid", "table_name", "schema", "sql", "database.id", "database.database_name"]
        return [
            DatasetRef(
                row["id"],
                str(row["uuid"]),
                row["table_name"],
                row.get("schema"),
                row.get("sql"),
                row["database"]["id"],
                row["database"]["database_name"],
            )
            for row in self.iter_pages("/api/v1/dataset/", q={"columns": columns})
        ]

    def list_databases(self) -> list[DatabaseRef]:
        columns = ["id", "uuid", "database_name", "backend"]
        return [
            DatabaseRef(row["id"], str(row["uuid"]), row["database_name"], row.get("backend") or "")
            for row in self.iter_pages("/api/v1/database/", q={"columns": columns})
        ]

    # ---- single objects ---------------------------------------------------------------------

    def get_dashboard(self, id_or_slug: int | str) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/dashboard/{id_or_slug}")["result"]
        return result

    def get_chart(self, chart_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/chart/{chart_id}")["result"]
        return result

    def get_dataset(self, dataset_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/dataset/{dataset_id}")["result"]
        return result

    def get_database(self, database_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/v1/database/{database_id}")["result"]
        return result

    def create_database(self, name: str, sqlalchemy_uri: str, **fields: Any) -> int:
        """A database connection; returns its id (`fields`: expose_in_sqllab, extra, ...)."""
        return self._create("/api/v1/database/", {"database_name": name, "sqlalchemy_uri": sqlalchemy_uri, **fields})

    def create_dataset(
        self, database_id: int, table_name: str, *, schema: str | None = None, sql: str | None = None
    ) -> int:
        """A physical dataset (a table), or a virtual one when `sql` is given; returns its id."""
        payload: dict[str, Any] = {"database": database_id, "table_name": table_name}
        if schema is not None:
            payload["schema"] = schema
        if sql is not None:
            payload["sql"] = sql
        return self._create("/api/v1/dataset/", payload)

    def create_chart(self, payload: Mapping[str, Any]) -> int:
        """A chart (`slice_name`, `viz_type`, `datasource_id`, `datasource_type`, `params`, ...)."""
        return self._create("/api/v1/chart/", payload)

    def create_dashboard(self, payload: Mapping[str, Any]) -> int:
        """A dashboard (`dashboard_title`, `slug`, `position_json`, `json_metadata`, ...)."""
        return self._create("/api/v1/dashboard/", payload)

    def update_database(self, database_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/database/{database_id}", payload)

    def update_dataset(self, dataset_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/dataset/{dataset_id}", payload)

    def update_chart(self, chart_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/chart/{chart_id}", payload)

    def update_dashboard(self, dashboard_id: int, payload: Mapping[str, Any]) -> None:
        self._update(f"/api/v1/dashboard/{dashboard_id}", payload)

    def delete_database(self, database_id: int) -> None:
        self._delete(f"/api/v1/database/{database_id}")

    def delete_dataset(self, dataset_id: int) -> None:
        self._delete(f"/api/v1/dataset/{dataset_id}")

    def delete_chart(self, chart_id: int) -> None:
        self._delete(f"/api/v1/chart/{chart_id}")

    def delete_dashboard(self, dashboard_id: int) -> None:
        self._delete(f"/api/v1/dashboard/{dashboard_id}")

    # ---- export and import ------------------------------------------------------------------

    def export_dashboards(self, ids: Sequence[int]) -> bytes:
        """One ZIP bundle holding the dashboards and every chart, dataset and database they use."""
        return self.export("dashboard", ids)

    def export(self, resource: str, ids: Sequence[int]) -> bytes:
        """One ZIP bundle of `dashboard`s, `chart`s, `dataset`s or `database`s and what they use."""
        if not ids:
            raise ValueError(f"exporting {resource}s needs at least one id")
        path = f"/api/v1/{resource}/export/"
        response = self._send("GET", path, params={"q": rison(list(ids))})
        if response.status_code != 200:
            raise self._fail(response, "GET", path)
        if not response.content.startswith(b"PK"):
            content_type = response.headers.get("content-type", "")
            raise SupersetResponseError(
                f"expected a ZIP, got {content_type}: {response.text[:200]}", status=200, method="GET", path=path
            )
        return response.content

    def _import(self, path: str, field: str, bundle: bytes, form: dict[str, str]) -> None:
        files = {field: ("bundle.zip", bundle, "application/zip")}
        answer = self.request_json("POST", path, ok=(200,), files=files, data=form)
        if answer.get("message") != "OK":
            raise SupersetResponseError(f"import answered {answer}", status=200, method="POST", path=path)

    def import_assets(
        self, bundle: bytes, passwords: Mapping[str, str] | None = None, *, overwrite: bool = True
    ) -> None:
        """Import a `type: assets` bundle; Superset overwrites every asset in it (the only mode it has).

        `passwords` maps database files in the bundle (`databases/NAME.yaml`) to their passwords.
        """
        if not overwrite:
            raise ValueError("/api/v1/assets/import/ always overwrites; use import_dashboards(overwrite=False)")
        self._import("/api/v1/assets/import/", "bundle", bundle, {"passwords": json.dumps(dict(passwords or {}))})

    def import_dashboards(
        self, bundle: bytes, passwords: Mapping[str, str] | None = None, *, overwrite: bool = True
    ) -> None:
        """Import a `type: Dashboard` bundle. Even with overwrite only the dashboards are overwritten:
        charts, datasets and databases already there are left as they are (use `import_assets`)."""
        form = {"passwords": json.dumps(dict(passwords or {})), "overwrite": "true" if overwrite else "false"}
        self._import("/api/v1/dashboard/import/", "formData", bundle, form)

    # ---- chart data -------------------------------------------------------------------------

    def chart_data(self, chart_id: int, *, force: bool = False) -> dict[str, Any]:
        """Run a chart's saved query (charts need a saved `query_context`); `force` skips Superset's cache."""
        params = {"force": "true"} if force else None
        return self.request_json("GET", f"/api/v1/chart/{chart_id}/data/", params=params)

    def query_chart_data(self, query_context: Mapping[str, Any]) -> dict[str, Any]:
        """Run a query context given in full (`POST /api/v1/chart/data`); reads, so not a write."""
        return self.request_json("POST", "/api/v1/chart/data", ok=(200,), write=False, json=dict(query_context))


# ---- roles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    id: int
    name: str


@dataclass(frozen=True)
class PermissionViewMenu:
    """One permission on one view menu (`can_read` on `Dashboard`, `datasource_access` on a table)."""

    id: int
    permission: str
    view_menu: str


class RoleCalls(SupersetCalls):
    """List, create and delete roles; read and replace a role's permissions."""

    # ---- roles and permissions --------------------------------------------------------------

    def list_roles(self) -> list[Role]:
        return [Role(row["id"], row["name"]) for row in self.iter_pages("/api/v1/security/roles/")]

    def create_role(self, name: str) -> int:
        return int(self.request_json("POST", "/api/v1/security/roles/", ok=(201,), json={"name": name})["id"])

    def delete_role(self, role_id: int) -> None:
        self._delete(f"/api/v1/security/roles/{role_id}")

    def role_permissions(self, role_id: int) -> list[PermissionViewMenu]:
        answer = self.get_json(f"/api/v1/security/roles/{role_id}/permissions/")
        return [
            PermissionViewMenu(row["id"], row["permission_name"], row["view_menu_name"])
            for row in answer.get("result") or []
        ]

    def set_role_permissions(self, role_id: int, pvm_ids: Sequence[int]) -> None:
        """Replace the role's whole permission set with `pvm_ids`."""
        path = f"/api/v1/security/roles/{role_id}/permissions"
        self.request_json("POST", path, ok=(200,), json={"permission_view_menu_ids": sorted(set(pvm_ids))})

    def my_roles(self) -> dict[str, list[tuple[str, str]]]:
        """The signed-in user's roles (their groups' too) and each one's (permission, view menu) pairs."""
        path = "/api/v1/me/roles/"
        result = self.get_json(path).get("result")
        roles = result.get("roles") if isinstance(result, dict) else None
        if not isinstance(roles, dict):
            raise SupersetResponseError("`result.roles` is not a mapping of role names", method="GET", path=path)
        return {
            str(name): [(str(pair[0]), str(pair[1])) for pair in pairs if isinstance(pair, list) and len(pair) == 2]
            for name, pairs in roles.items()
            if isinstance(pairs, list)
        }

    def list_permission_view_menus(self) -> list[PermissionViewMenu]:
        return [
            PermissionViewMenu(row["id"], row["permission"]["name"], row["view_menu"]["name"])
            for row in self.iter_pages("/api/v1/security/permissions-resources/")
        ]


# ---- the client ----------------------------------------------------------------------------------


class SupersetClient(ResourceCalls, RoleCalls):
    """A thin, typed client for the Superset endpoints reconciler uses."""

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
