"""Core rules for Superset assets: a bundle -> resources keyed by readable names, in one comparable shape.

Pure. Both sides of a diff go through the same functions: the desired bundle (specs, or a
replicated live export, rewritten for the target) and the target's live export. That is what
keeps plans free of phantom changes: `normalise` drops instance ids, timestamps, key order and
masked passwords; references between assets become names (a chart names its dataset as
`warehouse.sales`, not by uuid), so a dataset whose uuid differs between environments still
compares equal; lists people edit item by item (native filters, columns, metrics) become
mappings, so a diff names the filter or column that changed.

Keys: `superset.database/<name>`, `superset.dataset/<database>.<schema>.<table>` (no schema part
when there is none), `superset.chart/<name-slug>_<uuid8>`, `superset.dashboard/<slug>`. Databases
and datasets are identified by name (as Superset's own import matches them); charts and
dashboards by uuid.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import DesiredResource, Path, ResourceKey, SecretSlot
from reconciler.systems.superset.rules.bundle import Asset, Bundle, normalise, slugify
from reconciler.systems.superset.rules.bundle_model import FILTERS
from reconciler.systems.superset.rules.bundle_model import filter_targets as targets_of

SYSTEM = "superset"
DATABASE, DATASET, CHART, DASHBOARD, ROLE = "database", "dataset", "chart", "dashboard", "role"
KIND_OF = {"databases": DATABASE, "datasets": DATASET, "charts": CHART, "dashboards": DASHBOARD}
FOLDER_OF = {kind: folder for folder, kind in KIND_OF.items()}
PASSWORD_PATH: Path = ("password",)
EMPTY: tuple[Any, ...] = (None, "", [], {})


def key(kind: str, name: str) -> ResourceKey:
    return ResourceKey(SYSTEM, kind, name)


def dataset_name(database: str, schema: str | None, table: str) -> str:
    """`warehouse.sales`, or `warehouse.public.sales` when the dataset has a schema."""
    return ".".join(part for part in (database, schema, table) if part)


def chart_nodes(dashboard: Asset) -> list[tuple[str, str]]:
    """The layout's chart nodes, in layout order: (node key, chart uuid)."""
    position = dashboard.content.get("position")
    found: list[tuple[str, str]] = []
    for name, node in position.items() if isinstance(position, dict) else ():
        if isinstance(node, dict) and node.get("type") == "CHART":
            uuid = (node.get("meta") or {}).get("uuid")
            if uuid:
                found.append((str(name), str(uuid)))
    return found


def chart_uuids(dashboard: Asset) -> list[str]:
    """The charts a dashboard's layout places, in layout order."""
    return list(dict.fromkeys(uuid for _, uuid in chart_nodes(dashboard)))


def filter_targets(dashboard: Asset) -> list[tuple[int, int, str]]:
    """The datasets the dashboard's native filters read: (filter index, target index, dataset uuid)."""
    return [
        (index, number, str(target["datasetUuid"]))
        for index, number, target in targets_of(dashboard.content.get("metadata"))
        if target.get("datasetUuid")
    ]


def filter_dataset_uuids(dashboard: Asset) -> list[str]:
    """Datasets the dashboard's native filters read their values from."""
    return list(dict.fromkeys(uuid for _, _, uuid in filter_targets(dashboard)))


@dataclass(frozen=True)
class Names:
    """What each asset of one bundle is called in resource keys, by uuid."""

    databases: dict[str, str]
    datasets: dict[str, str]
    charts: dict[str, str]
    dashboards: dict[str, str]

    def of(self, asset: Asset) -> str:
        return {"databases": self.databases, "datasets": self.datasets, "charts": self.charts}.get(
            asset.kind, self.dashboards
        )[asset.uuid]

    def key(self, asset: Asset) -> ResourceKey:
        return key(KIND_OF[asset.kind], self.of(asset))


def key_of_dashboard(content: Mapping[str, Any], uuid: str) -> str:
    """What environment files select a dashboard by: its slug exactly as written (`Revenue` is not
    `revenue`, unicode kept); a dashboard without a slug by its title, slugified."""
    slug = content.get("slug")
    if isinstance(slug, str) and slug:
        return slug
    return slugify(str(content.get("dashboard_title") or uuid))


def dashboard_key(asset: Asset) -> str:
    return key_of_dashboard(asset.content, asset.uuid)


def names_of(bundle: Bundle) -> Names:
    databases = {asset.uuid: asset.name for asset in bundle.of("databases")}
    datasets = {
        asset.uuid: dataset_name(
            databases.get(str(asset.content.get("database_uuid")), f"database-{asset.content.get('database_uuid')}"),
            asset.content.get("schema"),
            asset.name,
        )
        for asset in bundle.of("datasets")
    }
    charts = {asset.uuid: f"{slugify(asset.name)}_{asset.uuid[:8]}" for asset in bundle.of("charts")}
    wanted = {
        asset.uuid: slugify(str(asset.content.get("slug") or asset.content.get("dashboard_title") or asset.uuid))
        for asset in bundle.of("dashboards")
    }
    taken = list(wanted.values())
    dashboards = {uuid: name if taken.count(name) == 1 else f"{name}_{uuid[:8]}" for uuid, name in wanted.items()}
    return Names(databases, datasets, charts, dashboards)


# ---- the comparable shape --------------------------------------------------------------------


def _by(items: Any, name: str) -> Any:
    """A list of mappings as a mapping keyed by each item's `name` field (lists of other things stay)."""
    if not isinstance(items, list) or not all(isinstance(item, dict) and name in item for item in items):
        return items
    return {str(item[name]): item for item in items}


def _dashboard_metadata(metadata: Any, names: Names) -> Any:
    if not isinstance(metadata, dict):
        return metadata
    for _, _, target in targets_of(metadata):
        if "datasetUuid" in target:
            uuid = str(target.pop("datasetUuid"))
            target["dataset"] = names.datasets.get(uuid, uuid)
    if isinstance(metadata.get(FILTERS), list):
        metadata[FILTERS] = _by(metadata[FILTERS], "id")
    return metadata


def fields_of(asset: Asset, names: Names) -> dict[str, Any]:
    """The asset as the planner compares it (the same function for the desired and the live side)."""
    content = normalise(asset)
    content.pop("uuid", None)
    if asset.kind == "datasets":
        uuid = str(content.pop("database_uuid", ""))
        content["database"] = names.databases.get(uuid, uuid)
        content["columns"] = _by(content.get("columns"), "column_name")
        content["metrics"] = _by(content.get("metrics"), "metric_name")
    elif asset.kind == "charts":
        uuid = str(content.pop("dataset_uuid", ""))
        content["dataset"] = names.datasets.get(uuid, uuid)
    elif asset.kind == "dashboards":
        content["metadata"] = _dashboard_metadata(content.get("metadata"), names)
    return content


def depends_of(asset: Asset, names: Names) -> tuple[ResourceKey, ...]:
    """What must exist before the asset: chart -> dataset -> database; dashboard -> its charts and
    the datasets of its native filters."""
    found: list[ResourceKey] = []
    if asset.kind == "datasets":
        uuid = str(asset.content.get("database_uuid"))
        if uuid in names.databases:
            found.append(key(DATABASE, names.databases[uuid]))
    elif asset.kind == "charts":
        uuid = str(asset.content.get("dataset_uuid"))
        if uuid in names.datasets:
            found.append(key(DATASET, names.datasets[uuid]))
    elif asset.kind == "dashboards":
        found += [key(CHART, names.charts[uuid]) for uuid in chart_uuids(asset) if uuid in names.charts]
        found += [key(DATASET, names.datasets[u]) for u in filter_dataset_uuids(asset) if u in names.datasets]
    return tuple(dict.fromkeys(found))


# Collections people add entries to in the UI: compared on every key, so a chart placed on a
# dashboard, a filter, a column, a metric or a chart parameter added in QA shows up as a change.
# An asset's own fields are compared as declared, so defaults a server fills in are not drift.
COLLECTIONS: dict[str, tuple[Path, ...]] = {
    "datasets": (("columns",), ("metrics",)),
    "charts": (("params",),),
    "dashboards": (("position",), ("metadata", FILTERS)),
}


def exact_paths(folder: str, fields: Mapping[str, Any]) -> tuple[Path, ...]:
    def at(path: Path) -> Any:
        node: Any = fields
        for step in path:
            node = node.get(step) if isinstance(node, Mapping) else None
        return node

    return tuple(path for path in COLLECTIONS.get(folder, ()) if isinstance(at(path), Mapping))


def trim_live(desired: Any, live: Any) -> Any:
    """The live tree without empty entries the desired tree does not have (a newer Superset
    exporting `theme_uuid: null` is not drift); anything else is kept."""
    if not (isinstance(desired, Mapping) and isinstance(live, Mapping)):
        return live
    return {
        name: trim_live(desired[name], value) if name in desired else value
        for name, value in live.items()
        if name in desired or value not in EMPTY
    }


def desired_assets(bundle: Bundle, passwords: Mapping[str, SecretSlot]) -> list[DesiredResource]:
    """One resource per asset of the desired bundle; `passwords` holds each database's password slot by name."""
    names = names_of(bundle)
    resources: list[DesiredResource] = []
    for asset in bundle.all_assets():
        fields = fields_of(asset, names)
        slot = passwords.get(asset.name) if asset.kind == "databases" else None
        resources.append(
            DesiredResource(
                names.key(asset),
                fields,
                (slot,) if slot is not None else (),
                depends_of(asset, names),
                exact=exact_paths(asset.kind, fields),
            )
        )
    return resources


def identity(asset: Asset, names: Names) -> tuple[str, str]:
    """What an asset is matched by across instances: uuid for charts and dashboards, name otherwise."""
    if asset.kind in ("databases", "datasets"):
        return (asset.kind, names.of(asset))
    return (asset.kind, asset.uuid)


def index(bundle: Bundle) -> dict[tuple[str, str], Asset]:
    names = names_of(bundle)
    return {identity(asset, names): asset for asset in bundle.all_assets()}


def assets_by_key(bundle: Bundle) -> dict[ResourceKey, Asset]:
    names = names_of(bundle)
    return {names.key(asset): asset for asset in bundle.all_assets()}


def sub_bundle(bundle: Bundle, uuids: Iterable[str]) -> Bundle:
    """The assets of `bundle` whose uuid is in `uuids` (kinds kept apart)."""
    wanted = set(uuids)
    return Bundle(
        {
            folder: {uuid: asset for uuid, asset in bundle.assets.get(folder, {}).items() if uuid in wanted}
            for folder in FOLDER_OF.values()
        }
    )


def with_content(asset: Asset, **changes: Any) -> Asset:
    content = copy.deepcopy(asset.content)
    content.update(changes)
    return Asset(asset.kind, asset.uuid, asset.path, content)
