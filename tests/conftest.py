"""Session fixtures shared by several suites: one real dagster-webserver (its own venv, installed on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.testbeds.dagster_bed import DagsterWebserver, start_dagster_webserver


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterWebserver]:
    server = start_dagster_webserver(tmp_path_factory.mktemp("dagster"))
    yield server
    server.stop()
