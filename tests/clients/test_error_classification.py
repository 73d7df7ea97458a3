"""Every error a client raises says whether retrying can help: temporary (429, 5xx after retries,
timeouts, unreachable) or permanent (4xx, a bad answer), like kopf's TemporaryError / PermanentError."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import reconciler
from reconciler.clients.http import RetryPolicy
from reconciler.errors import (
    ApiError,
    ApplyError,
    CancelledError,
    LockedError,
    PermanentError,
    PlanError,
    RedactedError,
    SecretError,
    SpecError,
    TemporaryError,
    is_retryable,
)
from reconciler.systems.airbyte.client import AirbyteClient
from reconciler.systems.superset.client import SupersetClient
from reconciler.systems.workloads.dagster import DagsterClient

PACKAGE = Path(reconciler.__file__).parent
CLIENT_MODULES = sorted(
    [
        *(PACKAGE / "clients").rglob("*.py"),
        *(PACKAGE / "systems").glob("*/client.py"),
        PACKAGE / "systems" / "workloads" / "dagster.py",
    ]
)
CLASSIFIED_PER_ERROR = ("ApiError", "KubeError", "DagsterError", "ApplyError")
"""Families whose instances decide by status or cause; every other error is a Permanent- or TemporaryError."""
INTERNAL = {"_Retryable"}  # the Airbyte client's retry signal, caught inside the client
MISUSE = {"AssertionError", "TypeError", "ValueError"}
"""A caller's bug (a value rison cannot encode, an empty export): never retried, `is_retryable` says False."""
Handler = Callable[[httpx.Request], httpx.Response]


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
        if ".sandbox" in module.name or module.name.endswith(".__main__"):
            continue
        for name, value in vars(importlib.import_module(module.name)).items():
            if inspect.isclass(value) and issubclass(value, BaseException):
                found[name] = value
    return found


def _raised_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def test_every_error_class_a_client_raises_is_classified() -> None:
    classes = _error_classes()
    # `raise kind(...)` and `raise self._fail(...)` build KubeError and SupersetError subclasses, checked below
    raised = {name for path in CLIENT_MODULES for name in _raised_names(path) if name[0].isupper()} - INTERNAL - MISUSE
    assert raised >= {"ApiError", "KubeError", "DagsterError", "SupersetError"}
    for name in sorted(raised):
        error = classes[name]
        assert issubclass(error, RedactedError), f"{name} is not one of reconciler's errors"
        family = {base.__name__ for base in error.__mro__}
        assert family & {"PermanentError", "TemporaryError", *CLASSIFIED_PER_ERROR}, f"{name} is not classified"


def test_every_reconciler_error_class_is_permanent_temporary_or_decided_per_error() -> None:
    bases = {"RedactedError", "ReconcilerError", "PermanentError", "TemporaryError", *INTERNAL}
    for name, error in sorted(_error_classes().items()):
        if not issubclass(error, RedactedError) or name in bases:
            continue
        family = {base.__name__ for base in error.__mro__}
        assert family & {"PermanentError", "TemporaryError", *CLASSIFIED_PER_ERROR}, f"{name} is not classified"


def test_spec_and_plan_errors_are_permanent_lock_and_cancellation_temporary() -> None:
    for error in (SpecError([]), SecretError("x"), PlanError("x")):
        assert isinstance(error, PermanentError) and not is_retryable(error) and error.delay is None
    for temporary in (LockedError("x"), CancelledError("x"), TemporaryError("x", delay=5)):
        assert is_retryable(temporary) and temporary.delay is not None
    assert TemporaryError("x", delay=5).delay == 5
    assert not is_retryable(ValueError("a bug is never retried"))
    assert is_retryable(ApplyError("x", cause=ApiError("airbyte", "down", status=503)))
    assert not is_retryable(ApplyError("x", cause=ApiError("airbyte", "bad", status=400)))


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (404, False), (422, False), (429, True), (500, True), (503, True)]
)
def test_api_errors_are_temporary_by_status(status: int, retryable: bool) -> None:
    assert ApiError("airbyte", "answer", status=status).retryable is retryable


# ---- what the clients raise, against httpx.MockTransport ----------------------------------------


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _answer(status: int) -> Handler:
    return lambda _request: httpx.Response(status, json={"message": "no", "detail": "no"})


def _airbyte(handler: Handler) -> AirbyteClient:
    def with_token(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/applications/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 900})
        return handler(request)

    return AirbyteClient(
        "http://airbyte.test/api/public/v1",
        client_id="id",
        client_secret="secret",
        transport=httpx.MockTransport(with_token),
        retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
    )


@pytest.mark.parametrize(
    ("handler", "retryable"),
    [(_answer(429), True), (_answer(503), True), (_timeout, True), (_answer(400), False), (_answer(404), False)],
    ids=["429", "503", "timeout", "400", "404"],
)
def test_the_airbyte_client_marks_what_is_worth_retrying(handler: Handler, retryable: bool) -> None:
    with pytest.raises(ApiError) as raised:
        _airbyte(handler).list_all("sources")
    assert raised.value.retryable is retryable


@pytest.mark.parametrize(
    ("handler", "retryable"),
    [(_answer(503), True), (_timeout, True), (_answer(404), False), (_answer(403), False)],
    ids=["503", "timeout", "404", "403"],
)
def test_the_superset_client_marks_what_is_worth_retrying(handler: Handler, retryable: bool) -> None:
    def routes(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/security/login":
            return httpx.Response(200, json={"access_token": "a", "refresh_token": "r"})
        return handler(request)

    client = SupersetClient(
        "http://superset.test",
        username="admin",
        password="pw",
        transport=httpx.MockTransport(routes),
        retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
    )
    with pytest.raises(ApiError) as raised:
        client.list_dashboards()
    assert raised.value.retryable is retryable


@pytest.mark.parametrize(
    ("handler", "retryable"),
    [(_answer(502), True), (_timeout, True), (_answer(400), False)],
    ids=["502", "timeout", "400"],
)
def test_the_dagster_client_marks_what_is_worth_retrying(handler: Handler, retryable: bool) -> None:
    with pytest.raises(RedactedError) as raised:
        DagsterClient(
            "http://dagster.test",
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
        ).location_statuses()
    assert raised.value.retryable is retryable


def test_the_kubernetes_client_marks_what_is_worth_retrying() -> None:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import MaxRetryError

    from reconciler.clients.kube.calls import KubeCalls, KubeError

    calls = KubeCalls.__new__(KubeCalls)

    def fail(error: Exception) -> Callable[[], None]:
        def call() -> None:
            raise error

        return call

    cases = [
        (ApiException(status=503, reason="Service Unavailable"), True),
        (ApiException(status=429, reason="Too Many Requests"), True),
        (MaxRetryError(None, "https://kube.test", "refused"), True),  # type: ignore[arg-type]
        (ApiException(status=403, reason="Forbidden"), False),
        (ApiException(status=404, reason="Not Found"), False),
    ]
    for error, retryable in cases:
        with pytest.raises(KubeError) as raised:
            calls._call("get deployment", fail(error))
        assert raised.value.retryable is retryable, error
