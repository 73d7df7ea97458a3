"""Test bed, after superset_bed: QA's own baseline; prod's dashboards come from the sandbox's builder.

`build_fixtures` (in reconciler.sandbox.superset_dashboards, re-exported here) makes what a team
would build by hand in prod's UI; `build_qa_baseline` gives a QA a connection and a dashboard of
its own before anything is replicated onto it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox.superset_dashboards import (
    CHARTS,
    CUSTOMERS,
    CUSTOMERS_SQL,
    DASHBOARDS,
    METRICS,
    SALES,
    ChartSpec,
    DashboardSpec,
    FixtureIds,
    add_metric,
    build_fixtures,
    form_data,
    query_context,
)
from reconciler.systems.superset.client import SupersetClient

__all__ = [
    "CHARTS",
    "CUSTOMERS",
    "CUSTOMERS_SQL",
    "DASHBOARDS",
    "METRICS",
    "SALES",
    "ChartSpec",
    "DashboardSpec",
    "FixtureIds",
    "QaBaseline",
    "add_metric",
    "build_fixtures",
    "build_qa_baseline",
    "form_data",
    "query_context",
]


@dataclass(frozen=True)
class QaBaseline:
    """What QA has before anything is replicated: its own `warehouse` connection and a dashboard."""

    database_id: int
    database_uuid: str
    dashboard_id: int


def build_qa_baseline(client: SupersetClient, warehouse_path: Path, database_name: str = "warehouse") -> QaBaseline:
    """QA's own connection to its warehouse (same name as prod's, another uuid) and a QA-only
    dataset, chart and dashboard, so QA's integer ids differ from prod's."""
    database_id = client.create_database(database_name, f"sqlite:///{warehouse_path}", expose_in_sqllab=True)
    database_uuid = str(client.get_database(database_id)["uuid"])
    dataset_id = client.create_dataset(database_id, "qa_scratch", sql="SELECT region, amount FROM sales")
    dashboard_id = client.create_dashboard({"dashboard_title": "QA scratch", "slug": "qa-scratch"})
    chart = ChartSpec("QA scratch rows", "table", SALES, ("region",))
    params = form_data(chart, dataset_id) | {"metrics": ["count"]}
    client.create_chart(
        {
            "slice_name": chart.name,
            "viz_type": chart.viz_type,
            "datasource_id": dataset_id,
            "datasource_type": "table",
            "params": json.dumps(params),
            "dashboards": [dashboard_id],
        }
    )
    return QaBaseline(database_id, database_uuid, dashboard_id)
