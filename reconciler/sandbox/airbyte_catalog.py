"""Connector knowledge for the Airbyte stand-in: definition ids, secret fields, required fields, discovered streams.

What a real Airbyte learns from connector specs (`airbyte_secret`, `required`) and from running
`discover`, written down for the handful of connectors the demo uses, plus a generic fallback.
Pure data and pure functions; the handlers (airbyte_actors.py, airbyte_connections.py) apply them,
and airbyte_connection_checks.py checks a connection's streams against them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MASK = "**********"
Path = tuple[str, ...]

SOURCE, DESTINATION = "source", "destination"
FULL_REFRESH, INCREMENTAL = "full_refresh", "incremental"

# Public sync modes (ConnectionSyncModeEnum) and what each needs from the source.
SYNC_MODE_ENUM = (
    "full_refresh_overwrite",
    "full_refresh_overwrite_deduped",
    "full_refresh_append",
    "full_refresh_update",
    "full_refresh_soft_delete",
    "incremental_append",
    "incremental_deduped_history",
    "incremental_update",
    "incremental_soft_delete",
)
# The server only ever combines these (ConnectionReadMapper.syncModesToConnectionSyncModeEnum);
# the *_update / *_soft_delete values are in the enum but rejected for every stream here.
COMBINED_MODES = {
    FULL_REFRESH: ("full_refresh_overwrite", "full_refresh_append", "full_refresh_overwrite_deduped"),
    INCREMENTAL: ("incremental_append", "incremental_deduped_history"),
}
INCREMENTAL_MODES = frozenset(COMBINED_MODES[INCREMENTAL])
DEFAULT_SYNC_MODE = "full_refresh_overwrite"

_GENERIC_SECRET_NAMES = frozenset(
    {"password", "secret", "token", "api_key", "apikey", "access_token", "refresh_token", "private_key", "ssh_key"}
)


@dataclass(frozen=True)
class Stream:
    """One discovered stream, as `discover` would describe it."""

    name: str
    fields: tuple[str, ...]
    namespace: str | None = None
    primary_key: tuple[Path, ...] = ()
    default_cursor: Path = ()
    source_defined_cursor: bool = False
    source_modes: tuple[str, ...] = (FULL_REFRESH, INCREMENTAL)

    @property
    def sync_modes(self) -> list[str]:
        return [mode for source_mode in self.source_modes for mode in COMBINED_MODES[source_mode]]

    @property
    def field_paths(self) -> list[list[str]]:
        return [[name] for name in self.fields]

    def properties(self) -> dict[str, Any]:
        """The StreamProperties object GET /streams answers."""
        answer: dict[str, Any] = {
            "streamName": self.name,
            "syncModes": self.sync_modes,
            "defaultCursorField": list(self.default_cursor),
            "sourceDefinedCursorField": self.source_defined_cursor,
            "sourceDefinedPrimaryKey": [list(key) for key in self.primary_key],
            "propertyFields": self.field_paths,
        }
        if self.namespace is not None:
            answer["streamnamespace"] = self.namespace
        return answer


@dataclass(frozen=True)
class Connector:
    kind: str
    type: str
    definition_id: str
    secrets: tuple[Path, ...] = ()
    required: tuple[str, ...] = ()
    streams: tuple[Stream, ...] = ()
    generic: bool = False  # not described here: secrets found by key name, one fallback stream


def _pg_stream(name: str, *columns: str) -> Stream:
    return Stream(name, ("id", *columns, "created_at", "updated_at"), "public", (("id",),))


def _sf_stream(name: str, *columns: str) -> Stream:
    cursor = ("SystemModstamp",)
    fields = ("Id", *columns, "CreatedDate", "LastModifiedDate", "SystemModstamp")
    return Stream(name, fields, None, (("Id",),), cursor, True)


def _api_stream(name: str, cursor: str, *columns: str) -> Stream:
    return Stream(name, ("id", *columns, cursor), None, (("id",),), (cursor,), True)


_CONNECTORS: tuple[Connector, ...] = (
    Connector(
        SOURCE,
        "postgres",
        "decd338e-5647-4c0b-adf4-da0e75f5a750",
        secrets=(
            ("password",),
            ("tunnel_method", "tunnel_user_password"),
            ("tunnel_method", "ssh_key"),
            ("ssl_mode", "ca_certificate"),
            ("ssl_mode", "client_key"),
            ("ssl_mode", "client_key_password"),
        ),
        required=("host", "port", "database", "username"),
        streams=(
            _pg_stream("users", "email", "name"),
            _pg_stream("orders", "user_id", "amount", "status"),
            _pg_stream("payments", "order_id", "amount", "paid_at"),
        ),
    ),
    Connector(
        SOURCE,
        "salesforce",
        "b117307c-14b6-41aa-9422-947e34922962",
        secrets=(("client_secret",), ("refresh_token",)),
        required=("client_id", "client_secret", "refresh_token"),
        streams=(
            _sf_stream("Account", "Name", "Industry"),
            _sf_stream("Contact", "AccountId", "Email", "LastName"),
            _sf_stream("Opportunity", "AccountId", "Amount", "StageName"),
        ),
    ),
    Connector(
        SOURCE,
        "hubspot",
        "36c891d9-4bd9-43ac-bad2-10e12756272c",
        secrets=(("credentials", "access_token"), ("credentials", "client_secret"), ("credentials", "refresh_token")),
        required=("credentials",),
        streams=(
            _api_stream("contacts", "updatedAt", "email", "properties", "archived"),
            _api_stream("companies", "updatedAt", "name", "properties", "archived"),
            _api_stream("deals", "updatedAt", "dealname", "amount", "properties", "archived"),
        ),
    ),
    Connector(
        SOURCE,
        "mailchimp",
        "b03a9f3e-22a5-11eb-adc1-0242ac120002",
        secrets=(("apikey",), ("credentials", "apikey"), ("credentials", "access_token")),
        streams=(
            _api_stream("lists", "date_created", "name", "stats"),
            _api_stream("campaigns", "create_time", "type", "status", "send_time"),
        ),
    ),
    Connector(
        DESTINATION,
        "s3",
        "4816b78f-1489-44c1-9060-4b19d5fa9362",
        secrets=(("access_key_id",), ("secret_access_key",)),
        required=("s3_bucket_name", "s3_bucket_path", "s3_bucket_region", "format"),
    ),
)

_BY_TYPE: dict[tuple[str, str], Connector] = {(c.kind, c.type): c for c in _CONNECTORS}
_BY_DEFINITION: dict[tuple[str, str], Connector] = {(c.kind, c.definition_id): c for c in _CONNECTORS}
_GENERIC_NAMESPACE = uuid.UUID("5b0c6a7e-3f0e-4c36-9d8f-6a1f2f6c0b10")


def connector(kind: str, connector_type: str) -> Connector:
    """Knowledge about a connector type; unknown types get the generic fallback (id derived from the name)."""
    known = _BY_TYPE.get((kind, connector_type))
    if known is not None:
        return known
    definition_id = str(uuid.uuid5(_GENERIC_NAMESPACE, f"{kind}:{connector_type}"))
    fallback = Stream(f"{connector_type}_records", ("id", "data", "updated_at"), None, (("id",),), ("updated_at",))
    return Connector(kind, connector_type, definition_id, streams=(fallback,), generic=True)


def connector_by_definition(kind: str, definition_id: str) -> Connector | None:
    return _BY_DEFINITION.get((kind, definition_id))


def secret_paths(spec: Connector, configuration: Mapping[str, Any]) -> list[Path]:
    """Paths of the secret fields present in `configuration`."""
    if spec.generic:
        return _generic_secret_paths(configuration, ())
    return [path for path in spec.secrets if _get(configuration, path) is not None]


def _generic_secret_paths(configuration: Mapping[str, Any], prefix: Path) -> list[Path]:
    found: list[Path] = []
    for name, value in configuration.items():
        if isinstance(value, Mapping):
            found += _generic_secret_paths(value, (*prefix, name))
        elif _looks_secret(name):
            found.append((*prefix, name))
    return found


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _GENERIC_SECRET_NAMES or lowered.endswith("_secret")


def _get(configuration: Mapping[str, Any], path: Path) -> Any:
    node: Any = configuration
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return None
        node = node[name]
    return node


def _set(configuration: dict[str, Any], path: Path, value: Any) -> None:
    node = configuration
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value


def masked(spec: Connector, configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `configuration` with every secret replaced by the mask, as reads answer."""
    answer = copy.deepcopy(dict(configuration))
    for path in secret_paths(spec, configuration):
        _set(answer, path, MASK)
    return answer


def keep_masked_secrets(spec: Connector, new: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """`new` where every secret sent as the mask takes the stored value back (if one exists)."""
    for path in secret_paths(spec, new):
        previous = _get(stored, path)
        if _get(new, path) == MASK and previous is not None:
            _set(new, path, previous)
    return new


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in: objects merge key by key, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for name, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(name), Mapping):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = copy.deepcopy(value)
    return merged


def missing_required(spec: Connector, configuration: Mapping[str, Any]) -> list[str]:
    return [name for name in spec.required if configuration.get(name) is None]


def find_stream(spec: Connector, name: str) -> Stream | None:
    return next((stream for stream in spec.streams if stream.name == name), None)
