"""Verification against a real Superset: the charts of one dataset go in a few multi-query chart data
requests, and a chart whose query fails is still the one named.

One fresh Superset for the module (the fixture dashboards, plus more table charts on `sales`, each
with a query of its own: a row limit and a filter; one without a saved query context), so the
session's servers keep their chart counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.systems.superset.client import SupersetClient
from reconciler.systems.superset.provider import VERIFY_FIRST_BATCH
from reconciler.systems.superset.rules.verify import ChartToRun, Outcome
from tests.superset.conftest import client_for
from tests.superset.project import SupersetProject, superset_project
from tests.testbeds.superset_bed import SupersetInstance, start_superset_instances
from tests.testbeds.superset_fixtures import (
    CUSTOMERS,
    SALES,
    ChartSpec,
    FixtureIds,
    build_fixtures,
    form_data,
    query_context,
)

EXTRA = 8
BROKEN = "Sales rows (broken)"
NO_CONTEXT = "Sales rows (no saved query context)"


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupersetInstance]:
    started = start_superset_instances(("qa",), tmp_path_factory.mktemp("verify-batches"))["qa"]
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def client(instance: SupersetInstance) -> Iterator[SupersetClient]:
    with client_for(instance) as made:
        yield made


def add_table_chart(client: SupersetClient, dataset_id: int, name: str, index: int, saved: bool = True) -> int:
    """A table of sales by region with its own row limit and amount filter."""
    spec = ChartSpec(name, "table", SALES, ("region",))
    params = form_data(spec, dataset_id) | {"row_limit": 10 + index}
    fields = {"slice_name": name, "viz_type": "table", "datasource_id": dataset_id, "datasource_type": "table"}
    fields["params"] = json.dumps(params)
    if saved:
        context = query_context(spec, dataset_id)
        context["queries"][0] |= {"row_limit": 10 + index, "filters": [{"col": "amount", "op": ">=", "val": index}]}
        fields["query_context"] = json.dumps(context)
    return client.create_chart(fields)


@pytest.fixture(scope="module")
def fixtures(client: SupersetClient, instance: SupersetInstance) -> FixtureIds:
    made = build_fixtures(client, instance.warehouse_path)
    sales = made.dataset_ids[SALES]
    for index in range(EXTRA):
        add_table_chart(client, sales, f"Sales rows {index}", index)
    add_table_chart(client, sales, NO_CONTEXT, EXTRA, saved=False)
    return made


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, instance: SupersetInstance) -> SupersetProject:
    root: Path = tmp_path_factory.mktemp("verify-project")
    return superset_project(root, instance, instance, instance)


def charts_of(client: SupersetClient) -> list[ChartToRun]:
    return [ChartToRun(chart.uuid, chart.name, ()) for chart in client.list_charts()]


def count_chart_data_requests(client: SupersetClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The charts each chart data request ran (a saved query context's GET counts one)."""
    sent: list[int] = []
    query, saved = client.query_chart_data, client.chart_data

    def counted_query(context: Mapping[str, Any]) -> dict[str, Any]:
        sent.append(len(context["queries"]))
        return query(context)

    def counted_saved(chart_id: int, *, force: bool = False) -> dict[str, Any]:
        sent.append(1)
        return saved(chart_id, force=force)

    monkeypatch.setattr(client, "query_chart_data", counted_query)
    monkeypatch.setattr(client, "chart_data", counted_saved)
    return sent


def test_charts_of_one_dataset_share_requests_and_each_runs_its_own_query(
    fixtures: FixtureIds, project: SupersetProject, client: SupersetClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    charts = charts_of(client)
    assert len(charts) == 6 + EXTRA + 1
    with project.provider("staging") as (_, provider):
        sent = count_chart_data_requests(provider.client, monkeypatch)
        verification = provider.run_charts(charts)
    assert verification.ok, verification.failure_message()
    assert {result.chart.name for result in verification.results} == {chart.name for chart in charts}
    notes = {result.chart.name: result.detail for result in verification.results}
    assert notes[NO_CONTEXT] == "no saved query context: ran the query its params describe"
    assert notes["Sales rows 0"] == "" and notes["Customers by country"] == ""
    # the charts of one (dataset, viz type) share requests: the 10 sales tables go in two of
    # VERIFY_FIRST_BATCH (sent before any request has answered, so before a time per query is known);
    # the other five charts (a big number and a bar on each dataset, the customers table) one each
    assert sorted(sent) == [1, 1, 1, 1, 1, VERIFY_FIRST_BATCH, VERIFY_FIRST_BATCH], sent


def test_a_batch_with_one_broken_chart_names_exactly_that_chart(
    fixtures: FixtureIds, project: SupersetProject, client: SupersetClient
) -> None:
    sales = fixtures.dataset_ids[SALES]
    broken = add_table_chart(client, sales, BROKEN, 3)
    try:
        chart = client.get_chart(broken)
        context = json.loads(chart["query_context"])
        context["queries"][0]["columns"] = ["no_such_column"]
        client.update_chart(broken, {"query_context": json.dumps(context)})
        with project.provider("staging") as (_, provider):
            verification = provider.run_charts(charts_of(client))
        failed = verification.of(Outcome.FAILED)
        assert [result.chart.name for result in failed] == [BROKEN], verification.failure_message()
        assert "no_such_column" in failed[0].detail
        assert len(verification.of(Outcome.OK)) == 6 + EXTRA + 1
    finally:
        client.delete_chart(broken)


def test_a_saved_query_context_runs_on_the_dataset_the_chart_points_at_not_the_id_it_was_saved_with(
    fixtures: FixtureIds, project: SupersetProject, client: SupersetClient
) -> None:
    """An import keeps the source's dataset id inside the saved query context; the chart's own dataset counts."""
    chart_id = add_table_chart(client, fixtures.dataset_ids[SALES], "Sales rows (imported)", 2)
    try:
        chart = client.get_chart(chart_id)
        context = json.loads(chart["query_context"])
        context["datasource"] = {"id": fixtures.dataset_ids[CUSTOMERS], "type": "table"}  # no `region` there
        client.update_chart(chart_id, {"query_context": json.dumps(context)})
        with project.provider("staging") as (_, provider):
            verification = provider.run_charts([ChartToRun(chart["uuid"], "Sales rows (imported)", ())])
        assert verification.ok, verification.failure_message()
    finally:
        client.delete_chart(chart_id)
