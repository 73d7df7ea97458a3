"""Fixtures: the example project on the Kubernetes stand-in, health-checked by a real dagster-webserver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.launch import running_standins
from reconciler.systems.workloads.dagster import DagsterClient
from tests.helpers import Project, copy_example
from tests.testbeds.dagster_bed import GOOD_LOCATION, DagsterWebserver

BROKEN_LINE = "    dagsterLocation: analytics\n"


def pin_broken_location(project: Project) -> None:
    """Health-check `analytics` again: the location the test bed breaks on purpose."""
    project.edit(
        "specs/workloads.yaml",
        "    repository: ghcr.io/acme/dagster-analytics\n",
        "    repository: ghcr.io/acme/dagster-analytics\n" + BROKEN_LINE,
    )


@pytest.fixture
def project(tmp_path: Path, dagster_server: DagsterWebserver) -> Iterator[Project]:
    root = copy_example(tmp_path)
    # The bed's `analytics` location fails on import by design; an environment that pins it is degraded (every
    # plan shows it, every apply gates it). Tests that want that put the line back (`pin_broken_location`).
    spec = root / "specs" / "workloads.yaml"
    spec.write_text(spec.read_text().replace(BROKEN_LINE, "", 1))
    with running_standins(root) as standins:
        environ = standins.environment()
        environ["DAGSTER_QA_URL"] = dagster_server.graphql_url
        environ["DAGSTER_PROD_URL"] = dagster_server.graphql_url
        yield Project(root, standins, environ, systems=("workloads",))
    if dagster_server.fix_location(GOOD_LOCATION):
        with DagsterClient(dagster_server.url, timeout=60.0) as client:
            client.reload_location(GOOD_LOCATION)
