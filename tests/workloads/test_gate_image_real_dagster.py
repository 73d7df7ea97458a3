"""The gate against a real dagster-webserver whose code servers say which image they run (DAGSTER_CURRENT_IMAGE):
a location serving another image than the one this apply rolled out fails the gate (issue 13, item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example
from tests.testbeds.dagster_bed import DagsterWebserver, start_dagster_webserver
from tests.workloads.conftest import BROKEN_LINE

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
