"""Core: the pure half of `reconcile pull superset`: a live export -> the spec bundle and environment entries.

- `without_connections`: database files keep everything but the connection and the secrets of
  `extra` (`engine_params.connect_args.password`: exports do not mask them); where a database
  points is per environment, so it lives in the environment file (password as a reference).
- `replace_assets`: the existing spec bundle with the pulled assets in place (by uuid; a
  dashboard also by slug), so pulling one dashboard leaves the others' files as they are and a
  chart shared with another dashboard keeps one file.
- `connection_entries`: what `superset.databases` of the environment file needs for databases
  it does not declare yet: the URI without its password or any secret query parameter (`?password=`,
  ODBC `PWD=`), and a variable for the password.
- `pulled_secrets`: where the live connections carried secrets that `pull` left out, for its report.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.systems.superset.rules.assets import chart_uuids, dashboard_key, names_of
from reconciler.systems.superset.rules.bundle import KINDS, PASSWORD_MASK, Asset, Bundle
from reconciler.systems.superset.rules.connection_secrets import dotted, strip_extra_secrets, strip_uri_secrets

URI_FIELD = "sqlalchemy_uri"
EXTRA_FIELDS = ("extra", "encrypted_extra", "masked_encrypted_extra")


def without_connections(bundle: Bundle) -> Bundle:
    assets = {kind: dict(bundle.assets.get(kind, {})) for kind in KINDS}
    for uuid, asset in assets["databases"].items():
        content = copy.deepcopy(asset.content)
        content.pop(URI_FIELD, None)
        content.pop("password", None)
        for key in EXTRA_FIELDS:
            if content.get(key) is not None:
                content[key] = strip_extra_secrets(content[key])[0]
        assets["databases"][uuid] = Asset(asset.kind, asset.uuid, asset.path, content)
    return Bundle(assets, dict(bundle.other_files))


def replace_assets(existing: Bundle, pulled: Bundle) -> Bundle:
    """Existing assets, with every pulled asset replacing the one it is: the same uuid, or the same
    identity under another uuid (dashboard slug, database name, dataset name). Charts that only a
    replaced dashboard showed go with it."""
    assets = {kind: dict(existing.assets.get(kind, {})) for kind in KINDS}
    old_names, new_names = names_of(existing), names_of(pulled)
    same: dict[str, dict[str, str]] = {
        "dashboards": {str(a.content.get("slug")): a.uuid for a in existing.of("dashboards") if a.content.get("slug")},
        "databases": {name: uuid for uuid, name in old_names.databases.items()},
        "datasets": {name: uuid for uuid, name in old_names.datasets.items()},
    }
    replaced: list[Asset] = []
    for asset in pulled.all_assets():
        identity = {
            "dashboards": str(asset.content.get("slug")),
            "databases": asset.name,
            "datasets": new_names.datasets.get(asset.uuid, ""),
        }.get(asset.kind)
        old_uuid = same.get(asset.kind, {}).get(identity or "")
        if old_uuid is not None and old_uuid != asset.uuid:
            replaced.append(assets[asset.kind].pop(old_uuid))
        if asset.uuid in assets[asset.kind]:
            replaced.append(assets[asset.kind][asset.uuid])
        assets[asset.kind][asset.uuid] = asset
    shown = {uuid for dashboard in assets["dashboards"].values() for uuid in chart_uuids(dashboard)}
    for dashboard in (a for a in replaced if a.kind == "dashboards"):
        for uuid in chart_uuids(dashboard):
            if uuid not in shown and uuid not in pulled.assets.get("charts", {}):
                assets["charts"].pop(uuid, None)
    return Bundle(assets, dict(existing.other_files))


@dataclass(frozen=True)
class ConnectionEntry:
    """One database to declare in the environment file."""

    name: str
    sqlalchemy_uri: str
    password_variable: str | None


def variable_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_").upper() for part in parts)


def _password_variable(environment: str, name: str, others: Iterable[str]) -> str:
    """`SUPERSET_<ENV>_<DATABASE>_PASSWORD`; where another database's name gives the same (`Warehouse EU` and
    `warehouse-eu`), or the name gives nothing (`仓库`), a hash of the exact name goes after it, so no two
    databases ever share a password variable (one of them would be sent the other's password)."""
    part = variable_name(name)
    if part and not any(other != name and variable_name(other) == part for other in others):
        return variable_name("superset", environment, name, "password")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8].upper()
    return variable_name("superset", environment, *([part] if part else []), digest, "password")


def connection_entries(pulled: Bundle, declared: Iterable[str], environment: str) -> list[ConnectionEntry]:
    """Entries for the pulled databases the environment does not declare yet."""
    known = set(declared)
    names = known | {database.name for database in pulled.of("databases")}
    entries = []
    for database in pulled.of("databases"):
        if database.name in known:
            continue
        uri = str(database.content.get(URI_FIELD) or "")
        masked = f":{PASSWORD_MASK}@"
        secret = masked in uri or bool(_secrets_of(database))
        variable = _password_variable(environment, database.name, names) if secret else None
        entries.append(ConnectionEntry(database.name, strip_uri_secrets(uri.replace(masked, "@"))[0], variable))
    return entries


def _secrets_of(database: Asset) -> list[str]:
    found = [f"{URI_FIELD} {name}" for name in strip_uri_secrets(str(database.content.get(URI_FIELD) or ""))[1]]
    for key in EXTRA_FIELDS:
        found += [f"{key}.{dotted(path)}" for path in strip_extra_secrets(database.content.get(key))[1]]
    return found


def pulled_secrets(pulled: Bundle) -> dict[str, list[str]]:
    """Database name -> where its live connection carried a secret `pull` left out (never the value)."""
    found = {database.name: _secrets_of(database) for database in pulled.of("databases")}
    return {name: places for name, places in found.items() if places}


def pulled_slugs(pulled: Bundle) -> list[str]:
    """What the environment file selects the pulled dashboards by (their exact slugs)."""
    return sorted(dashboard_key(asset) for asset in pulled.of("dashboards"))


def changed_files(current: Mapping[str, str], wanted: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Paths to write (new or different) and paths to remove (no longer produced)."""
    write = sorted(path for path, text in wanted.items() if current.get(path) != text)
    remove = sorted(path for path in current if path not in wanted)
    return write, remove
