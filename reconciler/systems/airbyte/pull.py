"""Core: turn live Airbyte objects into spec entries (for `reconcile import`); pure.

Masked secrets, and values the spec rules call secrets (by name, a URL's password, a private
key), become `{secretRef: {env: NAME}}` with a name derived from the resource and field, so an
existing platform moves to git without a single secret in the files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.model import ResourceKey
from reconciler.spec.cron import strip_utc
from reconciler.spec.secrets import iter_inline_secrets
from reconciler.systems.airbyte.rules import masked_paths

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def spec_name(live_name: str, taken: set[str]) -> str:
    """A valid, unique spec name from a live display name (`Postgres → S3` -> `postgres-s3`)."""
    base = _NOT_NAME.sub("-", live_name.strip()).strip("-.").lower()[:120] or "unnamed"
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}-{counter}", counter + 1
    taken.add(name)
    return name


def env_variable(*parts: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_")


Step = str | int


def _config_with_refs(config: Any, prefix: str, refs: list[str]) -> Any:
    """`config` with every secret (masked, or a value the spec rules refuse inline) as a reference."""
    secrets = {*masked_paths(config), *iter_inline_secrets(config)}
    return _replace_secrets(config, prefix, (), secrets, refs)


def _replace_secrets(
    config: Any, prefix: str, path: tuple[Step, ...], secrets: set[tuple[Step, ...]], refs: list[str]
) -> Any:
    if path in secrets:
        variable = env_variable(prefix, *(str(step) for step in path))
        refs.append(variable)
        return {"secretRef": {"env": variable}}
    if isinstance(config, Mapping):
        return {k: _replace_secrets(v, prefix, (*path, str(k)), secrets, refs) for k, v in config.items()}
    if isinstance(config, list):
        return [_replace_secrets(item, prefix, (*path, index), secrets, refs) for index, item in enumerate(config)]
    return config


@dataclass
class ImportedSpecs:
    """Spec entries ready to dump as YAML, and the environment variables their secrets need."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    secret_variables: list[str] = field(default_factory=list)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, spec name) -> live id, to record ownership."""
    skipped: list[str] = field(default_factory=list)
    select: dict[str, list[str]] = field(default_factory=lambda: {"sources": [], "destinations": [], "connections": []})
    """Names already defined in specs/ that the environment should now select."""
    managed: list[ResourceKey] = field(default_factory=list)
    """Live objects the state already records: left as they are."""
    rebound: list[ResourceKey] = field(default_factory=list)
    """Selected resources whose recorded object is gone, recorded again at the live object of their name."""


def connector_entry(kind: str, answer: Mapping[str, Any], name: str, env: str, refs: list[str]) -> dict[str, Any]:
    type_field = "sourceType" if kind == "source" else "destinationType"
    configuration = dict(answer.get("configuration") or {})
    connector_type = answer.get(type_field) or configuration.get(type_field)
    configuration.pop(type_field, None)
    entry: dict[str, Any] = {"name": name}
    if connector_type:
        entry["type"] = connector_type
    else:  # a custom connector: Airbyte names only the definitions it knows
        entry["definitionId"] = answer.get("definitionId")
    entry["configuration"] = _config_with_refs(configuration, f"{env}_{name}", refs)
    return entry


def connection_entry(answer: Mapping[str, Any], name: str, source: str, destination: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "source": source, "destination": destination}
    schedule = answer.get("schedule") or {}
    if schedule.get("scheduleType") == "cron":
        entry["schedule"] = {"cron": strip_utc(schedule.get("cronExpression", ""))}
    else:
        entry["schedule"] = "manual"
    for key in ("status", "namespaceDefinition", "namespaceFormat", "prefix", "nonBreakingSchemaUpdatesBehavior"):
        if answer.get(key) not in (None, ""):
            entry[key] = answer[key]
    streams = []
    for stream in sorted(
        (answer.get("configurations") or {}).get("streams") or [],
        key=lambda s: (s.get("namespace") or "", s.get("name", "")),
    ):
        item: dict[str, Any] = {"name": stream["name"]}
        if stream.get("namespace"):
            item["namespace"] = stream["namespace"]
        if stream.get("syncMode"):
            item["syncMode"] = stream["syncMode"]
        if stream.get("cursorField"):
            item["cursorField"] = list(stream["cursorField"])
        if stream.get("selectedFields"):
            item["selectedFields"] = sorted(".".join(f["fieldPath"]) for f in stream["selectedFields"])
        streams.append(item)
    entry["streams"] = streams
    return entry
