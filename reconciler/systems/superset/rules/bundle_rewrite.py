"""Core, Superset assets: rewrite a bundle for another instance, before replication builds its import.

`rewrite_databases` points a bundle at another instance's databases (replication prod -> QA);
`rewrite_dataset_uuids` adopts a target's existing datasets. Both exist because an import that
brings a new UUID with an existing database name (or database+schema+table) does not create a
new row: it silently rewrites the existing row's UUID. Pure.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace

from reconciler.systems.superset.rules.bundle_model import (
    KINDS,
    Asset,
    Bundle,
    BundleError,
    repoint_filter_datasets,
    slugify,
)
from reconciler.systems.superset.rules.connection_secrets import strip_extra_secrets


@dataclass(frozen=True)
class DatabaseTarget:
    """What a source database becomes on the target instance; None keeps the source's value."""

    uuid: str | None = None
    name: str | None = None
    sqlalchemy_uri: str | None = None


def _with_asset(bundle: Bundle, old: Asset, new: Asset) -> Bundle:
    assets = {kind: dict(bundle.assets.get(kind, {})) for kind in KINDS}
    del assets[old.kind][old.uuid]
    if new.uuid in assets[new.kind]:
        raise BundleError(f"{new.kind} {new.uuid} is in the bundle twice after rewriting")
    assets[new.kind][new.uuid] = new
    return Bundle(assets, dict(bundle.other_files))


def rewrite_databases(bundle: Bundle, mapping: Mapping[str, DatabaseTarget], *, require_all: bool = True) -> Bundle:
    """Point the bundle's databases (keyed by uuid or name) at the target instance's.

    A target uuid should be the uuid of the target's existing database of that name, if it has one
    (else the import takes that row over and rewrites its uuid). Secrets in the source's `extra`
    (`engine_params.connect_args.password`) are left out. With `require_all`, a database the
    mapping does not name is an error: a replicated dashboard must never keep querying the source.
    """
    result = bundle
    for database in bundle.of("databases"):
        target = mapping.get(database.uuid) or mapping.get(database.name)
        if target is None:
            if require_all:
                raise BundleError(f"database {database.name!r} ({database.uuid}) has no target database")
            continue
        content = copy.deepcopy(database.content)
        new_uuid = target.uuid or database.uuid
        content["uuid"] = new_uuid
        if target.name:
            content["database_name"] = target.name
        if target.sqlalchemy_uri:
            content["sqlalchemy_uri"] = target.sqlalchemy_uri
        if content.get("extra") is not None:  # the source's secrets stay with the source
            content["extra"] = strip_extra_secrets(content["extra"])[0]
        path = f"databases/{slugify(str(content['database_name']))}.yaml"
        result = _with_asset(result, database, Asset("databases", new_uuid, path, content))
        if new_uuid != database.uuid:
            for dataset in result.of("datasets"):
                if dataset.content.get("database_uuid") == database.uuid:
                    moved = replace(dataset, content={**copy.deepcopy(dataset.content), "database_uuid": new_uuid})
                    result = _with_asset(result, dataset, moved)
    return result


def rewrite_dataset_uuids(bundle: Bundle, mapping: Mapping[str, str]) -> Bundle:
    """Give datasets the uuids of the target's datasets on the same table (source uuid -> target
    uuid), and repoint charts and native filters at them."""
    if not mapping:
        return bundle
    result = bundle
    for dataset in bundle.of("datasets"):
        if dataset.uuid in mapping:
            new = replace(
                dataset, uuid=mapping[dataset.uuid], content={**dataset.content, "uuid": mapping[dataset.uuid]}
            )
            result = _with_asset(result, dataset, new)
    for chart in result.of("charts"):
        if chart.content.get("dataset_uuid") in mapping:
            content = {**chart.content, "dataset_uuid": mapping[chart.content["dataset_uuid"]]}
            result = _with_asset(result, chart, replace(chart, content=content))
    for dashboard in result.of("dashboards"):
        content = copy.deepcopy(dashboard.content)
        if repoint_filter_datasets(content.get("metadata"), mapping):
            result = _with_asset(result, dashboard, replace(dashboard, content=content))
    return result
