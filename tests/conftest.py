"""Session fixtures shared by several suites (one real dagster-webserver), and the markers of the slow group.

A test that needs a real server (Superset or dagster-webserver, each installed in a venv of its own on first use)
is marked `slow` by the fixtures it asks for, so `make check` (`pytest -m "not slow"`) runs everything else
without installing either; `make test` and CI run the whole suite. Every test runs with the loader checking that
nothing changed an environment it reuses (`LoadedCache.verify_hits`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.spec.loader import LOADED
from tests.testbeds.dagster_bed import DagsterWebserver, start_dagster_webserver

LOADED.verify_hits = True  # every environment reused from the cache is compared with a fresh load of its inputs

REAL_SERVER_FIXTURES = frozenset({"dagster_server", "superset_pair", "fresh_qas"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that starts (or shares) a real Superset or Dagster server."""
    for item in items:
        if REAL_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterWebserver]:
    server = start_dagster_webserver(tmp_path_factory.mktemp("dagster"))
    yield server
    server.stop()
