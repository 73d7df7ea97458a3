"""The gate and the plan against a real dagster-webserver: a location serving another image than the one this apply
rolled out fails the gate (its code servers say which image they run: DAGSTER_CURRENT_IMAGE), and a location that
fails with the pinned image is degraded in plan and health alike (issue 13, items 1 and 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example
from tests.testbeds.dagster_bed import DagsterWebserver, start_dagster_webserver
from tests.workloads.conftest import BROKEN_LINE, pin_broken_location

OLD, NEW = "ghcr.io/acme/dagster-ingestion:2026.11.18", "ghcr.io/acme/dagster-ingestion:2026.11.20"


@pytest.fixture(scope="module")
def stale_dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterWebserver]:
    """A webserver whose code server still runs the old image, whatever Kubernetes says (a stale Service, a
    second Deployment answering for the location, an image someone else rolled out)."""
    server = start_dagster_webserver(tmp_path_factory.mktemp("stale-dagster"), ("ingestion",), current_image=OLD)
    yield server
    server.stop()


@pytest.mark.slow
def test_a_location_serving_another_image_fails_the_gate_and_the_component_is_rolled_back(
    tmp_path: Path, stale_dagster: DagsterWebserver
) -> None:
    root = copy_example(tmp_path)
    spec = root / "specs" / "workloads.yaml"
    spec.write_text(spec.read_text().replace(BROKEN_LINE, "", 1))  # only ingestion is a location here
    with running_standins(root) as standins:
        environ = standins.environment() | {"DAGSTER_QA_URL": stale_dagster.graphql_url}
        project = Project(root, standins, environ, systems=("workloads",))
        applied = project.run("apply", "--env", "qa", "--auto-approve")
        assert applied.exit_code == 1, applied.output
        assert f"code location ingestion serves {OLD}, not {NEW}, the image this apply rolled out" in applied.output
        assert f"rolled back to {OLD}" in applied.output


def test_a_location_failing_with_its_pinned_image_is_degraded_in_plan_and_health_and_apply_says_so(
    project: Project,
) -> None:
    pin_broken_location(project)  # analytics fails to load in the bed, with the very image qa pins
    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert "~ update workloads.image/analytics@" in plan.output
    assert 'health: "degraded: code location analytics fails to load' in plan.output
    health = project.run("health", "--env", "qa")
    assert health.exit_code == 1 and "analytics" in health.output and "FAILED" in health.output

    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 1, applied.output
    assert "code location analytics failed to load" in applied.output
    assert "nothing to roll back to" in applied.output and "Traceback" not in applied.output
    assert 'health: "degraded: code location analytics' in project.run("plan", "--env", "qa").output
