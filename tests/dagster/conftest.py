"""Fixtures: a client of the session's real dagster-webserver (`dagster_server`, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.systems.workloads.dagster import DagsterClient
from tests.testbeds.dagster_bed import GOOD_LOCATION, DagsterWebserver


@pytest.fixture
def dagster(dagster_server: DagsterWebserver) -> Iterator[DagsterClient]:
    """A client of the shared webserver; the good location is good again after each test."""
    with DagsterClient(dagster_server.url, timeout=60.0) as dagster_client:
        yield dagster_client
        if dagster_server.fix_location(GOOD_LOCATION):
            dagster_client.reload_location(GOOD_LOCATION)
