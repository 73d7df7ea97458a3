"""Fixtures: one real dagster-webserver per test session (its own venv, installed on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.clients.dagster import DagsterClient
from tests.testbeds.dagster_bed import GOOD_LOCATION, DagsterWebserver, start_dagster_webserver


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterWebserver]:
    server = start_dagster_webserver(tmp_path_factory.mktemp("dagster"))
    yield server
    server.stop()


@pytest.fixture
def dagster(dagster_server: DagsterWebserver) -> Iterator[DagsterClient]:
    """A client of the shared webserver; the good location is good again after each test."""
    with DagsterClient(dagster_server.url, timeout=60.0) as dagster_client:
        yield dagster_client
        if dagster_server.fix_location(GOOD_LOCATION):
            dagster_client.reload_location(GOOD_LOCATION)
