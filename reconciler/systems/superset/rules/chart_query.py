"""Core: a chart's query built from its own parameters, for verifying a chart with no saved query context.

Pure; rules/chart_batches.py calls it for a chart whose export holds no saved query context (a
chart created through the API, or imported without one), and the provider runs the query objects
through `POST /api/v1/chart/data`. It reads what Explore's query builders read: the
datasource, metrics (`metrics`, or `metric` for a big number), columns (`groupby`, `columns`,
`x_axis`; `all_columns` in raw mode), the WHERE and HAVING filters, time range and row limit.
A chart whose parameters say nothing to query cannot be checked; `UncheckableChart` says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

DEFAULT_ROW_LIMIT = 1000


class UncheckableChart(ValueError):
    """A chart whose own parameters give no query to run."""


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list) else [value]


def _columns(form_data: Mapping[str, Any]) -> list[Any]:
    if form_data.get("query_mode") == "raw":
        return _list(form_data.get("all_columns"))
    found: list[Any] = []
    for name in ("x_axis", "groupby", "columns", "series"):
        for column in _list(form_data.get(name)):
            if column not in found:
                found.append(column)
    return found


def _metrics(form_data: Mapping[str, Any]) -> list[Any]:
    if form_data.get("query_mode") == "raw":
        return []
    found: list[Any] = []
    for name in ("metrics", "metric", "percent_metrics"):
        for metric in _list(form_data.get(name)):
            if metric not in found:
                found.append(metric)
    return found


def _filters(form_data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Simple WHERE filters as query filters; SQL ones (and HAVING) as `extras`."""
    filters: list[dict[str, Any]] = []
    where: list[str] = []
    having: list[str] = []
    for adhoc in _list(form_data.get("adhoc_filters")):
        if not isinstance(adhoc, Mapping):
            continue
        clause = str(adhoc.get("clause") or "WHERE").upper()
        if adhoc.get("expressionType") == "SQL" and adhoc.get("sqlExpression"):
            (having if clause == "HAVING" else where).append(f"({adhoc['sqlExpression']})")
        elif adhoc.get("subject") and adhoc.get("operator"):
            entry = {"col": adhoc["subject"], "op": adhoc["operator"]}
            if "comparator" in adhoc:
                entry["val"] = adhoc["comparator"]
            filters.append(entry)
    return filters, {"where": " AND ".join(where), "having": " AND ".join(having)}


def query_context_from_params(chart: Mapping[str, Any]) -> dict[str, Any]:
    """The query context for `POST /api/v1/chart/data` from a chart as `GET /api/v1/chart/{id}` shows it
    (`params` as a JSON string, `datasource_id`, `datasource_type`)."""
    raw = chart.get("params")
    try:
        form_data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise UncheckableChart(f"its params are not JSON: {exc}") from exc
    if not isinstance(form_data, Mapping):
        raise UncheckableChart("it has no params")
    datasource_id, datasource_type = chart.get("datasource_id"), chart.get("datasource_type") or "table"
    if not isinstance(datasource_id, int):
        raise UncheckableChart("it has no dataset")
    columns, metrics = _columns(form_data), _metrics(form_data)
    if not columns and not metrics:
        raise UncheckableChart("its params name no metric and no column to query")
    filters, extras = _filters(form_data)
    query: dict[str, Any] = {
        "columns": columns,
        "metrics": metrics,
        "filters": filters,
        "extras": extras,
        "row_limit": int(form_data.get("row_limit") or DEFAULT_ROW_LIMIT),
        "time_range": str(form_data.get("time_range") or "No filter"),
    }
    if form_data.get("granularity_sqla"):
        query["granularity"] = form_data["granularity_sqla"]
    datasource = {"id": datasource_id, "type": datasource_type}
    return {
        "datasource": datasource,
        "force": True,
        "queries": [query],
        "form_data": {**form_data, "datasource": f"{datasource_id}__{datasource_type}"},
        "result_format": "json",
        "result_type": "full",
    }
