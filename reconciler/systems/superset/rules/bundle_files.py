"""Core, Superset assets: a bundle as deterministic YAML files for git (`to_files`) and back (`from_files`).

Between a pulled export and `specs/superset/`, and between those files and an import. Pure: it
maps paths to texts and never touches the filesystem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.systems.superset.rules.bundle_model import (
    EXPORT_VERSION,
    KINDS,
    Asset,
    Bundle,
    BundleError,
    dump_yaml,
    file_slug,
    make_bundle,
    parse_yaml,
)
from reconciler.systems.superset.rules.bundle_normalise import normalise


def _dashboard_dirs(bundle: Bundle) -> dict[str, str]:
    """Dashboard uuid -> its folder name: the slug, else the title slug; plus the uuid if names collide."""
    names = {
        asset.uuid: file_slug(str(asset.content.get("slug") or asset.content.get("dashboard_title") or asset.uuid))
        for asset in bundle.of("dashboards")
    }
    taken = list(names.values())
    return {uuid: name if taken.count(name) == 1 else f"{name}_{uuid}" for uuid, name in names.items()}


def chart_homes(bundle: Bundle) -> dict[str, str]:
    """Chart uuid -> uuid of the dashboard whose folder holds it (the first by folder name)."""
    dirs = _dashboard_dirs(bundle)
    homes: dict[str, str] = {}
    for dashboard in sorted(bundle.of("dashboards"), key=lambda asset: dirs[asset.uuid]):
        position = dashboard.content.get("position") or {}
        for node in position.values() if isinstance(position, dict) else ():
            if isinstance(node, dict) and node.get("type") == "CHART":
                uuid = (node.get("meta") or {}).get("uuid")
                if uuid:
                    homes.setdefault(str(uuid), dashboard.uuid)
    return homes


def _file_content(asset: Asset) -> dict[str, Any]:
    """What goes in git: the asset in the normalised form the plan compares (no instance ids, no
    random layout ids, no `version`; a chart's query context as YAML, not a JSON string)."""
    return normalise(asset)


def to_files(bundle: Bundle) -> dict[str, str]:
    """The bundle as YAML files for `specs/superset/`, relative path -> text; the same bundle always
    gives the same files (names longer than `FILE_SLUG_LENGTH` are cut, with a hash of the whole):

        databases/<name>.yaml
        datasets/<database>/<schema>/<table>.yaml          (no schema folder when there is none)
        dashboards/<slug>/dashboard.yaml
        dashboards/<slug>/charts/<chart-name>_<uuid8>.yaml  (a chart on several dashboards: under the first)
        charts/<chart-name>_<uuid8>.yaml                    (charts on no dashboard)
    """
    dirs = _dashboard_dirs(bundle)
    homes = chart_homes(bundle)
    database_names = {asset.uuid: file_slug(asset.name) for asset in bundle.of("databases")}
    files: dict[str, str] = {}

    def put(path: str, asset: Asset) -> None:
        if path in files:
            stem, suffix = path.rsplit(".", 1)
            path = f"{stem}_{asset.uuid}.{suffix}"
        files[path] = dump_yaml(_file_content(asset))

    for asset in sorted(bundle.of("databases"), key=lambda a: (a.name, a.uuid)):
        put(f"databases/{database_names[asset.uuid]}.yaml", asset)
    for asset in sorted(bundle.of("datasets"), key=lambda a: (a.name, a.uuid)):
        database_uuid = str(asset.content.get("database_uuid", ""))
        folder = database_names.get(database_uuid) or f"database_{database_uuid[:8]}"
        schema = asset.content.get("schema")
        put(f"datasets/{folder}/{file_slug(schema) + '/' if schema else ''}{file_slug(asset.name)}.yaml", asset)
    for asset in bundle.of("dashboards"):
        put(f"dashboards/{dirs[asset.uuid]}/dashboard.yaml", asset)
    for asset in bundle.of("charts"):
        file_name = f"{file_slug(asset.name)}_{asset.uuid[:8]}.yaml"
        home = homes.get(asset.uuid)
        put(f"dashboards/{dirs[home]}/charts/{file_name}" if home else f"charts/{file_name}", asset)
    for path, text in bundle.other_files.items():
        if path in files:
            raise BundleError(f"{path}: a file of the bundle has the path of an asset")
        files[path] = text
    return dict(sorted(files.items()))


def _kind_of_file(path: str) -> str | None:
    parts = path.split("/")
    if parts[0] == "dashboards" and len(parts) == 4 and parts[2] == "charts":
        return "charts"
    if parts[0] == "dashboards" and len(parts) == 3 and parts[2] == "dashboard.yaml":
        return "dashboards"
    if parts[0] in KINDS and len(parts) >= 2:
        return parts[0]
    return None


def from_files(files: Mapping[str, str]) -> Bundle:
    """Read what `to_files` wrote; asset paths become export paths (`charts/<file>`), ready to import."""
    entries: list[tuple[str, str, dict[str, Any]]] = []
    other_files: dict[str, str] = {}
    for path in sorted(files):
        kind = _kind_of_file(path) if path.endswith((".yaml", ".yml")) else None
        if kind is None:
            other_files[path] = files[path]
            continue
        content = parse_yaml(path, files[path])
        if kind == "charts" and isinstance(content.get("query_context"), dict):
            content["query_context"] = json.dumps(content["query_context"], sort_keys=True)
        parts = path.split("/")
        if kind == "charts":
            bundle_path = f"charts/{parts[-1]}"
        elif kind == "dashboards":
            bundle_path = f"dashboards/{parts[1]}.yaml"
        else:
            bundle_path = path
        content.setdefault("version", EXPORT_VERSION)
        entries.append((kind, bundle_path, content))
    return make_bundle(entries, other_files)
