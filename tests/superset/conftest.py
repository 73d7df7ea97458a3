"""Fixtures for the Superset tests: a real "prod" and "qa" Superset, started once per session, side by side.

Only tests that ask for `superset_pair` (or a fixture built on it) start the servers; the
MockTransport and pure bundle tests run without them. Prod gets the dashboards from
`build_fixtures`; QA gets its own `warehouse` connection and a dashboard of its own.
`fresh_qas` starts two more, untouched, for one module's plan/apply flows.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from reconciler.systems.superset.client import SupersetClient
from tests.testbeds.superset_bed import SupersetInstance, start_superset_instances
from tests.testbeds.superset_fixtures import FixtureIds, QaBaseline, build_fixtures, build_qa_baseline


@dataclass(frozen=True)
class SupersetPair:
    prod: SupersetInstance
    qa: SupersetInstance


def client_for(instance: SupersetInstance) -> SupersetClient:
    return SupersetClient(instance.url, username=instance.username, password=instance.password)


@pytest.fixture(scope="session")
def superset_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupersetPair]:
    started = start_superset_instances(("prod", "qa"), tmp_path_factory.mktemp("superset"))
    try:
        yield SupersetPair(started["prod"], started["qa"])
    finally:
        for instance in started.values():
            instance.stop()


@pytest.fixture(scope="session")
def prod_client(superset_pair: SupersetPair) -> Iterator[SupersetClient]:
    with client_for(superset_pair.prod) as client:
        yield client


@pytest.fixture(scope="session")
def qa_client(superset_pair: SupersetPair) -> Iterator[SupersetClient]:
    with client_for(superset_pair.qa) as client:
        yield client


@pytest.fixture(scope="session")
def prod_fixtures(superset_pair: SupersetPair, prod_client: SupersetClient) -> FixtureIds:
    return build_fixtures(prod_client, superset_pair.prod.warehouse_path)


@pytest.fixture(scope="session")
def qa_baseline(superset_pair: SupersetPair, qa_client: SupersetClient) -> QaBaseline:
    return build_qa_baseline(qa_client, superset_pair.qa.warehouse_path)


@dataclass(frozen=True)
class FreshQas:
    """Two QA servers nobody has touched yet: one reconciled from specs, one replicating prod."""

    specs: SupersetInstance
    replica: SupersetInstance


@pytest.fixture(scope="module")
def fresh_qas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshQas]:
    """Started side by side for one test module (a few seconds), so its flows do not depend on what
    other modules did to the session's QA; both are named qa, so their warehouses hold QA's rows."""
    root = tmp_path_factory.mktemp("fresh-qa")
    started: list[SupersetInstance] = []
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(start_superset_instances, ("qa",), root / which) for which in ("specs", "replica")]
        for future in futures:
            try:
                started.append(future.result()["qa"])
            except BaseException as exc:
                failure = failure or exc
    try:
        if failure is not None:
            raise failure
        yield FreshQas(*started)
    finally:
        for instance in started:
            instance.stop()
