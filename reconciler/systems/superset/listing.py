"""Superset provider, its first read: what one Superset holds, from its four list endpoints, by identity.

The provider matches desired assets against this (charts and dashboards by uuid, datasets and
databases by name) and takes this instance's integer ids from it for exports and deletes. Its
requests run on daemon threads (`in_background`): a plan that fails while an early listing waits
for a server that does not answer exits without waiting for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.background import in_background
from reconciler.systems.superset.client import SupersetClient
from reconciler.systems.superset.rules.assets import DASHBOARD, DATABASE, DATASET, dataset_name
from reconciler.systems.superset.rules.bundle import Bundle
from reconciler.systems.superset.rules.guards import LiveChart
from reconciler.systems.superset.rules.roles import LiveDataset


@dataclass
class Listing:
    """What one Superset holds, from its four list endpoints: ids and uuids by identity."""

    dashboards: dict[str, int] = field(default_factory=dict)
    slugs: dict[str, str] = field(default_factory=dict)
    charts: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Dataset name (`database.schema.table`) -> (id, uuid)."""
    databases: dict[str, tuple[int, str]] = field(default_factory=dict)
    dataset_rows: list[LiveDataset] = field(default_factory=list)
    chart_rows: list[LiveChart] = field(default_factory=list)
    """Every chart with its dataset's id, to find the charts a dataset's delete would break."""

    @classmethod
    def read(cls, client: SupersetClient) -> Listing:
        """The dashboards first (the first call signs in), then the other three lists at once."""
        listing = cls()
        for dashboard in client.list_dashboards():
            listing.dashboards[dashboard.uuid] = dashboard.id
            if dashboard.slug:
                listing.slugs[dashboard.slug] = dashboard.uuid
        charts, datasets, databases = (
            in_background(client.list_charts, "superset-list-charts"),
            in_background(client.list_datasets, "superset-list-datasets"),
            in_background(client.list_databases, "superset-list-databases"),
        )
        listing.charts = {chart.uuid: chart.id for chart in charts.result()}
        listing.chart_rows = [LiveChart(chart.id, chart.name, chart.dataset_id) for chart in charts.result()]
        for dataset in datasets.result():
            name = dataset_name(dataset.database_name, dataset.schema, dataset.table_name)
            listing.datasets[name] = (dataset.id, dataset.uuid)
            listing.dataset_rows.append(
                LiveDataset(dataset.id, dataset.database_name, dataset.schema, dataset.table_name)
            )
        listing.databases = {db.name: (db.id, db.uuid) for db in databases.result()}
        return listing

    def id_of(self, kind: str, uuid: str) -> int | None:
        """This instance's integer id of an asset, by uuid."""
        if kind == DASHBOARD:
            return self.dashboards.get(uuid)
        if kind in (DATASET, DATABASE):
            rows = self.datasets if kind == DATASET else self.databases
            return next((id_ for id_, live_uuid in rows.values() if live_uuid == uuid), None)
        return self.charts.get(uuid)

    def uuids(self, kind: str) -> dict[str, str]:
        """Name -> uuid of the datasets or databases."""
        rows = self.datasets if kind == DATASET else self.databases
        return {name: uuid for name, (_, uuid) in rows.items()}


def union(bundles: Iterable[Bundle]) -> Bundle:
    merged = Bundle()
    for bundle in bundles:
        for kind, assets in bundle.assets.items():
            merged.assets.setdefault(kind, {}).update(assets)
    return merged
