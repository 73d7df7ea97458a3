"""Pure core for Superset assets: export bundles in, comparable assets, git files and import bundles out.

Sits between the Superset client (which moves ZIP bytes) and the Superset provider: no network,
no filesystem. A bundle is what `GET /api/v1/dashboard/export/` answers: a ZIP with one top
folder holding `metadata.yaml` and `databases/`, `datasets/<db>/`, `charts/`, `dashboards/` YAML
files. Every asset carries a `uuid`, its identity across instances.

- `read_bundle(zip_bytes)` parses one; `to_files` / `from_files` write it as deterministic YAML for
  git (charts under the first dashboard that shows them) and read it back.
- `normalise(asset)` removes what differs between instances or exports of one unchanged asset
  (integer ids, derived scopes, export noise), so prod and QA copies compare equal.
- `rewrite_databases` points a bundle at another instance's databases (replication prod -> QA);
  `rewrite_dataset_uuids` adopts a target's existing datasets. Both exist because an import that
  brings a new UUID with an existing database name (or database+schema+table) does not create a
  new row: it silently rewrites the existing row's UUID.
- `build_import_zip(bundle, overrides)` makes the `type: assets` ZIP that `/api/v1/assets/import/`
  takes (the only import that overwrites charts, datasets and databases too).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from reconciler.errors import ReconcilerError

KINDS = ("databases", "datasets", "charts", "dashboards")
EXPORT_VERSION = "1.0.0"
PASSWORD_MASK = "X" * 10
IMPORT_ROOT = "reconciler_import"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BundleError(ReconcilerError):
    """A bundle or a set of asset files that cannot be read or turned into an import."""


@dataclass(frozen=True)
class Asset:
    """One exported object: its kind, uuid, path inside the bundle (`charts/x.yaml`) and parsed YAML."""

    kind: str
    uuid: str
    path: str
    content: dict[str, Any]

    @property
    def name(self) -> str:
        """What a person calls it: database name, table name, chart name, dashboard title."""
        keys = {"databases": "database_name", "datasets": "table_name", "charts": "slice_name"}
        return str(self.content.get(keys.get(self.kind, "dashboard_title")) or self.uuid)


@dataclass(frozen=True)
class Bundle:
    """Assets by kind then uuid, plus files of kinds reconciler does not interpret (themes, tags)."""

    assets: dict[str, dict[str, Asset]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    other_files: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Asset]:
        """The assets of one kind, in uuid order."""
        return [self.assets.get(kind, {})[key] for key in sorted(self.assets.get(kind, {}))]

    def all_assets(self) -> list[Asset]:
        return [asset for kind in KINDS for asset in self.of(kind)]

    def find(self, kind: str, uuid_or_name: str) -> Asset | None:
        """An asset by uuid, or by name when no uuid matches."""
        by_kind = self.assets.get(kind, {})
        if uuid_or_name in by_kind:
            return by_kind[uuid_or_name]
        return next((asset for asset in self.of(kind) if asset.name == uuid_or_name), None)


def _parse_yaml(path: str, text: str) -> dict[str, Any]:
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BundleError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(content, dict):
        raise BundleError(f"{path}: expected a mapping, got {type(content).__name__}")
    return content


def _make_bundle(entries: Iterable[tuple[str, str, dict[str, Any]]], other_files: dict[str, str]) -> Bundle:
    """A bundle from (kind, path, content) triples; every asset must carry a unique uuid."""
    assets: dict[str, dict[str, Asset]] = {kind: {} for kind in KINDS}
    for kind, path, content in entries:
        uuid = content.get("uuid")
        if not uuid:
            raise BundleError(f"{path}: no uuid")
        if str(uuid) in assets[kind]:
            raise BundleError(f"{path}: uuid {uuid} also in {assets[kind][str(uuid)].path}")
        assets[kind][str(uuid)] = Asset(kind, str(uuid), path, content)
    return Bundle(assets, other_files)


def _without_root(name: str) -> str:
    """`dashboard_export_20240101T000000/charts/x.yaml` -> `charts/x.yaml` (a ZIP without the folder is fine)."""
    first, _, rest = name.partition("/")
    return rest if rest and first not in KINDS else name


def read_bundle(zip_bytes: bytes) -> Bundle:
    """Parse an export ZIP; paths lose the top folder (`dashboard_export_20240101T000000/`)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile as exc:
        raise BundleError(f"not a ZIP bundle: {exc}") from exc
    entries: list[tuple[str, str, dict[str, Any]]] = []
    other_files: dict[str, str] = {}
    with archive:
        for name in archive.namelist():
            if name.endswith("/"):
                continue
            path = _without_root(name)
            text = archive.read(name).decode("utf-8")
            kind = path.split("/", 1)[0]
            if kind in KINDS and path.endswith((".yaml", ".yml")):
                entries.append((kind, path, _parse_yaml(path, text)))
            elif path != "metadata.yaml":
                other_files[path] = text
    return _make_bundle(entries, other_files)


# ---- normalising ------------------------------------------------------------------------------

# Keys that hold a copy of another field, an instance's integer id, or nothing at all.
CHART_PARAM_NOISE = ("datasource", "slice_id", "dashboards", "url_params")


def _drop_empty(mapping: dict[str, Any], keys: Iterable[str]) -> None:
    for key in keys:
        if key in mapping and mapping[key] in ([], {}, None, ""):
            del mapping[key]


def _mask_password(uri: str) -> str:
    """`scheme://user:secret@host` -> `scheme://user:XXXXXXXXXX@host` (exports mask it this way)."""
    return re.sub(r"^([^:/]+://[^:/@]*):[^@]*@", rf"\1:{PASSWORD_MASK}@", uri)


def _normalise_form_data(params: Any) -> Any:
    if not isinstance(params, dict):
        return params
    params = {key: value for key, value in params.items() if key not in CHART_PARAM_NOISE}
    _drop_empty(params, ("annotation_layers", "extra_form_data"))
    return params


def _normalise_query_context(raw: Any) -> Any:
    """The saved query context without the dataset's and chart's ids (the chart's dataset_uuid says it)."""
    try:
        context = json.loads(raw) if isinstance(raw, str) else copy.deepcopy(raw)
    except ValueError:
        return raw
    if not isinstance(context, dict):
        return context
    context.pop("datasource", None)
    if "form_data" in context:
        context["form_data"] = _normalise_form_data(context["form_data"])
    for query in context.get("queries") or []:
        if isinstance(query, dict):
            query.pop("datasource", None)
    return context


def _normalise_chart(content: dict[str, Any]) -> None:
    content["params"] = _normalise_form_data(content.get("params"))
    if content.get("query_context") is not None:
        content["query_context"] = _normalise_query_context(content["query_context"])
    for key in ("datasource_id", "datasource_type", "datasource_name", "query_context_generation"):
        content.pop(key, None)


def _normalise_dataset(content: dict[str, Any]) -> None:
    for key, name in (("columns", "column_name"), ("metrics", "metric_name")):
        if isinstance(content.get(key), list):
            content[key] = sorted(content[key], key=lambda item: str(item.get(name, "")))
    content.pop("database_id", None)


# The database export writes the v1 names of two fields; the dashboard and dataset exports do not.
DATABASE_RENAMES = {"allow_csv_upload": "allow_file_upload"}
DATABASE_EXTRA_RENAMES = {"schemas_allowed_for_csv_upload": "schemas_allowed_for_file_upload"}


def _normalise_database(content: dict[str, Any]) -> None:
    for old, new in DATABASE_RENAMES.items():
        if old in content:
            content.setdefault(new, content.pop(old))
    if isinstance(content.get("extra"), dict):
        for old, new in DATABASE_EXTRA_RENAMES.items():
            if old in content["extra"]:
                content["extra"].setdefault(new, content["extra"].pop(old))
    if isinstance(content.get("sqlalchemy_uri"), str):
        content["sqlalchemy_uri"] = _mask_password(content["sqlalchemy_uri"])
    content.pop("password", None)
    content.setdefault("extra", {})  # what an import of a file without it stores


def chart_uuids_by_id(position: Any) -> dict[int, str]:
    """The layout's chart nodes: this instance's chart id -> chart uuid."""
    if not isinstance(position, dict):
        return {}
    found: dict[int, str] = {}
    for node in position.values():
        if isinstance(node, dict) and node.get("type") == "CHART":
            meta = node.get("meta") or {}
            if isinstance(meta.get("chartId"), int) and meta.get("uuid"):
                found[meta["chartId"]] = str(meta["uuid"])
    return found


def _ids_to_uuids(ids: Any, by_id: Mapping[int, str]) -> Any:
    if not isinstance(ids, list):
        return ids
    return sorted(str(by_id.get(item, item)) if isinstance(item, int) else str(item) for item in ids)


def _key_to_uuid(key: str, by_id: Mapping[int, str]) -> str:
    return by_id.get(int(key), key) if key.isdigit() else key


def _normalise_scope(scope: Any, by_id: Mapping[int, str]) -> None:
    if isinstance(scope, dict) and "excluded" in scope:
        scope["excluded"] = _ids_to_uuids(scope["excluded"], by_id)


def _normalise_position(position: dict[str, Any]) -> dict[str, Any]:
    """Chart nodes lose `chartId`; rows an export invented for charts missing from the layout
    (random `ROW-N-XXXXXXXX` / `CHART-XXXXXXXX` ids, random order) get ids made from the chart uuids."""
    renamed: dict[str, str] = {}
    for key, node in position.items():
        if isinstance(node, dict) and node.get("type") == "ROW" and (node.get("meta") or {}).get("0") == "ROOT_ID":
            children = [position.get(child, {}) for child in node.get("children") or []]
            uuids = sorted(str((child.get("meta") or {}).get("uuid", "")) for child in children)
            renamed[key] = "ROW-N-appended-" + "-".join(uuid[:8] for uuid in uuids)
            for child_key in node.get("children") or []:
                uuid = str((position.get(child_key, {}).get("meta") or {}).get("uuid", child_key))
                renamed[child_key] = f"CHART-appended-{uuid}"

    def rename(value: Any) -> Any:
        return renamed.get(value, value) if isinstance(value, str) else value

    result: dict[str, Any] = {}
    for key, node in position.items():
        if isinstance(node, dict):
            node = copy.deepcopy(node)
            node["id"] = rename(node.get("id"))
            if isinstance(node.get("children"), list):
                children = [rename(child) for child in node["children"]]
                node["children"] = sorted(children) if key in renamed else children
            if isinstance(node.get("parents"), list):
                node["parents"] = [rename(parent) for parent in node["parents"]]
            if isinstance(node.get("meta"), dict):
                node["meta"].pop("chartId", None)
        result[rename(key)] = node
    return result


def _normalise_dashboard_metadata(metadata: dict[str, Any], by_id: Mapping[int, str]) -> None:
    """Chart ids in the metadata become uuids; `chartsInScope` (derived from the scope by the UI,
    and left holding the source's ids by an import) goes."""
    for native_filter in metadata.get("native_filter_configuration") or []:
        if isinstance(native_filter, dict):
            native_filter.pop("chartsInScope", None)
            _normalise_scope(native_filter.get("scope"), by_id)
    global_config = metadata.get("global_chart_configuration")
    if isinstance(global_config, dict):
        global_config.pop("chartsInScope", None)
        _normalise_scope(global_config.get("scope"), by_id)
    if isinstance(metadata.get("chart_configuration"), dict):
        configurations = {}
        for key, config in metadata["chart_configuration"].items():
            if isinstance(config, dict):
                config.pop("id", None)
                cross_filters = config.get("crossFilters")
                if isinstance(cross_filters, dict):
                    cross_filters.pop("chartsInScope", None)
                    _normalise_scope(cross_filters.get("scope"), by_id)
            configurations[_key_to_uuid(str(key), by_id)] = config
        metadata["chart_configuration"] = configurations
    if "timed_refresh_immune_slices" in metadata:
        metadata["timed_refresh_immune_slices"] = _ids_to_uuids(metadata["timed_refresh_immune_slices"], by_id)
    if isinstance(metadata.get("expanded_slices"), dict):
        metadata["expanded_slices"] = {
            _key_to_uuid(str(key), by_id): value for key, value in metadata["expanded_slices"].items()
        }
    if isinstance(metadata.get("filter_scopes"), dict):
        scopes = {}
        for key, columns in metadata["filter_scopes"].items():
            for attributes in (columns or {}).values():
                if isinstance(attributes, dict) and "immune" in attributes:
                    attributes["immune"] = _ids_to_uuids(attributes["immune"], by_id)
            scopes[_key_to_uuid(str(key), by_id)] = columns
        metadata["filter_scopes"] = scopes
    if isinstance(metadata.get("default_filters"), str):
        try:
            filters = json.loads(metadata["default_filters"])
            metadata["default_filters"] = {_key_to_uuid(str(key), by_id): value for key, value in filters.items()}
        except (ValueError, AttributeError):
            pass
    metadata.pop("positions", None)


def _normalise_dashboard(content: dict[str, Any]) -> None:
    position = content.get("position")
    by_id = chart_uuids_by_id(position)
    if isinstance(position, dict):
        content["position"] = _normalise_position(position)
    if isinstance(content.get("metadata"), dict):
        _normalise_dashboard_metadata(content["metadata"], by_id)


NORMALISERS = {
    "charts": _normalise_chart,
    "datasets": _normalise_dataset,
    "databases": _normalise_database,
    "dashboards": _normalise_dashboard,
}


def normalise(asset: Asset) -> dict[str, Any]:
    """The asset's content with instance-specific ids and export noise removed, for comparing.

    Not for importing: an import needs the ids it remaps (`position.*.meta.chartId`) and
    `query_context` as a JSON string.
    """
    content = copy.deepcopy(asset.content)
    content.pop("version", None)
    content.pop("timestamp", None)
    NORMALISERS.get(asset.kind, lambda _: None)(content)
    return content


def normalise_bundle(bundle: Bundle) -> dict[str, dict[str, dict[str, Any]]]:
    """Every asset normalised, by kind then uuid: two bundles holding the same assets compare equal."""
    return {kind: {asset.uuid: normalise(asset) for asset in bundle.of(kind)} for kind in KINDS}


# ---- files for git ----------------------------------------------------------------------------


def slugify(text: str) -> str:
    """A file-name-safe lower-case slug (`Sales by region (EU)` -> `sales-by-region-eu`)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "unnamed"


def dump_yaml(content: Mapping[str, Any]) -> str:
    """Deterministic YAML: sorted keys, block style, unicode kept, no line wrapping."""
    return yaml.safe_dump(dict(content), sort_keys=True, default_flow_style=False, allow_unicode=True, width=10_000)


def _dashboard_dirs(bundle: Bundle) -> dict[str, str]:
    """Dashboard uuid -> its folder name: the slug, else the title slug; plus the uuid if names collide."""
    names = {
        asset.uuid: slugify(str(asset.content.get("slug") or asset.content.get("dashboard_title") or asset.uuid))
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
    """What goes in git: the export minus `version`; a chart's query context as YAML, not a JSON string."""
    content = copy.deepcopy(asset.content)
    content.pop("version", None)
    if asset.kind == "charts" and isinstance(content.get("query_context"), str):
        with contextlib.suppress(ValueError):
            content["query_context"] = json.loads(content["query_context"])
    return content


def to_files(bundle: Bundle) -> dict[str, str]:
    """The bundle as YAML files for `specs/superset/`, relative path -> text; the same bundle always
    gives the same files:

        databases/<name>.yaml
        datasets/<database>/<schema>/<table>.yaml          (no schema folder when there is none)
        dashboards/<slug>/dashboard.yaml
        dashboards/<slug>/charts/<chart-name>_<uuid8>.yaml  (a chart on several dashboards: under the first)
        charts/<chart-name>_<uuid8>.yaml                    (charts on no dashboard)
    """
    dirs = _dashboard_dirs(bundle)
    homes = chart_homes(bundle)
    database_names = {asset.uuid: slugify(asset.name) for asset in bundle.of("databases")}
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
        put(f"datasets/{folder}/{slugify(schema) + '/' if schema else ''}{slugify(asset.name)}.yaml", asset)
    for asset in bundle.of("dashboards"):
        put(f"dashboards/{dirs[asset.uuid]}/dashboard.yaml", asset)
    for asset in bundle.of("charts"):
        file_name = f"{slugify(asset.name)}_{asset.uuid[:8]}.yaml"
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
        content = _parse_yaml(path, files[path])
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
    return _make_bundle(entries, other_files)


# ---- rewriting for another instance -------------------------------------------------------------


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
    (else the import takes that row over and rewrites its uuid). With `require_all`, a database the
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
        changed = False
        for native_filter in (content.get("metadata") or {}).get("native_filter_configuration") or []:
            for target in native_filter.get("targets") or []:
                if target.get("datasetUuid") in mapping:
                    target["datasetUuid"] = mapping[target["datasetUuid"]]
                    changed = True
        if changed:
            result = _with_asset(result, dashboard, replace(dashboard, content=content))
    return result


# ---- import bundle ------------------------------------------------------------------------------


def _import_content(asset: Asset, database_uri_overrides: Mapping[str, str]) -> dict[str, Any]:
    content = copy.deepcopy(asset.content)
    content.setdefault("version", EXPORT_VERSION)
    if asset.kind == "databases":
        content.setdefault("extra", {})  # Superset 6.1 answers 500 (KeyError) to a database file without it
        override = database_uri_overrides.get(asset.uuid) or database_uri_overrides.get(asset.name)
        if override:
            content["sqlalchemy_uri"] = override
    if asset.kind == "charts" and isinstance(content.get("query_context"), dict):
        content["query_context"] = json.dumps(content["query_context"], sort_keys=True)
    return content


def build_import_zip(bundle: Bundle, database_uri_overrides: Mapping[str, str] | None = None) -> bytes:
    """A `type: assets` ZIP for `/api/v1/assets/import/`; byte-for-byte the same for the same input.

    `database_uri_overrides` (database uuid or name -> URI) replaces connection strings, e.g. a
    masked password with the real one for a database the target does not have yet. Files of other
    kinds (`bundle.other_files`: themes, tags) are left out: the assets import ignores them.
    """
    overrides = dict(database_uri_overrides or {})
    known = {key for asset in bundle.of("databases") for key in (asset.uuid, asset.name)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise BundleError(f"URI overrides for databases not in the bundle: {', '.join(unknown)}")
    files = {"metadata.yaml": dump_yaml({"version": EXPORT_VERSION, "type": "assets"})}
    for asset in bundle.all_assets():
        if asset.path in files:
            raise BundleError(f"two assets would be written to {asset.path}")
        files[asset.path] = dump_yaml(_import_content(asset, overrides))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{IMPORT_ROOT}/{path}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path])
    return buffer.getvalue()


def database_file(bundle: Bundle, uuid_or_name: str) -> str:
    """The path an import's `passwords` field keys a database's password by (`databases/x.yaml`)."""
    asset = bundle.find("databases", uuid_or_name)
    if asset is None:
        raise BundleError(f"no database {uuid_or_name!r} in the bundle")
    return asset.path
