"""Core, Superset assets: the bundle model every other `bundle_*` module reads and writes.

`Bundle` (assets by kind then uuid) and `Asset` (one exported object), the error for a bundle that
cannot be read, and the YAML and file-name helpers the readers and writers share. Pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.errors import PermanentError

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser, as the spec reader uses, when PyYAML was built with it (7x faster on an export)."""
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter for the same text (an import of 100 dashboards spent 0.75 s in the pure-Python one)."""

KINDS = ("databases", "datasets", "charts", "dashboards")
EXPORT_VERSION = "1.0.0"
PASSWORD_MASK = "X" * 10
"""What Superset writes for a password in an exported database URI; never a secret value."""


class BundleError(PermanentError):
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


def parse_yaml(path: str, text: str) -> dict[str, Any]:
    try:
        content = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise BundleError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(content, dict):
        raise BundleError(f"{path}: expected a mapping, got {type(content).__name__}")
    return content


def make_bundle(entries: Iterable[tuple[str, str, dict[str, Any]]], other_files: dict[str, str]) -> Bundle:
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


def slugify(text: str) -> str:
    """A file-name-safe lower-case slug (`Sales by region (EU)` -> `sales-by-region-eu`)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "unnamed"


FILE_SLUG_LENGTH = 80
"""Longest slug in a file or folder name: with a uuid and `.yaml` after it, well under the 255 bytes
file systems allow per name, and a path of a few of them under typical limits (4096)."""


WINDOWS_RESERVED = frozenset(
    ("con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10)))
)
"""Names Windows gives to devices, with any extension (`nul.yaml` too): a checkout there cannot create them."""


def file_slug(text: str) -> str:
    """`slugify`, shortened to `FILE_SLUG_LENGTH` where longer: its start and a hash of the whole text,
    so a 500-character title gives the same short, distinct name every time. A name Windows reserves
    (`con`, `nul`, `com1`...) gets a `_` (which no slug holds), so the project checks out everywhere."""
    slug = slugify(text)
    if slug in WINDOWS_RESERVED:
        return f"{slug}_"
    if len(slug) <= FILE_SLUG_LENGTH:
        return slug
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{slug[: FILE_SLUG_LENGTH - len(digest) - 1].rstrip('-')}-{digest}"


def dump_yaml(content: Mapping[str, Any]) -> str:
    """Deterministic YAML: sorted keys, block style, unicode kept, no line wrapping."""
    return yaml.dump(
        dict(content), Dumper=_SafeDumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=10_000
    )


# ---- native filters: the one place that walks them -------------------------------------------------------

FILTERS = "native_filter_configuration"
"""Where a dashboard's metadata keeps its native filters (a list of mappings, each with `targets`)."""


def native_filters(metadata: Any) -> list[dict[str, Any]]:
    """A dashboard metadata's native filters, the mappings themselves (edit them in place); anything else skipped."""
    filters = metadata.get(FILTERS) if isinstance(metadata, dict) else None
    return [item for item in filters if isinstance(item, dict)] if isinstance(filters, list) else []


def filter_targets(metadata: Any) -> list[tuple[int, int, dict[str, Any]]]:
    """Every native filter target of a dashboard metadata: (filter index, target index, the target mapping),
    indexes as written (for `file:line` problems), mappings as they are (edit them in place)."""
    filters = metadata.get(FILTERS) if isinstance(metadata, dict) else None
    found: list[tuple[int, int, dict[str, Any]]] = []
    for index, native_filter in enumerate(filters if isinstance(filters, list) else []):
        targets = native_filter.get("targets") if isinstance(native_filter, dict) else None
        for number, target in enumerate(targets if isinstance(targets, list) else []):
            if isinstance(target, dict):
                found.append((index, number, target))
    return found


def repoint_filter_datasets(metadata: Any, datasets: Mapping[str, str]) -> bool:
    """Native filter targets reading a dataset in `datasets` (old uuid -> new) read the new one; True if any did."""
    changed = False
    for _, _, target in filter_targets(metadata):
        if target.get("datasetUuid") in datasets:
            target["datasetUuid"] = datasets[target["datasetUuid"]]
            changed = True
    return changed
