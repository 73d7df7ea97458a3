"""What a user reads when something goes wrong: the server's cause, no traceback, no credentials."""

from __future__ import annotations

import socket

from tests.helpers import Project

CANARY = "Canary-Pass-9"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


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


def test_airbytes_cause_is_shown_when_it_refuses_a_connection(project: Project) -> None:
    project.edit("specs/airbyte/connections.yaml", "- name: payments", "- name: paymentz")
    result = project.run("apply", "--env", "qa", "--auto-approve")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "HTTP 400 bad-request: Invalid stream found. The list of valid streams include:" in result.output
    assert project.qa.stats.by_route.get("POST /connections") == 1


def test_a_create_failing_inside_the_server_is_looked_up_then_reported_not_retried(project: Project) -> None:
    from reconciler import engine

    with engine.open_session(project.root, "qa", project.environ, systems=["airbyte"]) as session:
        plan = engine.make_plan(session)
        project.qa.stats.reset()
        project.qa.set_faults(server_error=1)  # the very next request is the first create's POST
        report = engine.apply_plan(session, plan)
    assert not report.ok and "HTTP 500 unexpected-problem" in str(report.error)
    assert project.qa.stats.by_route.get("POST /destinations") == 1
    assert project.qa.stats.by_route.get("GET /destinations") == 1  # looked up by name before failing
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert "No changes." in project.run("plan", "--env", "qa").output
