"""Airbyte stand-in, connection checks: a connection's configured streams and cron schedule, checked like the server.

Used by airbyte_connections.py on every create and patch; the streams are checked against what
airbyte_catalog.py knows of the source (discovered streams, their fields, cursors and keys). Both
raise CatalogError with the server's own wording, which the handlers answer as a 400.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from typing import Any

from reconciler.sandbox.airbyte_catalog import (
    DEFAULT_SYNC_MODE,
    INCREMENTAL_MODES,
    SYNC_MODE_ENUM,
    Connector,
    Stream,
    find_stream,
)

# --- Configured catalog: a connection's streams, checked the way AirbyteCatalogHelper checks them ---


class CatalogError(ValueError):
    """A stream configuration the server rejects with 400 bad-request."""


def configure_streams(spec: Connector, requested: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The configured streams for a connection: every discovered stream when none (or []) were sent.

    Each sent stream is rebuilt from discovery, as the server does: settings the request leaves out
    (selected fields, mappers, destination object name) are reset, not kept from before.
    """
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
    if item.get("destinationObjectName"):  # like the rest, reset when a stream is sent without it
        answer["destinationObjectName"] = str(item["destinationObjectName"])
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
