"""Kubernetes client, plumbing: one cluster's API groups, and the way every call is made and fails.

The base of KubeClient (kube.py) and of its lease calls (kube_leases.py). A call runs through
`_call`, which turns every failure into a KubeError naming the call (KubeNotFound on 404,
KubeConflict on 409) so no kubernetes, urllib3 or pydantic exception escapes; one-field writes
retry through `_with_conflict_retry`. Objects come back as plain dicts (`_dict`).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException, OpenApiException

from reconciler.errors import RedactedError, transient_status

FIELD_MANAGER = "reconciler"
REQUEST_TIMEOUT_SECONDS: tuple[float, float] = (10.0, 30.0)
"""(connect, read) of every call that names no `_request_timeout` of its own: the official client otherwise
waits without limit on an API server that accepts a connection and never answers."""
T = TypeVar("T")


class KubeError(RedactedError):
    """A Kubernetes call failed; the message says which call and what the API server answered.

    Temporary (`retryable`) when the API server was unreachable or answered 408, 429 or 5xx.
    """

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None, transient: bool | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason
        self.classify(transient=transient_status(status) if transient is None else transient)


class KubeNotFound(KubeError):
    """The object does not exist (404)."""


class KubeConflict(KubeError):
    """Someone else wrote first (409): re-read and try again."""


def _status_message(error: ApiException) -> tuple[str, str | None]:
    """The API server's Status message and reason, else the HTTP reason phrase."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]), body.get("reason")
    return str(error.reason or "no response body"), None


def _bound_every_request(api_client: client.ApiClient) -> None:
    """Give every request of `api_client` a timeout (REQUEST_TIMEOUT_SECONDS, read at call time) unless the call
    names one; once per client."""
    rest: Any = api_client.rest_client
    if getattr(rest, "_reconciler_bounded", False):
        return
    unbounded: Callable[..., Any] = rest.request

    def request(*args: Any, **kwargs: Any) -> Any:
        kwargs["_request_timeout"] = kwargs.get("_request_timeout") or REQUEST_TIMEOUT_SECONDS
        return unbounded(*args, **kwargs)

    rest.request = request
    rest._reconciler_bounded = True


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class KubeCalls:
    """One cluster's API groups and the plumbing every call goes through."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        field_manager: str = FIELD_MANAGER,
        conflict_retries: int = 5,
        backoff_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self.api_client = api_client
        _bound_every_request(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.field_manager = field_manager
        self.conflict_retries = conflict_retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._now = now

    # --- plumbing ---

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one API call; every failure becomes a KubeError naming `what`."""
        try:
            return call()
        except ApiException as error:
            message, reason = _status_message(error)
            status = int(error.status) if error.status else None
            kind = KubeNotFound if status == 404 else KubeConflict if status == 409 else KubeError
            raise kind(f"{what}: {message} (HTTP {status})", status=status, reason=reason) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:  # unreachable, timed out
            raise KubeError(f"{what}: {type(error).__name__}: {error}", transient=True) from None
        except (OpenApiException, pydantic.ValidationError, ValueError) as error:
            raise KubeError(f"{what}: {type(error).__name__}: {error}") from None

    def _dict(self, model: Any) -> dict[str, Any]:
        result = self.api_client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return dict(result) if isinstance(result, dict) else {}

    def _with_conflict_retry(self, what: str, attempt: Callable[[], bool]) -> bool:
        """Re-read and retry `attempt` on 409, a bounded number of times with a short backoff."""
        for tries in range(1, self.conflict_retries + 1):
            try:
                return attempt()
            except KubeConflict as conflict:
                if tries == self.conflict_retries:
                    raise KubeConflict(
                        f"{what}: still conflicting after {tries} attempts: {conflict}", status=409, transient=True
                    ) from None
                self._sleep(self.backoff_s * 2 ** (tries - 1))
        raise AssertionError("unreachable")
