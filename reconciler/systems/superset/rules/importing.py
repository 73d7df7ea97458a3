"""Core: which assets one import carries, under which uuids, with which passwords; apply's pure half.

Pure; used by the Superset provider right before it calls `/api/v1/assets/import/`.

- `closure(bundle, uuids)`: the assets plus everything they need (a dashboard its charts and
  filter datasets, a chart its dataset, a dataset its database). Superset's assets import
  resolves references only inside the bundle, and a dashboard imported without one of its
  charts loses that chart.
- `adopt_live_uuids`: a database or dataset the target already has (by name) keeps the target's
  uuid. Importing another uuid under an existing name does not add a row, it rewrites the
  existing row's uuid (the UUID trap), which would break every other bundle pointing at it.
- `import_request`: the ZIP and the `passwords` form field, keyed by database file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from reconciler.systems.superset.rules.assets import chart_uuids, filter_dataset_uuids, names_of, sub_bundle
from reconciler.systems.superset.rules.bundle import (
    Bundle,
    DatabaseTarget,
    build_import_zip,
    database_file,
    rewrite_databases,
    rewrite_dataset_uuids,
)


def needs(bundle: Bundle, uuid: str) -> list[str]:
    """What one asset refers to directly."""
    for kind in ("dashboards", "charts", "datasets"):
        asset = bundle.assets.get(kind, {}).get(uuid)
        if asset is None:
            continue
        if kind == "dashboards":
            return chart_uuids(asset) + filter_dataset_uuids(asset)
        reference = asset.content.get("dataset_uuid" if kind == "charts" else "database_uuid")
        return [str(reference)] if reference else []
    return []


def closure(bundle: Bundle, uuids: Iterable[str]) -> set[str]:
    """The assets and, transitively, everything they refer to that the bundle holds."""
    known = {asset.uuid for asset in bundle.all_assets()}
    found: set[str] = set()
    todo = [uuid for uuid in uuids if uuid in known]
    while todo:
        uuid = todo.pop()
        if uuid in found:
            continue
        found.add(uuid)
        todo += [needed for needed in needs(bundle, uuid) if needed in known and needed not in found]
    return found


def adopt_live_uuids(bundle: Bundle, databases: Mapping[str, str], datasets: Mapping[str, str]) -> Bundle:
    """Give databases (by name) and datasets (by `database.schema.table`) the target's existing uuids."""
    targets = {
        asset.uuid: DatabaseTarget(uuid=databases[asset.name])
        for asset in bundle.of("databases")
        if asset.name in databases and databases[asset.name] != asset.uuid
    }
    result = rewrite_databases(bundle, targets, require_all=False)
    names = names_of(result)
    mapping = {
        asset.uuid: datasets[names.datasets[asset.uuid]]
        for asset in result.of("datasets")
        if names.datasets[asset.uuid] in datasets and datasets[names.datasets[asset.uuid]] != asset.uuid
    }
    return rewrite_dataset_uuids(result, mapping)


@dataclass(frozen=True)
class ImportRequest:
    """One call to the assets import: the bundle as sent, its ZIP and the passwords by database file."""

    bundle: Bundle
    zip_bytes: bytes
    passwords: dict[str, str]

    def count(self) -> dict[str, int]:
        return {
            kind: len(self.bundle.assets.get(kind, {})) for kind in ("dashboards", "charts", "datasets", "databases")
        }

    def describe(self) -> str:
        parts = [f"{n} {kind if n != 1 else kind[:-1]}" for kind, n in self.count().items() if n]
        return ", ".join(parts) or "nothing"


def import_request(
    desired: Bundle,
    uuids: Iterable[str],
    live_databases: Mapping[str, str],
    live_datasets: Mapping[str, str],
    password: Callable[[str], str | None],
) -> ImportRequest:
    """The import that makes `uuids` (desired uuids) and what they need match the desired bundle.

    `password(database_name)` gives a database's password, or None when it has none declared.
    """
    chosen = adopt_live_uuids(sub_bundle(desired, closure(desired, uuids)), live_databases, live_datasets)
    passwords: dict[str, str] = {}
    for database in chosen.of("databases"):
        value = password(database.name)
        if value is not None:
            passwords[database_file(chosen, database.uuid)] = value
    return ImportRequest(chosen, build_import_zip(chosen), passwords)


def adopted_uuid(desired_uuid: str, name: str, live: Mapping[str, str]) -> str:
    """The uuid an asset ends up with after an import: the target's for a name it already has."""
    return live.get(name, desired_uuid)
