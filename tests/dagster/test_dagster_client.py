"""DagsterClient: against a real dagster-webserver (health of good and broken code locations, reloads)
and against httpx.MockTransport (the error paths a live server rarely shows)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.systems.workloads.dagster import DagsterClient, DagsterError, LocationStatus
from tests.testbeds.dagster_bed import BROKEN_LOCATION, GOOD_LOCATION, DagsterWebserver

# --- a real webserver --------------------------------------------------------------------------------


def by_name(statuses: list[LocationStatus]) -> dict[str, LocationStatus]:
    return {status.name: status for status in statuses}


def test_a_location_that_failed_to_import_is_unhealthy_although_loaded(dagster: DagsterClient) -> None:
    statuses = by_name(dagster.location_statuses())
    assert set(statuses) == {GOOD_LOCATION, BROKEN_LOCATION}

    good = statuses[GOOD_LOCATION]
    assert good == LocationStatus(GOOD_LOCATION, "LOADED", None, None) and good.healthy

    broken = statuses[BROKEN_LOCATION]
    assert broken.load_status == "LOADED"  # what loadStatus alone would call fine
    assert not broken.healthy
    assert broken.error is not None and "No module named 'analytics_models_not_installed'" in broken.error
    assert broken.error_class == "DagsterImportError"


def test_breaking_then_fixing_a_location_shows_in_the_health_gate(
    dagster: DagsterClient, dagster_server: DagsterWebserver
) -> None:
    dagster_server.break_location(GOOD_LOCATION)  # as if a bad image rolled out
    reloaded = dagster.reload_location(GOOD_LOCATION)
    assert not reloaded.healthy
    assert reloaded.error is not None and f"No module named 'missing_dependency_of_{GOOD_LOCATION}'" in reloaded.error
    settled = dagster.wait_until_loaded(GOOD_LOCATION, timeout_s=60, poll_s=0.5)
    assert settled.error == reloaded.error

    assert dagster_server.fix_location(GOOD_LOCATION)  # the rollback
    assert dagster.reload_location(GOOD_LOCATION).healthy
    assert dagster.wait_until_loaded(GOOD_LOCATION, timeout_s=60, poll_s=0.5).healthy


def test_reloading_an_unknown_location_is_a_dagster_error(dagster: DagsterClient) -> None:
    with pytest.raises(DagsterError, match=r"RepositoryLocationNotFound\): Location nope does not exist"):
        dagster.reload_location("nope")
    with pytest.raises(DagsterError, match="no code location 'nope'"):
        dagster.wait_until_loaded("nope", timeout_s=1)


def test_a_graphql_error_from_the_real_server_is_reported(dagster_server: DagsterWebserver) -> None:
    with DagsterClient(dagster_server.url) as client, pytest.raises(DagsterError, match="Cannot query field 'bogus'"):
        client._graphql("{ bogus }")


# --- MockTransport -------------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def entry(name: str, status: str = "LOADED", error: str | None = None) -> dict[str, Any]:
    outcome: dict[str, Any] = {"__typename": "RepositoryLocation"}
    if error is not None:
        outcome = {"__typename": "PythonError", "message": error, "className": "DagsterImportError"}
    return {"name": name, "loadStatus": status, "locationOrLoadError": None if status == "LOADING" else outcome}


def workspace(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"workspaceOrError": {"__typename": "Workspace", "locationEntries": list(entries)}}}


def mock(handler: Handler, token: str | None = None) -> DagsterClient:
    return DagsterClient("http://dagster.test/", token=token, transport=httpx.MockTransport(handler))


def test_statuses_parse_and_the_token_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=workspace(entry("a"), entry("b", error="boom\n"), entry("c", "LOADING")))

    statuses = by_name(mock(handler, token="t0k").location_statuses())
    assert statuses["a"].healthy
    assert (statuses["b"].error, statuses["b"].error_class) == ("boom", "DagsterImportError")
    assert statuses["c"] == LocationStatus("c", "LOADING") and not statuses["c"].healthy
    assert str(seen[0].url) == "http://dagster.test/graphql"
    assert seen[0].headers["authorization"] == "Bearer t0k"
    assert "locationOrLoadError" in json.loads(seen[0].content)["query"]


def test_wait_until_loaded_polls_while_loading() -> None:
    answers = iter([entry("a", "LOADING"), entry("a", "LOADING"), entry("a", error="bad import")])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=workspace(next(answers)))

    status = mock(handler).wait_until_loaded("a", timeout_s=5, poll_s=0.01)
    assert status.load_status == "LOADED" and status.error == "bad import"


def test_wait_until_loaded_times_out() -> None:
    client = mock(lambda request: httpx.Response(200, json=workspace(entry("a", "LOADING"))))
    with pytest.raises(DagsterError, match=r"still LOADING after 0\.05 s"):
        client.wait_until_loaded("a", timeout_s=0.05, poll_s=0.01)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "answered HTTP 502: <html>Bad Gateway</html>"),
        (httpx.Response(200, json={"data": None, "errors": [{"message": "nope"}]}), "GraphQL errors: nope"),
        (httpx.Response(400, json={"errors": [{"message": "syntax"}]}), "GraphQL errors: syntax"),
        (
            httpx.Response(200, json={"data": {"workspaceOrError": {"__typename": "PythonError", "message": "db"}}}),
            "could not load its workspace: db",
        ),
        (httpx.Response(200, text="not json"), "answered HTTP 200: not json"),
    ],
)
@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_http_and_graphql_failures_become_dagster_errors(response: httpx.Response, message: str) -> None:
    with pytest.raises(DagsterError, match=message.replace("(", r"\(")):
        mock(lambda request: response).location_statuses()


def test_unreachable_server_is_a_dagster_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(DagsterError, match="could not be reached: ConnectError"):
        mock(handler).reload_location("a")


def test_reload_answers_other_than_an_entry_are_errors() -> None:
    body = {"data": {"reloadRepositoryLocation": {"__typename": "ReloadNotSupported", "message": "not here"}}}
    with pytest.raises(DagsterError, match=r"reloading code location 'a' failed \(ReloadNotSupported\): not here"):
        mock(lambda request: httpx.Response(200, json=body)).reload_location("a")
