"""Core, Superset assets: export ZIP bytes in (`read_bundle`), import ZIP bytes out (`build_import_zip`).

Between the Superset client, which moves the ZIP bytes, and the rest of the core, which works on a
`Bundle`. Pure: no network, no filesystem.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from reconciler.systems.superset.rules.bundle_model import (
    EXPORT_VERSION,
    KINDS,
    Asset,
    Bundle,
    BundleError,
    dump_yaml,
    make_bundle,
    parse_yaml,
)
from reconciler.systems.superset.rules.bundle_normalise import with_chart_ids

IMPORT_ROOT = "reconciler_import"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


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
                entries.append((kind, path, parse_yaml(path, text)))
            elif path != "metadata.yaml":
                other_files[path] = text
    return make_bundle(entries, other_files)


def _import_content(asset: Asset, database_uri_overrides: Mapping[str, str]) -> dict[str, Any]:
    content = copy.deepcopy(asset.content)
    content.setdefault("version", EXPORT_VERSION)
    if asset.kind == "databases":
        content.setdefault("extra", {})  # Superset 6.1 answers 500 (KeyError) to a database file without it
        override = database_uri_overrides.get(asset.uuid) or database_uri_overrides.get(asset.name)
        if override:
            content["sqlalchemy_uri"] = override
    if asset.kind == "dashboards":
        content = with_chart_ids(content)
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
