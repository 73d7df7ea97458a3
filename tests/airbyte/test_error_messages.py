"""What a user reads when something goes wrong: the server's cause, no traceback, no credentials."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.sandbox.airbyte_connections import ConnectionHandlers
from reconciler.sandbox.airbyte_problems import Problem
from reconciler.sandbox.airbyte_requests import request_body
from reconciler.sandbox.http_util import JsonHttpServer, Request, Response, json_response
from tests.helpers import Project

CANARY = "Canary-Pass-9"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_credentials_in_a_url_never_reach_an_error_message(project: Project) -> None:
    port = closed_port()
    unreachable = project.run("plan", "--env", "qa", AIRBYTE_QA_URL=f"http://admin:{CANARY}@127.0.0.1:{port}/api/v1")
    assert unreachable.exit_code == 1
    assert "Error: airbyte: cannot reach http://admin:***@127.0.0.1" in unreachable.output
    bad_scheme = project.run("plan", "--env", "qa", AIRBYTE_QA_URL=f"htp://{CANARY}@airbyte.internal/api/v1")
    assert bad_scheme.exit_code == 1 and "htp://***@airbyte.internal" in bad_scheme.output

    project.systems = ()
    dagster = project.run("health", "--env", "qa", DAGSTER_QA_URL=f"http://ops:{CANARY}@127.0.0.1:{port}/graphql")
    assert dagster.exit_code == 1 and "http://ops:***@127.0.0.1" in dagster.output
    for result in (unreachable, bad_scheme, dagster):
        assert CANARY not in result.output and "Traceback" not in result.output


def test_airbytes_cause_is_shown_when_it_refuses_a_connection(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[tuple[str, int]] = []  # (connection name, status) of every POST /connections the stand-in answered
    create = ConnectionHandlers.create_connection

    def recording(handlers: ConnectionHandlers, request: Request) -> Response:
        name = str(request_body(request).get("name"))
        try:
            response = create(handlers, request)
        except Problem as problem:
            posted.append((name, problem.response().status))
            raise
        posted.append((name, response.status))
        return response

    monkeypatch.setattr(ConnectionHandlers, "create_connection", recording)
    project.edit("specs/airbyte/connections.yaml", "- name: payments", "- name: paymentz")
    result = project.run("apply", "--env", "qa", "--auto-approve")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "HTTP 400 bad-request: Invalid stream found. The list of valid streams include:" in result.output
    refused = [name for name, status in posted if status == 400]
    assert len(refused) == 1  # other connections' creates may run beside it (--parallelism)
    assert [name for name, _ in posted].count(refused[0]) == 1  # posted once, never again


def test_a_create_failing_inside_the_server_is_looked_up_then_reported_not_retried(project: Project) -> None:
    from reconciler import service

    with service.open_session(project.root, "qa", project.environ, systems=["airbyte"]) as session:
        plan = service.make_plan(session)
        project.qa.stats.reset()
        project.qa.set_faults(server_error=1)  # the very next request is the first create's POST
        report = service.apply_plan(session, plan)
    assert not report.ok and "HTTP 500 unexpected-problem" in str(report.error)
    assert project.qa.stats.by_route.get("POST /destinations") == 1
    assert project.qa.stats.by_route.get("GET /destinations") == 1  # looked up by name before failing
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert "No changes." in project.run("plan", "--env", "qa").output


def odd_airbyte(sources: Callable[[Request], Any], token: Any = None) -> JsonHttpServer:
    """A server speaking Airbyte's routes that answers `/sources` with `sources(request)`."""

    def handle(request: Request) -> Response:
        path = request.path.split("/api/public/v1", 1)[-1]
        if path == "/applications/token":
            return json_response(200, token if token is not None else {"access_token": "t", "expires_in": 900})
        if path == "/workspaces":
            first = request.first("offset") in (None, "0")
            return json_response(200, {"data": [{"workspaceId": "w1", "name": "Default Workspace"}] if first else []})
        if path == "/sources":
            return json_response(200, sources(request))
        return json_response(200, {"data": []})

    server = JsonHttpServer(handle)
    server.start()
    return server


def same_page_forever(request: Request) -> dict[str, Any]:
    """The same full page whatever `offset` says (until offset 2000, so that a regression fails, not hangs)."""
    if int(request.first("offset") or 0) >= 2000:
        return {"data": []}
    return {"data": [{"sourceId": f"s{i}", "name": f"s{i}", "configuration": {}} for i in range(100)]}


def once(answer: Any) -> Callable[[Request], Any]:
    """`answer` for the first page, then an empty page."""
    return lambda request: answer if request.first("offset") in (None, "0") else {"data": []}


@pytest.mark.parametrize(
    ("sources", "token", "message"),
    [
        (same_page_forever, None, "GET /sources: the page at offset 100 repeats objects already listed"),
        (once({"data": "oops"}), None, "GET /sources: `data` is a string, expected a list of objects"),
        (once({"data": [{"name": "pg"}]}), None, "GET /sources (offset 0): an object without its sourceId"),
        (once([{"sourceId": "s1"}]), None, "GET /sources: expected a JSON object, got a list"),
        (once({"data": []}), {"token": "t"}, "POST /applications/token: the answer has no access_token"),
    ],
)
def test_a_server_answering_oddly_gets_an_error_naming_the_call_not_a_traceback_or_a_hang(
    project: Project, sources: Callable[[Request], Any], token: Any, message: str
) -> None:
    server = odd_airbyte(sources, token)
    try:
        result = project.run("plan", "--env", "qa", AIRBYTE_QA_URL=f"{server.origin}/api/public/v1")
    finally:
        server.stop()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: airbyte: {message}" in result.output
