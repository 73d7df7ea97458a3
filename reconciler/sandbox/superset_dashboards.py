"""Sandbox, after superset.py: builds dashboards, charts, datasets and a database on a Superset through its API.

The demo's prod and the tests' prod get them. `build_fixtures(client, warehouse_path)` makes what a
team would build by hand in the UI:
- a database `warehouse` on the instance's SQLite warehouse file;
- a physical dataset `sales` (metric `total_amount`) and a virtual one `customers_by_country`
  (SQL over `customers`, metric `customer_count`);
- three dashboards (`sales-overview`, `customer-health`, `executive-summary`), each with charts
  (table, big number, bar) that carry a saved `query_context`, a layout placing every chart, and
  native filters; `executive-summary` shares one chart with each of the other two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.systems.superset.client import SupersetClient

SALES = "sales"
CUSTOMERS = "customers_by_country"
CUSTOMERS_SQL = "SELECT id, name, country, signup_date FROM customers"
METRICS = {SALES: ("total_amount", "SUM(amount)"), CUSTOMERS: ("customer_count", "COUNT(DISTINCT id)")}


@dataclass(frozen=True)
class ChartSpec:
    name: str
    viz_type: str
    dataset: str
    columns: tuple[str, ...] = ()
    width: int = 3  # a row holds 12 columns: 6 + 3 + 3


@dataclass(frozen=True)
class DashboardSpec:
    slug: str
    title: str
    charts: tuple[str, ...]
    filter_dataset: str
    filter_column: str


CHARTS = (
    ChartSpec("Sales by region", "table", SALES, ("region",), width=6),
    ChartSpec("Total sales", "big_number_total", SALES, width=3),
    ChartSpec("Sales by product", "echarts_timeseries_bar", SALES, ("product",)),
    ChartSpec("Customers by country", "table", CUSTOMERS, ("country",), width=6),
    ChartSpec("Customer count", "big_number_total", CUSTOMERS, width=3),
    ChartSpec("Customers per country (bar)", "echarts_timeseries_bar", CUSTOMERS, ("country",)),
)
DASHBOARDS = (
    DashboardSpec(
        "sales-overview", "Sales overview", ("Sales by region", "Total sales", "Sales by product"), SALES, "region"
    ),
    DashboardSpec(
        "customer-health",
        "Customer health",
        ("Customers by country", "Customer count", "Customers per country (bar)"),
        CUSTOMERS,
        "country",
    ),
    DashboardSpec("executive-summary", "Executive summary", ("Total sales", "Customer count"), SALES, "product"),
)


@dataclass(frozen=True)
class FixtureIds:
    """The ids (on the instance they were built on) of everything `build_fixtures` made."""

    database_id: int
    database_uuid: str
    dataset_ids: dict[str, int] = field(default_factory=dict)
    dashboard_ids: dict[str, int] = field(default_factory=dict)
    chart_ids: dict[str, int] = field(default_factory=dict)


def form_data(chart: ChartSpec, dataset_id: int) -> dict[str, Any]:
    """The chart's `params`, as the Explore view saves them."""
    metric = METRICS[chart.dataset][0]
    params: dict[str, Any] = {"datasource": f"{dataset_id}__table", "viz_type": chart.viz_type, "adhoc_filters": []}
    if chart.viz_type == "table":
        params |= {"query_mode": "aggregate", "groupby": list(chart.columns), "metrics": [metric], "row_limit": 1000}
    elif chart.viz_type == "big_number_total":
        params |= {"metric": metric, "subheader": "", "y_axis_format": "SMART_NUMBER"}
    else:
        params |= {"x_axis": chart.columns[0], "metrics": [metric], "groupby": [], "row_limit": 1000}
    return params


def query_context(chart: ChartSpec, dataset_id: int) -> dict[str, Any]:
    """A saved query context, so `GET /api/v1/chart/{id}/data/` can run the chart."""
    metric = METRICS[chart.dataset][0]
    query: dict[str, Any] = {
        "columns": list(chart.columns),
        "metrics": [metric],
        "filters": [],
        "extras": {"having": "", "where": ""},
        "orderby": [[metric, False]] if chart.columns else [],
        "row_limit": 1000,
        "annotation_layers": [],
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": form_data(chart, dataset_id),
        "result_format": "json",
        "result_type": "full",
    }


def position(spec: DashboardSpec, chart_ids: dict[str, int], chart_uuids: dict[str, str]) -> dict[str, Any]:
    """A v2 layout: a header and one row holding every chart of the dashboard.

    Chart nodes carry the chart's uuid as the UI saves them: an export treats a chart node without
    one as missing from the layout and appends the chart again in a row with a random id.
    """
    row = "ROW-main"
    layout: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [row], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": spec.title}},
        row: {
            "type": "ROW",
            "id": row,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        },
    }
    widths = {chart.name: chart.width for chart in CHARTS}
    for index, name in enumerate(spec.charts):
        node = f"CHART-{spec.slug}-{index}"
        layout[row]["children"].append(node)
        layout[node] = {
            "type": "CHART",
            "id": node,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID", row],
            "meta": {
                "chartId": chart_ids[name],
                "uuid": chart_uuids[name],
                "width": widths[name],
                "height": 50,
                "sliceName": name,
            },
        }
    return layout


def metadata(spec: DashboardSpec, chart_ids: dict[str, int], dataset_ids: dict[str, int]) -> dict[str, Any]:
    """Dashboard json_metadata with one native select filter scoped to the whole dashboard."""
    native_filter = {
        "id": f"NATIVE_FILTER-{spec.slug}-{spec.filter_column}",
        "name": spec.filter_column.title(),
        "filterType": "filter_select",
        "type": "NATIVE_FILTER",
        "targets": [{"datasetId": dataset_ids[spec.filter_dataset], "column": {"name": spec.filter_column}}],
        "controlValues": {"enableEmptyFilter": False, "multiSelect": True, "searchAllOptions": False},
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "cascadeParentIds": [],
        "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
        "chartsInScope": sorted(chart_ids[name] for name in spec.charts),
        "tabsInScope": [],
        "description": "",
    }
    return {
        "native_filter_configuration": [native_filter],
        "color_scheme": "supersetColors",
        "refresh_frequency": 0,
        "timed_refresh_immune_slices": [],
        "expanded_slices": {},
        "label_colors": {},
        "cross_filters_enabled": True,
    }


def add_metric(client: SupersetClient, dataset_id: int, name: str, expression: str) -> None:
    """Add a saved metric, keeping the ones the dataset already has (PUT replaces the list)."""
    existing = client.get_dataset(dataset_id).get("metrics") or []
    kept = [{"id": m["id"], "metric_name": m["metric_name"], "expression": m["expression"]} for m in existing]
    client.update_dataset(dataset_id, {"metrics": [*kept, {"metric_name": name, "expression": expression}]})


def build_fixtures(client: SupersetClient, warehouse_path: Path, database_name: str = "warehouse") -> FixtureIds:
    """Build the database, datasets, charts and dashboards described above; returns their ids."""
    database_id = client.create_database(database_name, f"sqlite:///{warehouse_path}", expose_in_sqllab=True)
    database_uuid = str(client.get_database(database_id)["uuid"])
    dataset_ids = {
        SALES: client.create_dataset(database_id, SALES),
        CUSTOMERS: client.create_dataset(database_id, CUSTOMERS, sql=CUSTOMERS_SQL),
    }
    for dataset, (metric, expression) in METRICS.items():
        add_metric(client, dataset_ids[dataset], metric, expression)

    dashboard_ids = {
        spec.slug: client.create_dashboard({"dashboard_title": spec.title, "slug": spec.slug, "published": True})
        for spec in DASHBOARDS
    }
    chart_ids: dict[str, int] = {}
    for chart in CHARTS:
        dataset_id = dataset_ids[chart.dataset]
        on = [dashboard_ids[spec.slug] for spec in DASHBOARDS if chart.name in spec.charts]
        chart_ids[chart.name] = client.create_chart(
            {
                "slice_name": chart.name,
                "viz_type": chart.viz_type,
                "datasource_id": dataset_id,
                "datasource_type": "table",
                "params": json.dumps(form_data(chart, dataset_id)),
                "query_context": json.dumps(query_context(chart, dataset_id)),
                "query_context_generation": True,
                "dashboards": on,
            }
        )
    chart_uuids = {chart.name: chart.uuid for chart in client.list_charts() if chart.id in chart_ids.values()}
    for spec in DASHBOARDS:
        client.update_dashboard(
            dashboard_ids[spec.slug],
            {
                "position_json": json.dumps(position(spec, chart_ids, chart_uuids)),
                "json_metadata": json.dumps(metadata(spec, chart_ids, dataset_ids)),
            },
        )
    return FixtureIds(database_id, database_uuid, dataset_ids, dashboard_ids, chart_ids)
