"""Verification's pacing against a slow warehouse: each chart data request is sized by the time per query
seen so far, so it stays inside the client's timeout; every chart still runs its own query and is named.

A stand-in client answers chart data requests and advances a fake clock by a fixed time per query (Superset
runs a request's queries one after another), so the sizes the provider chose are exact.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from reconciler.systems.superset import provider as provider_module
from reconciler.systems.superset.client import SupersetClient, SupersetError
from reconciler.systems.superset.loading import SupersetSelection
from reconciler.systems.superset.provider import VERIFY_BUDGET_SECONDS, SupersetProvider
from reconciler.systems.superset.rules.bundle import Bundle
from reconciler.systems.superset.rules.chart_batches import ChartQuery
from reconciler.systems.superset.rules.verify import ChartToRun, Outcome
from reconciler.systems.superset.spec import SupersetEnvironment

CLIENT_TIMEOUT = 30.0


class SlowWarehouse:
    """Chart data requests that take `per_query` seconds a query on a shared fake clock; a request that would
    take longer than the client's timeout fails as the client would (the server may still be running it)."""

    def __init__(self, per_query: float, broken: str | None = None) -> None:
        self.per_query, self.broken = per_query, broken
        self.now = 0.0
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def query_chart_data(self, context: dict[str, Any]) -> dict[str, Any]:
        queries = context["queries"]
        with self._lock:
            self.sizes.append(len(queries))
            self.now += self.per_query * len(queries)
        if self.per_query * len(queries) > CLIENT_TIMEOUT:
            raise SupersetError(f"POST /api/v1/chart/data: no answer within {CLIENT_TIMEOUT:.0f}s")
        if any(query.get("chart") == self.broken for query in queries):
            raise SupersetError("POST /api/v1/chart/data: 400: Error: no such column: amout")
        return {"result": [{"status": "success", "data": [{"n": 1}]} for _ in queries]}


def provider_for(warehouse: SlowWarehouse, charts: list[ChartToRun]) -> SupersetProvider:
    settings = SupersetEnvironment.model_validate(
        {"url": "http://superset.test", "auth": {"token": {"secretRef": {"env": "T"}}}}
    )
    made = SupersetProvider(
        lambda: cast(SupersetClient, warehouse), SupersetSelection(settings, Bundle(), (), ()), "qa"
    )
    made.clock = warehouse.clock
    runnable = [
        (chart, ChartQuery({"id": 1, "type": "table"}, ({"chart": chart.name, "row_limit": 10},), {}, False))
        for chart in charts
    ]

    def chart_queries(_charts: object) -> tuple[list[tuple[ChartToRun, ChartQuery]], dict[str, Any]]:
        return runnable, {}

    made._chart_queries = chart_queries  # type: ignore[method-assign,assignment]
    return made


@pytest.mark.parametrize(
    ("per_query", "sizes"),
    [
        (0.05, [5, 20, 20, 15]),  # 50 ms a query: as many as a request may hold
        (3.0, [5, *[3] * 18, 1]),  # 3 s a query: what fits in the 10 s budget
        (12.0, [5, *[1] * 5, *[1] * 55]),  # 12 s a query: the first request times out, its charts run alone
    ],
)
def test_each_request_is_sized_by_the_slowest_query_seen(
    per_query: float, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider_module, "VERIFY_CONCURRENCY", 1)  # one request at a time: the sizes are exact
    charts = [ChartToRun(f"uuid-{n}", f"Sales {n}", ()) for n in range(60)]
    warehouse = SlowWarehouse(per_query)
    verification = provider_for(warehouse, charts).run_charts(charts)
    assert verification.ok, verification.failure_message()
    assert [result.chart.name for result in verification.results] == [chart.name for chart in charts]
    assert warehouse.sizes == sizes


@pytest.mark.parametrize("per_query", [0.05, 3.0])
def test_four_requests_at_once_stay_inside_the_timeout_and_run_every_chart_once(per_query: float) -> None:
    charts = [ChartToRun(f"uuid-{n}", f"Sales {n}", ()) for n in range(60)]
    warehouse = SlowWarehouse(per_query)
    verification = provider_for(warehouse, charts).run_charts(charts)
    assert verification.ok, verification.failure_message()
    assert [result.chart.name for result in verification.results] == [chart.name for chart in charts]
    assert sum(warehouse.sizes) == len(charts)  # none timed out and ran again
    assert max(warehouse.sizes) * per_query <= VERIFY_BUDGET_SECONDS * 2


def test_a_broken_chart_in_a_paced_batch_is_the_one_named() -> None:
    charts = [ChartToRun(f"uuid-{n}", f"Sales {n}", ()) for n in range(12)]
    warehouse = SlowWarehouse(2.0, broken="Sales 7")
    verification = provider_for(warehouse, charts).run_charts(charts)
    failed = [result for result in verification.results if result.outcome is Outcome.FAILED]
    assert [result.chart.name for result in failed] == ["Sales 7"]
    assert "no such column" in failed[0].detail
