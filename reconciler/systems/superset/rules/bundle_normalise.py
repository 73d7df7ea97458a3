"""Core, Superset assets: `normalise` an asset for comparing and for git; `with_chart_ids` undoes it for an import.

`normalise` removes what differs between instances or exports of one unchanged asset (integer
ids, derived scopes, export noise, random layout ids), so prod and QA copies compare equal and a
re-pulled file keeps its bytes. An import needs chart ids in a dashboard's layout and metadata:
`with_chart_ids` gives them back. Pure.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.systems.superset.rules.bundle_model import FILTERS, KINDS, PASSWORD_MASK, Asset, Bundle, native_filters
from reconciler.systems.superset.rules.connection_secrets import mask_extra_secrets, mask_uri_secrets

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
    if isinstance(content.get("sqlalchemy_uri"), str):  # a secret in the query or in extra: masked as well
        content["sqlalchemy_uri"] = mask_uri_secrets(_mask_password(content["sqlalchemy_uri"]))
    for key in ("extra", "encrypted_extra", "masked_encrypted_extra"):
        if content.get(key) is not None:
            content[key] = mask_extra_secrets(content[key])
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
    for native_filter in native_filters(metadata):
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
    # A dashboard created without metadata exports none, but an import stores
    # `{"native_filter_configuration": []}`: absent, null and empty mean the same.
    if content.get("metadata") in (None, {}):
        content["metadata"] = {}
    if isinstance(content["metadata"], dict):
        if content["metadata"].get(FILTERS) is None:
            content["metadata"][FILTERS] = []
        _normalise_dashboard_metadata(content["metadata"], by_id)


def _chart_ids_by_uuid(position: dict[str, Any]) -> dict[str, int]:
    """Chart uuid -> the id the import will remap: the node's `chartId` when it has one, else a new
    one after the highest (in uuid order, so the same file always gets the same ids)."""
    nodes = [node for node in position.values() if isinstance(node, dict) and node.get("type") == "CHART"]
    by_uuid: dict[str, int] = {}
    for node in nodes:
        meta = node.get("meta") or {}
        if meta.get("uuid") and isinstance(meta.get("chartId"), int):
            by_uuid.setdefault(str(meta["uuid"]), meta["chartId"])
    missing = sorted({str((node.get("meta") or {}).get("uuid")) for node in nodes} - set(by_uuid) - {"None"})
    start = max(by_uuid.values(), default=0) + 1
    by_uuid.update({uuid: start + offset for offset, uuid in enumerate(missing)})
    return by_uuid


def _ref_to_id(ref: Any, by_uuid: Mapping[str, int]) -> int | None:
    """A chart reference of a normalised file as an id: a uuid the layout places, or an id kept as is."""
    if isinstance(ref, int):
        return ref
    if str(ref) in by_uuid:
        return by_uuid[str(ref)]
    return int(ref) if str(ref).isdigit() else None


def _refs_to_ids(refs: Any, by_uuid: Mapping[str, int]) -> Any:
    if not isinstance(refs, list):
        return refs
    return [found for ref in refs if (found := _ref_to_id(ref, by_uuid)) is not None]


def _keys_to_ids(mapping: dict[str, Any], by_uuid: Mapping[str, int]) -> dict[str, Any]:
    return {str(found): value for key, value in mapping.items() if (found := _ref_to_id(key, by_uuid)) is not None}


def _scope_to_ids(scope: Any, by_uuid: Mapping[str, int]) -> None:
    if isinstance(scope, dict) and "excluded" in scope:
        scope["excluded"] = _refs_to_ids(scope["excluded"], by_uuid)


def _metadata_with_ids(metadata: dict[str, Any], by_uuid: Mapping[str, int]) -> None:
    for native_filter in native_filters(metadata):
        _scope_to_ids(native_filter.get("scope"), by_uuid)
    if isinstance(metadata.get("global_chart_configuration"), dict):
        _scope_to_ids(metadata["global_chart_configuration"].get("scope"), by_uuid)
    if isinstance(metadata.get("chart_configuration"), dict):
        configurations = _keys_to_ids(metadata["chart_configuration"], by_uuid)
        for key, config in configurations.items():
            if isinstance(config, dict):
                config["id"] = int(key)
                if isinstance(config.get("crossFilters"), dict):
                    _scope_to_ids(config["crossFilters"].get("scope"), by_uuid)
        metadata["chart_configuration"] = configurations
    if "timed_refresh_immune_slices" in metadata:
        metadata["timed_refresh_immune_slices"] = _refs_to_ids(metadata["timed_refresh_immune_slices"], by_uuid)
    if isinstance(metadata.get("expanded_slices"), dict):
        metadata["expanded_slices"] = _keys_to_ids(metadata["expanded_slices"], by_uuid)
    if isinstance(metadata.get("filter_scopes"), dict):
        metadata["filter_scopes"] = _keys_to_ids(metadata["filter_scopes"], by_uuid)
        for columns in metadata["filter_scopes"].values():
            for attributes in (columns or {}).values():
                if isinstance(attributes, dict) and "immune" in attributes:
                    attributes["immune"] = _refs_to_ids(attributes["immune"], by_uuid)
    if isinstance(metadata.get("default_filters"), dict):
        metadata["default_filters"] = json.dumps(_keys_to_ids(metadata["default_filters"], by_uuid), sort_keys=True)


def with_chart_ids(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    """A dashboard as Superset's import needs it: what `normalise` made uuids become ids again.

    The import maps each layout node's `chartId` to the chart's id in the target and rewrites the
    ids in the metadata through that map; a node without `chartId` fails the import. A file in the
    normalised form has no ids, so each chart gets one, the same for the same file.
    """
    content = copy.deepcopy(dict(dashboard))
    position = content.get("position")
    if not isinstance(position, dict):
        return content
    by_uuid = _chart_ids_by_uuid(position)
    for node in position.values():
        if isinstance(node, dict) and node.get("type") == "CHART" and isinstance(node.get("meta"), dict):
            uuid = node["meta"].get("uuid")
            if uuid and "chartId" not in node["meta"]:
                node["meta"]["chartId"] = by_uuid[str(uuid)]
    if isinstance(content.get("metadata"), dict):
        _metadata_with_ids(content["metadata"], by_uuid)
    return content


NORMALISERS = {
    "charts": _normalise_chart,
    "datasets": _normalise_dataset,
    "databases": _normalise_database,
    "dashboards": _normalise_dashboard,
}


def normalise(asset: Asset) -> dict[str, Any]:
    """The asset's content with instance-specific ids and export noise removed, for comparing and
    for the files `pull` writes.

    An import of it needs the ids it remaps (`with_chart_ids`) and `query_context` as a JSON string.
    """
    content = copy.deepcopy(asset.content)
    content.pop("version", None)
    content.pop("timestamp", None)
    NORMALISERS.get(asset.kind, lambda _: None)(content)
    return content


def normalise_bundle(bundle: Bundle) -> dict[str, dict[str, dict[str, Any]]]:
    """Every asset normalised, by kind then uuid: two bundles holding the same assets compare equal."""
    return {kind: {asset.uuid: normalise(asset) for asset in bundle.of(kind)} for kind in KINDS}
