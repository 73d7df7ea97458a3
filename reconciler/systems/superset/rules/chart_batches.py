"""Core: the charts a verification runs, as a few multi-query `POST /api/v1/chart/data` requests.

Pure; the Superset provider exports the charts to verify from the target (their saved query
contexts as the target holds them), builds each chart's `ChartQuery` here, sends the charts of
each of `groups` a few at a time and reads each chart's results back with `split_answer`. A chart data request
may carry several query objects of one datasource (`queries: [...]`); Superset 6.1 answers them
in order, one result each, but fails the whole request on the first query that fails (HTTP 400
naming no query), so the provider runs a failed batch again one chart at a time, and the chart
whose own request fails is the one named.

A chart runs its own query objects (filters, row limit, post-processing) on the dataset the
target's chart points at, with `force: true` so Superset's cache is bypassed. Charts share a
request only when they agree on the form-data fields Superset's QueryContextFactory reads while
building query objects (`FORM_DATA_READ`): the request carries one chart's form data for all.
`BatchSizer` sizes each next request from the time per query seen so far, so a request stays
well inside the client's timeout on a slow warehouse.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.systems.superset.rules.chart_query import UncheckableChart, query_context_from_params

FORM_DATA_READ = ("viz_type", "x_axis", "granularity_sqla", "tooltip_contents", "currency_format", "server_pagination")
"""What Superset 6.1's QueryContextFactory reads from a request's form data to build each query object
(granularity on a temporal x-axis, tooltip and currency columns, server pagination's row limit)."""


@dataclass(frozen=True)
class ChartQuery:
    """One chart's query objects and form data, to run on its dataset in the target."""

    datasource: dict[str, Any]
    queries: tuple[dict[str, Any], ...]
    form_data: dict[str, Any]
    from_params: bool
    """No saved query context: the query is the one the chart's params describe (`chart_query`)."""

    def key(self) -> str:
        """Charts with equal keys can share a request."""
        read = {name: self.form_data.get(name) for name in FORM_DATA_READ}
        return json.dumps([self.datasource, read], sort_keys=True, default=str)


def _saved_context(raw: Any) -> dict[str, Any] | None:
    try:
        context = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    if isinstance(context, dict) and isinstance(context.get("queries"), list) and context["queries"]:
        return context
    return None


def chart_query(content: Mapping[str, Any], dataset_id: int, dataset_type: str = "table") -> ChartQuery:
    """The query of a chart as an export holds it (`params`, `query_context`), on the target's dataset
    `dataset_id`: its saved query context's query objects, or, with none saved, the query its params
    describe (`UncheckableChart` when they describe none)."""
    datasource = {"id": dataset_id, "type": dataset_type}
    context = _saved_context(content.get("query_context"))
    if context is None:
        built = query_context_from_params(
            {"params": content.get("params"), "datasource_id": dataset_id, "datasource_type": dataset_type}
        )
        return ChartQuery(datasource, tuple(built["queries"]), dict(built["form_data"]), from_params=True)
    queries = []
    for query in context["queries"]:
        if not isinstance(query, dict):
            raise UncheckableChart("its saved query context holds a query that is not an object")
        queries.append({name: value for name, value in query.items() if name != "datasource"})
    params = content.get("params")
    form_data = context.get("form_data") if isinstance(context.get("form_data"), dict) else params
    form_data = dict(form_data) if isinstance(form_data, dict) else {}
    return ChartQuery(datasource, tuple(queries), form_data, from_params=False)


T = TypeVar("T")


def groups(items: Sequence[tuple[T, ChartQuery]]) -> list[list[tuple[T, ChartQuery]]]:
    """The charts grouped by `ChartQuery.key` (those that can share a request), each group and the groups in
    the charts' order; the provider cuts each group into requests of `BatchSizer.size()` charts."""
    grouped: dict[str, list[tuple[T, ChartQuery]]] = {}
    for item in items:
        grouped.setdefault(item[1].key(), []).append(item)
    return list(grouped.values())


class BatchSizer:
    """How many charts the next request of a group may carry: as many as the time per query seen so far fits
    in `budget` seconds (at least 1, at most `largest`), starting at `first` before any request has ended.

    A request runs its queries one after another, so on a slow warehouse a fixed batch would pass the client's
    timeout (and fall back to one request a chart after losing the whole wait); the slowest request seen sets
    the pace, a single request that outlived the budget brings batches down to one chart.
    """

    def __init__(self, budget: float, largest: int, first: int) -> None:
        if budget <= 0 or largest < 1 or not 1 <= first <= largest:
            raise ValueError("a batch budget needs a positive time and 1 <= first <= largest")
        self.budget, self.largest, self.first = budget, largest, first
        self._per_query: float | None = None
        self._lock = threading.Lock()  # requests end on the verifying threads

    def ended(self, queries: int, seconds: float) -> None:
        """A request of `queries` charts answered (or failed) after `seconds`."""
        per_query = max(seconds, 0.0) / max(queries, 1)
        with self._lock:
            self._per_query = per_query if self._per_query is None else max(self._per_query, per_query)

    def size(self) -> int:
        with self._lock:
            per_query = self._per_query
        if per_query is None:
            return self.first
        if per_query <= 0:
            return self.largest
        return max(1, min(self.largest, int(self.budget / per_query)))


def batch_context(queries: Sequence[ChartQuery]) -> dict[str, Any]:
    """The `POST /api/v1/chart/data` body running every chart's query objects, in order, bypassing the cache."""
    if not queries:
        raise ValueError("a chart data request needs at least one chart")
    first = queries[0]
    if any(query.key() != first.key() for query in queries):
        raise ValueError("charts that disagree on their datasource or query-building form data cannot share a request")
    return {
        "datasource": first.datasource,
        "force": True,
        "queries": [dict(query) for chart in queries for query in chart.queries],
        "form_data": {**first.form_data, "datasource": f"{first.datasource['id']}__{first.datasource['type']}"},
        "result_format": "json",
        "result_type": "full",
    }


def split_answer(answer: object, queries: Sequence[ChartQuery]) -> list[dict[str, Any]] | None:
    """Each chart's part of a batch's answer (`{"result": [...]}`, its own results in order), or None
    when the answer does not hold one result per query sent (then no result can be attributed)."""
    results = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != sum(len(query.queries) for query in queries):
        return None
    parts: list[dict[str, Any]] = []
    start = 0
    for query in queries:
        parts.append({"result": results[start : start + len(query.queries)]})
        start += len(query.queries)
    return parts
