"""Core: one environment's desired Superset bundle = its spec selection + replicated dashboards, on its own databases.

Pure; sits between the loader (spec bundle, environment section) and the provider (which
fetches the replication source's live export and hands it in). Steps:

- `with_connections`: every database points at this environment's connection (URI from the
  environment file; a declared password shows as Superset's mask, the value travels apart).
- `select_dashboards`: which of the source's live dashboards a `replicate.dashboards` selector takes.
- `replicated`: the source's export rewritten onto this environment's databases; a database the
  mapping does not name is an error, so a replicated chart never queries the source's warehouse.
- `merge`: specs first; a replicated asset the specs already define (same uuid, or the same
  database / dataset / dashboard slug) is dropped and what referred to it is repointed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from reconciler.systems.superset.rules.assets import dataset_name, names_of
from reconciler.systems.superset.rules.bundle import (
    KINDS,
    PASSWORD_MASK,
    Asset,
    Bundle,
    BundleError,
    DatabaseTarget,
    rewrite_databases,
)
from reconciler.systems.superset.rules.bundle_model import repoint_filter_datasets
from reconciler.systems.superset.spec import DashboardSelector, DatabaseConnection


def masked_uri(connection: DatabaseConnection) -> str:
    """The URI as Superset shows it: with the mask where the password goes, when there is one."""
    uri = connection.sqlalchemy_uri
    if connection.password is None:
        return uri
    scheme, separator, rest = uri.partition("://")
    if not separator:
        return uri
    location, slash, path = rest.partition("/")
    user, at, host = location.rpartition("@")
    user = user.split(":", 1)[0] if at else ""
    return f"{scheme}://{user}:{PASSWORD_MASK}@{host}{slash}{path}"


def with_connections(bundle: Bundle, connections: Mapping[str, DatabaseConnection]) -> Bundle:
    """Each database of the bundle on this environment's connection (the loader made sure each is declared)."""
    targets = {
        asset.uuid: DatabaseTarget(sqlalchemy_uri=masked_uri(connections[asset.name]))
        for asset in bundle.of("databases")
        if asset.name in connections
    }
    return rewrite_databases(bundle, targets, require_all=False)


@dataclass(frozen=True)
class ListedDashboard:
    """A live dashboard as the source's listing shows it."""

    id: int
    slug: str | None
    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    """E-mail and full name of each owner."""


def select_dashboards(
    listed: Iterable[ListedDashboard], selector: Literal["all"] | DashboardSelector
) -> list[ListedDashboard]:
    """The dashboards a selector takes: all, or any matching a slug, a tag or an owner."""
    chosen = []
    for dashboard in listed:
        if selector == "all" or (
            (dashboard.slug is not None and dashboard.slug in selector.slugs)
            or set(dashboard.tags) & set(selector.tags)
            or set(dashboard.owners) & set(selector.owners)
        ):
            chosen.append(dashboard)
    return sorted(chosen, key=lambda d: d.id)


def replicated(
    source: Bundle, mapping: Mapping[str, str], connections: Mapping[str, DatabaseConnection], source_env: str
) -> Bundle:
    """The source's export on this environment's databases (source database name -> ours)."""
    targets: dict[str, DatabaseTarget] = {}
    for database in source.of("databases"):
        target = mapping.get(database.name)
        if target is None:
            raise BundleError(
                f"the dashboards replicated from {source_env} use database {database.name!r}, which "
                f"superset.replicate.databases does not map to a database of this environment"
            )
        targets[database.uuid] = DatabaseTarget(name=target, sqlalchemy_uri=masked_uri(connections[target]))
    return rewrite_databases(source, targets)


def _repoint(asset: Asset, databases: Mapping[str, str], datasets: Mapping[str, str]) -> Asset:
    """The asset with its references to dropped duplicates replaced by the kept assets' uuids."""
    content = copy.deepcopy(asset.content)
    if asset.kind == "datasets" and content.get("database_uuid") in databases:
        content["database_uuid"] = databases[content["database_uuid"]]
    if asset.kind == "charts" and content.get("dataset_uuid") in datasets:
        content["dataset_uuid"] = datasets[content["dataset_uuid"]]
    if asset.kind == "dashboards":
        repoint_filter_datasets(content.get("metadata"), datasets)
    return Asset(asset.kind, asset.uuid, asset.path, content)


def merge(primary: Bundle, secondary: Bundle) -> Bundle:
    """Both bundles' assets; where both define one asset, the primary's is kept."""
    assets = {kind: dict(primary.assets.get(kind, {})) for kind in KINDS}
    kept = names_of(primary)
    databases: dict[str, str] = {}
    datasets: dict[str, str] = {}
    by_name = {name: uuid for uuid, name in kept.databases.items()}
    for database in secondary.of("databases"):
        if database.uuid in assets["databases"]:
            continue
        if database.name in by_name:
            databases[database.uuid] = by_name[database.name]
        else:
            assets["databases"][database.uuid] = database
            by_name[database.name] = database.uuid
    names = {uuid: asset.name for uuid, asset in assets["databases"].items()}
    dataset_by_name = {name: uuid for uuid, name in kept.datasets.items()}
    for dataset in secondary.of("datasets"):
        dataset = _repoint(dataset, databases, datasets)
        home = names.get(str(dataset.content.get("database_uuid")), "?")
        name = dataset_name(home, dataset.content.get("schema"), dataset.name)
        if dataset.uuid in assets["datasets"]:
            continue
        if name in dataset_by_name:
            datasets[dataset.uuid] = dataset_by_name[name]
        else:
            assets["datasets"][dataset.uuid] = dataset
            dataset_by_name[name] = dataset.uuid
    for chart in secondary.of("charts"):
        if chart.uuid not in assets["charts"]:
            assets["charts"][chart.uuid] = _repoint(chart, databases, datasets)
    slugs = {asset.content.get("slug") for asset in primary.of("dashboards")} - {None}
    for dashboard in secondary.of("dashboards"):
        if dashboard.uuid not in assets["dashboards"] and dashboard.content.get("slug") not in slugs:
            assets["dashboards"][dashboard.uuid] = _repoint(dashboard, databases, datasets)
    return Bundle(assets, {})


def desired_bundle(
    specs: Bundle,
    connections: Mapping[str, DatabaseConnection],
    source: Bundle | None = None,
    mapping: Mapping[str, str] | None = None,
    source_env: str = "",
) -> Bundle:
    """This environment's desired assets: the spec selection, then what it replicates."""
    ours = with_connections(specs, connections)
    if source is None:
        return ours
    return merge(ours, replicated(source, mapping or {}, connections, source_env))
