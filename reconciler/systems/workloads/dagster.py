"""Dagster client, under the workloads provider's health gate: code-location status over GraphQL (httpx).

A code location is healthy only when it loaded its definitions: Dagster reports a location whose
module failed to import with loadStatus LOADED too, so health comes from locationOrLoadError
(a RepositoryLocation, not a PythonError). HTTP failures, GraphQL errors and unexpected answers
all leave as DagsterError with the URL and what went wrong. The status query is a read and is
retried under the one policy (`clients.http`); the reload mutation is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.cancellation import Cancellation
from reconciler.clients.http import TRANSIENT_ERRORS, RetryPolicy, answer_hooks
from reconciler.errors import RedactedError, transient_status

LOCATION_FIELDS = """
    name
    loadStatus
    displayMetadata { key value }
    locationOrLoadError { __typename ... on PythonError { message className } }
"""
STATUS_QUERY = f"""
query LocationStatuses {{
  workspaceOrError {{
    __typename
    ... on Workspace {{ locationEntries {{ {LOCATION_FIELDS} }} }}
    ... on PythonError {{ message }}
  }}
}}
"""
RELOAD_MUTATION = f"""
mutation ReloadLocation($name: String!) {{
  reloadRepositoryLocation(repositoryLocationName: $name) {{
    __typename
    ... on WorkspaceLocationEntry {{ {LOCATION_FIELDS} }}
    ... on PythonError {{ message }}
    ... on RepositoryLocationNotFound {{ message }}
    ... on ReloadNotSupported {{ message }}
    ... on UnauthorizedError {{ message }}
  }}
}}
"""
LOADING = "LOADING"


class DagsterError(RedactedError):
    """Dagster could not be asked, or answered with an error; temporary when unreachable, 408/429/5xx or slow."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.classify(transient=transient)


@dataclass(frozen=True)
class LocationStatus:
    """One code location: its load status and, when it failed to load, the error."""

    name: str
    load_status: str
    error: str | None = None
    error_class: str | None = None
    image: str | None = None
    """The image its code server says it runs (`displayMetadata` key `image`, from DAGSTER_CURRENT_IMAGE, which
    Dagster's Helm chart sets); None when Dagster does not say."""

    @property
    def healthy(self) -> bool:
        return self.error is None and self.load_status != LOADING

    @property
    def loading(self) -> bool:
        return self.error is None and self.load_status == LOADING


def _location(entry: dict[str, Any]) -> LocationStatus:
    outcome = entry.get("locationOrLoadError") or {}
    kind = outcome.get("__typename")
    failed = kind is not None and kind != "RepositoryLocation"
    metadata = entry.get("displayMetadata")
    pairs = metadata if isinstance(metadata, list) else []
    image = next((str(m.get("value")) for m in pairs if isinstance(m, dict) and m.get("key") == "image"), None)
    return LocationStatus(
        name=str(entry.get("name")),
        load_status=str(entry.get("loadStatus")),
        error=str(outcome.get("message") or kind).strip() if failed else None,
        error_class=str(outcome.get("className") or kind) if failed else None,
        image=image or None,
    )


class DagsterClient:
    """GraphQL calls to one dagster-webserver (its base URL; `/graphql` is appended)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self.endpoint = self.url if self.url.endswith("/graphql") else f"{self.url}/graphql"
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers, timeout=timeout, transport=transport, event_hooks=answer_hooks("workloads")
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DagsterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, query: str, variables: dict[str, Any] | None, *, idempotent: bool) -> httpx.Response:
        """One GraphQL request; a query (a read) is retried under the policy, a mutation never."""
        attempt = 0
        while True:
            try:
                response = self._http.post(self.endpoint, json={"query": query, "variables": variables or {}})
            except TRANSIENT_ERRORS as error:
                if not self._retry.again(attempt, None, idempotent=idempotent):
                    raise DagsterError(
                        f"Dagster at {self.endpoint} could not be reached: {type(error).__name__}: {error}",
                        transient=True,
                    ) from None
            except httpx.HTTPError as error:
                raise DagsterError(
                    f"Dagster at {self.endpoint} could not be reached: {type(error).__name__}: {error}"
                ) from None
            else:
                if not self._retry.again(attempt, response.status_code, idempotent=idempotent):
                    return response
            self._retry.pause(attempt)
            attempt += 1

    def _graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, idempotent: bool = False
    ) -> dict[str, Any]:
        response = self._post(query, variables, idempotent=idempotent)
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            raise DagsterError(f"Dagster at {self.endpoint} answered GraphQL errors: {messages}")
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            snippet = response.text[:300].strip() or "(empty body)"
            raise DagsterError(
                f"Dagster at {self.endpoint} answered HTTP {response.status_code}: {snippet}",
                transient=transient_status(response.status_code),
            )
        data: dict[str, Any] = body["data"]
        return data

    def location_statuses(self) -> list[LocationStatus]:
        """Every code location in the workspace."""
        workspace = self._graphql(STATUS_QUERY, idempotent=True).get("workspaceOrError") or {}
        if not isinstance(workspace, dict) or workspace.get("__typename") != "Workspace":
            message = workspace.get("message") if isinstance(workspace, dict) else None
            raise DagsterError(f"Dagster could not load its workspace: {message or workspace}")
        entries = workspace.get("locationEntries") or []
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise DagsterError(f"Dagster at {self.endpoint} answered locationEntries that are not a list of objects")
        return [_location(entry) for entry in entries]

    def location_status(self, name: str) -> LocationStatus:
        for status in self.location_statuses():
            if status.name == name:
                return status
        raise DagsterError(f"Dagster has no code location {name!r}")

    def reload_location(self, name: str) -> LocationStatus:
        """Ask Dagster to reload a code location (it re-imports the code); returns the entry it reports."""
        result = self._graphql(RELOAD_MUTATION, {"name": name}).get("reloadRepositoryLocation") or {}
        if not isinstance(result, dict):
            raise DagsterError(f"reloading code location {name!r}: the answer is not an object")
        kind = result.get("__typename")
        if kind != "WorkspaceLocationEntry":
            raise DagsterError(f"reloading code location {name!r} failed ({kind}): {result.get('message') or result}")
        return _location(result)

    def wait_until_loaded(
        self, name: str, timeout_s: float = 120.0, poll_s: float = 1.0, cancellation: Cancellation | None = None
    ) -> LocationStatus:
        """The location's status once it is no longer LOADING (healthy or not); DagsterError on timeout.

        With a `cancellation`, the wait between polls ends (`CancelledError`) as soon as it is set.
        """
        deadline = time.monotonic() + timeout_s
        pause = time.sleep if cancellation is None else cancellation.wait
        while True:
            if cancellation is not None:
                cancellation.raise_if_cancelled()
            status = self.location_status(name)
            if status.load_status != LOADING:
                return status
            if time.monotonic() >= deadline:
                raise DagsterError(f"code location {name!r} still LOADING after {timeout_s:g} s", transient=True)
            pause(max(0.0, min(poll_s, deadline - time.monotonic())))
