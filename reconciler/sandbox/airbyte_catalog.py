"""Connector knowledge for the Airbyte stand-in: definition ids, secret fields, required fields, discovered streams.

What a real Airbyte learns from connector specs (`airbyte_secret`, `required`) and from running
`discover`, written down for the handful of connectors the demo uses, plus a generic fallback.
Pure data and pure functions; the server (airbyte_server.py) applies them.
"""

from __future__ import annotations

import copy
import re
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


# --- Configured catalog: a connection's streams, checked the way AirbyteCatalogHelper checks them ---


class CatalogError(ValueError):
    """A stream configuration the server rejects with 400 bad-request."""


def configure_streams(spec: Connector, requested: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The configured streams for a connection: every discovered stream when none (or []) were sent."""
    if not requested:
        return [_configured(stream, {}) for stream in spec.streams]
    valid = [stream.name for stream in spec.streams]
    seen: set[str] = set()
    for item in requested:
        name = item.get("name")
        if name not in valid:
            raise CatalogError(f"Invalid stream found. The list of valid streams include: {valid}.")
        if name in seen:
            raise CatalogError(f"Duplicate stream found in configuration for: {name}.")
        seen.add(name)
    return [_configured(_stream(spec, item["name"]), item) for item in requested]


def _stream(spec: Connector, name: str) -> Stream:
    stream = find_stream(spec, name)
    assert stream is not None
    return stream


def _configured(stream: Stream, item: Mapping[str, Any]) -> dict[str, Any]:
    sync_mode = item.get("syncMode")
    _check_selected_fields(stream, item)
    if sync_mode is not None:
        _check_sync_mode(stream, item, sync_mode)
    mode = sync_mode or DEFAULT_SYNC_MODE
    answer: dict[str, Any] = {"name": stream.name}
    if stream.namespace is not None:
        answer["namespace"] = stream.namespace  # the discovered namespace; a sent one is ignored
    answer["syncMode"] = mode
    answer["cursorField"] = _cursor(stream, item) if mode in INCREMENTAL_MODES else list(stream.default_cursor)
    answer["primaryKey"] = _primary_key(stream, item, mode)
    answer["selectedFields"] = copy.deepcopy(item.get("selectedFields") or [])
    answer["mappers"] = [_mapper(mapper) for mapper in item.get("mappers") or []]
    answer["includeFiles"] = bool(item.get("includeFiles") or False)
    return answer


def _check_sync_mode(stream: Stream, item: Mapping[str, Any], sync_mode: str) -> None:
    if sync_mode not in SYNC_MODE_ENUM:
        raise CatalogError(f"Invalid syncMode {sync_mode!r}. Allowed values: {list(SYNC_MODE_ENUM)}.")
    if sync_mode not in stream.sync_modes:
        raise CatalogError(
            f"Cannot set sync mode to {sync_mode} for stream {stream.name}. Valid sync modes are: {stream.sync_modes}"
        )
    if sync_mode in INCREMENTAL_MODES:
        _check_cursor(stream, item.get("cursorField"))
    if sync_mode == "incremental_deduped_history":
        _check_primary_key(stream, item.get("primaryKey"))


def _check_cursor(stream: Stream, cursor: list[str] | None) -> None:
    if stream.source_defined_cursor:
        if cursor and set(cursor) != set(stream.default_cursor):
            raise CatalogError(
                f"Cursor Field {cursor} is already defined by source for stream: {stream.name}. "
                "Do not include a cursor field configuration for this stream."
            )
    elif cursor:
        if list(cursor) not in stream.field_paths:
            raise CatalogError(
                f"Invalid cursor field for stream: {stream.name}. "
                f"The list of valid cursor fields include: {stream.field_paths}."
            )
    elif not stream.default_cursor:
        raise CatalogError(
            f"No default cursor field for stream: {stream.name}. "
            "Please include a cursor field configuration for this stream."
        )


def _check_primary_key(stream: Stream, primary_key: list[list[str]] | None) -> None:
    defined = [list(key) for key in stream.primary_key]
    if defined and primary_key and primary_key != defined:
        raise CatalogError(
            f"Primary key for stream: {stream.name} is already pre-defined. "
            f"Please remove the primaryKey or provide the value as {defined}."
        )
    if not defined and not primary_key:
        raise CatalogError(
            f"No default primary key for stream: {stream.name}. "
            "Please include a primary key configuration for this stream."
        )
    for key in primary_key or []:
        if key not in stream.field_paths:
            raise CatalogError(
                f"Invalid cursor field for stream: {stream.name}. "
                f"The list of valid primary keys fields: {stream.field_paths}."
            )


def _check_selected_fields(stream: Stream, item: Mapping[str, Any]) -> None:
    selected = item.get("selectedFields")
    if selected is None:
        return
    if not selected:
        raise CatalogError(
            f"No fields selected for stream {stream.name}. "
            f"The list of valid field names includes: {list(stream.fields)}."
        )
    names: list[str] = []
    for entry in selected:
        path = (entry or {}).get("fieldPath") or []
        if not path:
            raise CatalogError(f"Selected field path cannot be empty for stream:  {stream.name}.")
        if len(path) > 1:
            raise CatalogError(f"Nested field selection not supported for stream {stream.name}.")
        names.append(path[0])
    if len(set(names)) != len(names):
        raise CatalogError(f"Duplicate fields selected in configuration for stream: {stream.name}.")
    if not set(names) <= set(stream.fields):
        raise CatalogError(
            f"Invalid fields selected for stream {stream.name}. "
            f"The list of valid field names includes: {list(stream.fields)}."
        )


def _cursor(stream: Stream, item: Mapping[str, Any]) -> list[str]:
    sent = item.get("cursorField")
    if stream.source_defined_cursor or not sent:
        return list(stream.default_cursor)
    return list(sent)


def _primary_key(stream: Stream, item: Mapping[str, Any], mode: str) -> list[list[str]]:
    """Source-defined keys win; a sent key counts only in modes that use one (else it is silently dropped)."""
    defined = [list(key) for key in stream.primary_key]
    if defined or mode not in (*INCREMENTAL_MODES, "full_refresh_overwrite_deduped"):
        return defined
    return copy.deepcopy(list(item.get("primaryKey") or []))


def _mapper(mapper: Mapping[str, Any]) -> dict[str, Any]:
    """Mappers come back with a server-assigned id."""
    answer = copy.deepcopy(dict(mapper))
    answer.setdefault("id", str(uuid.uuid4()))
    return answer


# --- Schedules: Quartz cron, as the server's cron-utils parser sees it ---

_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
_CRON_FIELDS: tuple[tuple[str, int, int, str], ...] = (
    ("seconds", 0, 59, ""),
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, ""),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2099, ""),
)


def normalize_cron(expression: str) -> str:
    """The expression without a trailing UTC if it is valid Quartz cron at most hourly; else CatalogError."""
    text = expression.strip()
    if text.endswith("UTC"):
        text = text.replace("UTC", "").strip()
    parts = text.split()
    try:
        _check_cron(parts)
    except ValueError as error:
        raise CatalogError(
            f"The cron expression {expression} is not valid. Error: {error}. Please check the cron expression format "
            "at https://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html"
        ) from error
    if not parts[0].isdigit() or not parts[1].isdigit():
        raise CatalogError(
            f"The cron expression {expression} is not valid or is less than the one hour minimum. "
            "The seconds and minutes values cannot be `*`."
        )
    return " ".join(parts)


def _check_cron(parts: list[str]) -> None:
    if len(parts) not in (6, 7):
        raise ValueError(f"Cron expression contains {len(parts)} parts but we expect one of [6, 7]")
    for value, (name, low, high, names) in zip(parts, _CRON_FIELDS, strict=False):
        for part in value.split(","):
            _check_cron_part(part, name, low, high, names)
    if (parts[3] == "?") == (parts[5] == "?"):
        raise ValueError("Both, a day-of-week AND a day-of-month parameter, are not supported.")


def _check_cron_part(part: str, name: str, low: int, high: int, names: str) -> None:
    if part == "*" or (part == "?" and name in ("day-of-month", "day-of-week")):
        return
    base, _, step = part.partition("/")
    if step and not step.isdigit():
        raise ValueError(f"Invalid {name} step {step!r}")
    if base == "*":
        return
    if name == "day-of-month" and re.fullmatch(r"L(-\d+)?|LW|\d+W", base):
        return
    if name == "day-of-week" and re.fullmatch(r"(\d|[A-Za-z]{3})(L|#[1-5])|L", base):
        base = re.sub(r"(L|#[1-5])$", "", base) or "1"
    for bound in base.split("-", 1):
        _check_cron_value(bound, name, low, high, names)


def _check_cron_value(token: str, name: str, low: int, high: int, names: str) -> None:
    if names and re.fullmatch(names, token.upper()):
        return
    if not token.isdigit() or not low <= int(token) <= high:
        raise ValueError(f"Invalid {name} value {token!r}: expected {low}-{high}")
