"""Core rules for Airbyte: specs and API answers -> comparable fields, and fields -> API payloads.

Pure. This is where Airbyte's quirks are absorbed so the planner sees no phantom changes:
cron's " UTC" suffix, null vs [] for selectedFields, unstable stream order (streams are keyed
by namespace+name), masked secrets ("**********"), ids vs names for a connection's ends.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import DesiredResource, Path, ResourceKey, SecretSlot
from reconciler.errors import SpecProblem
from reconciler.spec.cron import strip_utc
from reconciler.spec.secrets import SecretRef, is_secret_ref, secret_ref
from reconciler.systems.airbyte.loading import AirbyteSelection
from reconciler.systems.airbyte.spec import ConnectionSpec, DestinationSpec, SourceSpec, StreamSpec

SYSTEM = "airbyte"
SOURCE, DESTINATION, CONNECTION = "source", "destination", "connection"
MASK = "**********"
STREAMS_PATH: Path = ("streams",)

Fingerprints = Callable[[SecretRef], str]


def key(kind: str, name: str) -> ResourceKey:
    return ResourceKey(SYSTEM, kind, name)


_IMMUTABLE = (str, int, float, bool, type(None))
"""Scalars a configuration shares rather than copies."""


def split_secrets(configuration: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[Path, SecretRef]]]:
    """Configuration without its secret references, and the references by path."""
    plain: dict[str, Any] = {}
    refs: list[tuple[Path, SecretRef]] = []
    for name, value in configuration.items():
        if is_secret_ref(value):
            refs.append(((name,), secret_ref(value["secretRef"])))
        elif isinstance(value, Mapping):
            inner, inner_refs = split_secrets(value)
            plain[name] = inner
            refs += [((name, *path), ref) for path, ref in inner_refs]
        else:
            plain[name] = value if type(value) in _IMMUTABLE else copy.deepcopy(value)
    return plain, refs


def type_field(kind: str) -> str:
    return "sourceType" if kind == SOURCE else "destinationType"


def _connector(kind: str, spec: SourceSpec | DestinationSpec, fingerprints: Fingerprints) -> DesiredResource:
    plain, refs = split_secrets(spec.configuration)
    fields: dict[str, Any] = {"name": spec.name}
    if spec.type:
        fields[type_field(kind)] = spec.type
    if spec.definition_id:
        fields["definitionId"] = spec.definition_id
    fields["configuration"] = plain
    slots = tuple(SecretSlot(("configuration", *path), ref.describe(), fingerprints(ref)) for path, ref in refs)
    return DesiredResource(key(kind, spec.name), fields, slots, (), replace_on=(type_field(kind), "definitionId"))


def stream_key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _stream_fields(stream: StreamSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if stream.sync_mode is not None:
        fields["syncMode"] = stream.sync_mode.value
    if stream.cursor_field is not None:
        fields["cursorField"] = list(stream.cursor_field)
    if stream.primary_key is not None:
        fields["primaryKey"] = [list(part) for part in stream.primary_key]
    if stream.selected_fields is not None:
        fields["selectedFields"] = sorted(stream.selected_fields)
    return fields


def schedule_fields(spec: ConnectionSpec) -> dict[str, Any] | None:
    if spec.schedule is None:
        return None
    if spec.schedule.type == "manual":
        return {"scheduleType": "manual"}
    return {"scheduleType": "cron", "cronExpression": strip_utc(spec.schedule.cron or "")}


def _connection(spec: ConnectionSpec) -> DesiredResource:
    fields: dict[str, Any] = {"name": spec.name, "source": spec.source, "destination": spec.destination}
    optional: dict[str, Any] = {
        "schedule": schedule_fields(spec),
        "status": spec.status,
        "namespaceDefinition": spec.namespace_definition.value if spec.namespace_definition else None,
        "namespaceFormat": spec.namespace_format,
        "prefix": spec.prefix,
        "nonBreakingSchemaUpdatesBehavior": (
            spec.non_breaking_schema_updates_behavior.value if spec.non_breaking_schema_updates_behavior else None
        ),
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    exact: tuple[Path, ...] = ()
    if spec.streams is not None:
        fields["streams"] = {stream_key(s.namespace, s.name): _stream_fields(s) for s in spec.streams}
        exact = (STREAMS_PATH,)
    depends = (key(SOURCE, spec.source), key(DESTINATION, spec.destination))
    return DesiredResource(key(CONNECTION, spec.name), fields, (), depends, ("source", "destination"), exact)


def desired_resources(selection: AirbyteSelection, fingerprints: Fingerprints) -> list[DesiredResource]:
    """The selection as core resources."""
    resources = [_connector(SOURCE, spec, fingerprints) for spec in selection.sources]
    resources += [_connector(DESTINATION, spec, fingerprints) for spec in selection.destinations]
    resources += [_connection(spec) for spec in selection.connections]
    return resources


# ---- live answers -> comparable fields -------------------------------------------------------


def unmask(configuration: Any, share: Share = str) -> Any:
    """Configuration without masked secret values (they cannot be compared); its texts through `share`."""
    if isinstance(configuration, Mapping):
        return {share(name): unmask(value, share) for name, value in configuration.items() if value != MASK}
    if isinstance(configuration, str):
        return share(configuration)
    return copy.deepcopy(configuration)


Share = Callable[[str], str]
"""Gives one copy of equal texts (`Texts.share`), or the text itself (`str`)."""


class Texts:
    """One copy of each text the listed answers of a workspace repeat (stream names, sync modes, schedules, the
    ids of a connection's ends, ...), so what observe keeps of 5,000 connections holds each once. Safe to share
    between listing threads (one dict operation)."""

    def __init__(self) -> None:
        self._kept: dict[str, str] = {}

    def share(self, text: str) -> str:
        return self._kept.setdefault(text, text)


def _shared(value: Any, share: Share) -> Any:
    return share(value) if isinstance(value, str) else value


def _shared_list(items: Any, share: Share) -> list[Any]:
    return [_shared(item, share) for item in items or []]


def masked_paths(tree: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of a configuration the live system answered masked: secrets, whatever their names."""
    if tree == MASK:
        yield prefix
    elif isinstance(tree, Mapping):
        for name, value in tree.items():
            yield from masked_paths(value, (*prefix, str(name)))
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            yield from masked_paths(item, (*prefix, index))


def _at(tree: Any, path: tuple[str | int, ...]) -> Any:
    """The value at `path`, or None where the tree has none."""
    for step in path:
        found = (isinstance(tree, Mapping) and step in tree) or (
            isinstance(tree, list) and isinstance(step, int) and step < len(tree)
        )
        if not found:
            return None
        tree = tree[step]
    return tree


def values_where_masked(spec: SourceSpec | DestinationSpec, answer: Mapping[str, Any]) -> list[SpecProblem]:
    """Fields the specs give a value where Airbyte masks one: secrets written inline, refused at their line.

    Airbyte masks every field its connector spec marks secret, named like one or not; a value
    there would be printed in every plan and never compare equal to the mask.
    """
    return values_at_masked_paths(spec, tuple(masked_paths(answer.get("configuration") or {})))


def values_at_masked_paths(
    spec: SourceSpec | DestinationSpec, masked: Sequence[tuple[str | int, ...]]
) -> list[SpecProblem]:
    """`values_where_masked`, from the paths the live configuration masks."""
    problems: list[SpecProblem] = []
    for path in masked:
        value = _at(spec.configuration, path)
        if value is None or is_secret_ref(value):
            continue
        file, line = spec.where(path)
        field = ".".join(str(step) for step in ("configuration", *path))
        message = "Airbyte masks this field, so it is a secret: write {secretRef: {env: NAME}}, not a value"
        problems.append(SpecProblem(file, line, field, message))
    return problems


@dataclass(frozen=True, slots=True)
class ListedConnector:
    """What observe keeps of one listed source or destination, made as its page arrives (before the specs are
    known): the raw answer is dropped, and `connector_fields` finishes it against the desired resource."""

    id: str
    label: str
    """The name it is matched by."""
    name: Any
    configuration: Any
    """Unmasked, without the type field."""
    live_type: Any
    """The type the answer names, at its top or in its configuration."""
    named_type: Any
    """The type at the answer's top only (`unreadable_type`)."""
    definition_id: Any
    masked: tuple[tuple[str | int, ...], ...]
    """Where the live configuration is masked (`values_at_masked_paths`)."""


def listed_connector(kind: str, object_id: str, answer: Mapping[str, Any], share: Share = str) -> ListedConnector:
    """What observe keeps of a listed source or destination `answer` (its repeated texts through `share`)."""
    field = type_field(kind)
    live_configuration = answer.get("configuration") or {}
    configuration = unmask(live_configuration, share)
    configuration.pop(field, None)
    return ListedConnector(
        object_id,
        str(answer.get("name", "")),
        answer.get("name"),
        configuration,
        answer.get(field) or live_configuration.get(field),
        answer.get(field),
        answer.get("definitionId"),
        tuple(masked_paths(live_configuration)),
    )


def live_connector_fields(kind: str, answer: Mapping[str, Any], desired: DesiredResource | None) -> dict[str, Any]:
    """A source or destination answer in desired shape, its identity compared as the server can tell it.

    Airbyte names the type only of connector definitions it knows by id (a custom one reads back
    with an empty type), and `definitionId` always comes back: a spec with a definitionId is
    compared by it alone, and a type that cannot be read back is taken as the desired one
    (never a replace from an unreadable type; `unreadable_type` says so in the plan).
    """
    return connector_fields(kind, listed_connector(kind, "", answer), desired)


def connector_fields(kind: str, listed: ListedConnector, desired: DesiredResource | None) -> dict[str, Any]:
    """`live_connector_fields` of a listed connector."""
    field = type_field(kind)
    fields: dict[str, Any] = {"name": listed.name}
    wanted = desired.fields if desired is not None else {}
    if field in wanted and ("definitionId" in wanted or not listed.live_type):
        fields[field] = wanted[field]
    else:
        fields[field] = listed.live_type or None
    if listed.definition_id:
        fields["definitionId"] = listed.definition_id
    fields["configuration"] = listed.configuration
    return fields


def unreadable_type(kind: str, answer: Mapping[str, Any], desired: DesiredResource | None) -> str | None:
    """A plan warning when a desired type cannot be compared: the server does not name the live definition."""
    return listed_unreadable_type(kind, listed_connector(kind, "", answer), desired)


def listed_unreadable_type(kind: str, listed: ListedConnector, desired: DesiredResource | None) -> str | None:
    """`unreadable_type` of a listed connector."""
    field = type_field(kind)
    if desired is None or field not in desired.fields or "definitionId" in desired.fields or listed.named_type:
        return None
    return (
        f"{desired.key}: Airbyte does not name the type of definition {listed.definition_id} "
        f"(a custom connector), so {field} {desired.fields[field]!r} is not compared; "
        "add its definitionId to the spec to have a change of connector detected"
    )


def _live_schedule(schedule: Mapping[str, Any] | None, share: Share) -> dict[str, Any]:
    if not schedule:
        return {"scheduleType": "manual"}
    kind = schedule.get("scheduleType")
    if kind == "cron":
        return {"scheduleType": "cron", "cronExpression": share(strip_utc(schedule.get("cronExpression") or ""))}
    return {key: value for key, value in schedule.items() if value is not None}


def _live_stream(stream: Mapping[str, Any], share: Share) -> dict[str, Any]:
    selected = stream.get("selectedFields") or []
    return {
        "syncMode": _shared(stream.get("syncMode"), share),
        "cursorField": _shared_list(stream.get("cursorField"), share),
        "primaryKey": [_shared_list(part, share) for part in stream.get("primaryKey") or []],
        "selectedFields": sorted(share(".".join(item.get("fieldPath", []))) for item in selected),
    }


@dataclass(frozen=True, slots=True)
class ListedConnection:
    """What observe keeps of one listed connection, made as its page arrives: `connection_fields` finishes it
    (its ends by spec name, its streams keyed as the desired resource keys them)."""

    id: str
    label: str
    """The name it is matched by."""
    name: Any
    source_id: Any
    destination_id: Any
    settings: dict[str, Any]
    """Schedule (without UTC), status, namespace settings, prefix and schema-change behaviour, in field order."""
    streams: tuple[tuple[str, str, dict[str, Any]], ...]
    """Each stream as (namespace/name, name, its live settings)."""


def listed_connection(object_id: str, answer: Mapping[str, Any], share: Share = str) -> ListedConnection:
    """What observe keeps of a listed connection `answer` (its repeated texts through `share`)."""
    streams = tuple(
        (
            share(stream_key(stream.get("namespace"), stream.get("name", ""))),
            share(stream.get("name", "")),
            _live_stream(stream, share),
        )
        for stream in (answer.get("configurations") or {}).get("streams") or []
    )
    settings = {
        "schedule": _live_schedule(answer.get("schedule"), share),
        **{name: _shared(answer.get(name), share) for name in _CONNECTION_SETTINGS},
    }
    settings["prefix"] = settings["prefix"] or ""
    return ListedConnection(
        object_id,
        str(answer.get("name", "")),
        answer.get("name"),
        _shared(answer.get("sourceId", ""), share),
        _shared(answer.get("destinationId", ""), share),
        settings,
        streams,
    )


_CONNECTION_SETTINGS = (
    "status",
    "namespaceDefinition",
    "namespaceFormat",
    "prefix",
    "nonBreakingSchemaUpdatesBehavior",
)


def live_connection_fields(
    answer: Mapping[str, Any], names_by_id: Mapping[str, str], desired: DesiredResource | None
) -> dict[str, Any]:
    """A connection answer in desired shape: ends by spec name, streams keyed, schedule without UTC."""
    return connection_fields(listed_connection("", answer), names_by_id, desired)


def connection_fields(
    listed: ListedConnection, names_by_id: Mapping[str, str], desired: DesiredResource | None
) -> dict[str, Any]:
    """`live_connection_fields` of a listed connection."""
    wanted_streams = desired.fields.get("streams", {}) if desired is not None else {}
    streams: dict[str, Any] = {}
    for full, name, stream in listed.streams:
        streams[full if full in wanted_streams or name not in wanted_streams else name] = stream
    source_id, destination_id = listed.source_id, listed.destination_id
    return {
        "name": listed.name,
        "source": names_by_id.get(source_id, f"<unmanaged {source_id}>"),
        "destination": names_by_id.get(destination_id, f"<unmanaged {destination_id}>"),
        **listed.settings,
        "streams": streams,
    }


def unmanaged_connections(
    answers: Sequence[Mapping[str, Any]], managed_ids: set[str], names_by_id: Mapping[str, str]
) -> dict[ResourceKey, tuple[str, ...]]:
    """Connections outside the specs and records, by each managed source or destination they use.

    Deleting a source or destination makes Airbyte deprecate its connections: these are what a
    replace would kill without the specs saying so.
    """
    listed = [listed_connection(str(answer.get("connectionId")), answer) for answer in answers]
    return unmanaged_listed_connections(listed, managed_ids, names_by_id)


def unmanaged_listed_connections(
    listed: Sequence[ListedConnection], managed_ids: set[str], names_by_id: Mapping[str, str]
) -> dict[ResourceKey, tuple[str, ...]]:
    """`unmanaged_connections` of listed connections."""
    found: dict[ResourceKey, list[str]] = {}
    for connection in listed:
        if connection.id in managed_ids:
            continue
        for kind, end_id in ((SOURCE, connection.source_id), (DESTINATION, connection.destination_id)):
            if end_id in names_by_id:
                found.setdefault(key(kind, names_by_id[end_id]), []).append(
                    f"connection {connection.name!r} ({connection.id})"
                )
    return {end: tuple(described) for end, described in found.items()}


# ---- desired fields -> API payloads ---------------------------------------------------------


def _set_path(tree: dict[str, Any], path: Path, value: Any) -> None:
    node = tree
    for step in path[:-1]:
        node = node.setdefault(step, {})
    node[path[-1]] = value


def connector_payload(
    kind: str,
    desired: DesiredResource,
    secrets: Mapping[Path, str],
    workspace_id: str | None,
    *,
    full: bool,
) -> dict[str, Any]:
    """Create (full) or PATCH body of a source/destination; `secrets` holds only values to send."""
    configuration = copy.deepcopy(dict(desired.fields["configuration"]))
    if type_field(kind) in desired.fields:
        configuration[type_field(kind)] = desired.fields[type_field(kind)]
    body: dict[str, Any] = {"name": desired.fields["name"], "configuration": configuration}
    for path, value in secrets.items():
        _set_path(body, path, value)
    if full:
        if workspace_id:
            body["workspaceId"] = workspace_id
        if "definitionId" in desired.fields:
            body["definitionId"] = desired.fields["definitionId"]
    return body


def _stream_payload(name_key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    namespace, _, name = name_key.rpartition("/")
    stream: dict[str, Any] = {"name": name}
    if namespace:
        stream["namespace"] = namespace
    for field in ("syncMode", "cursorField", "primaryKey"):
        if field in fields:
            stream[field] = fields[field]
    if "selectedFields" in fields:
        stream["selectedFields"] = [{"fieldPath": path.split(".")} for path in fields["selectedFields"]]
    return stream


KEPT_STREAM_SETTINGS = (
    "syncMode",
    "cursorField",
    "primaryKey",
    "selectedFields",
    "mappers",
    "destinationObjectName",
    "includeFiles",
)
"""Stream settings Airbyte resets when a stream is sent without them (it rebuilds each sent stream)."""


def keep_live_stream_settings(
    streams: Sequence[Mapping[str, Any]], live: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Stream payloads completed with the live value of every setting the spec leaves out.

    Sending a stream makes Airbyte rebuild it from discovery, so a setting made in the UI and not
    declared in the specs (selected fields, mappers, a destination object name, ...) would be
    silently reset; sending its live value keeps it. Unset values (empty lists, false) are not sent.
    """
    by_key = {(stream.get("namespace"), stream.get("name")): stream for stream in live}
    by_name: dict[Any, list[Mapping[str, Any]]] = {}
    for stream in live:
        by_name.setdefault(stream.get("name"), []).append(stream)
    completed: list[dict[str, Any]] = []
    for stream in streams:
        twin = by_key.get((stream.get("namespace"), stream.get("name")))
        candidates = by_name.get(stream.get("name"), [])
        if twin is None and "namespace" not in stream and len(candidates) == 1:
            twin = candidates[0]
        merged = dict(stream)
        for setting in KEPT_STREAM_SETTINGS:
            value = (twin or {}).get(setting)
            if setting not in merged and value not in (None, [], False, ""):
                merged[setting] = copy.deepcopy(value)
        completed.append(merged)
    return completed


def connection_payload(fields: Mapping[str, Any], ids: Mapping[ResourceKey, str], *, full: bool) -> dict[str, Any]:
    """Create (full) or PATCH body of a connection from (a subset of) its desired fields."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "source":
            body["sourceId"] = ids[key(SOURCE, value)]
        elif name == "destination":
            body["destinationId"] = ids[key(DESTINATION, value)]
        elif name == "streams":
            body["configurations"] = {"streams": [_stream_payload(k, v) for k, v in value.items()]}
        elif name == "schedule":
            body["schedule"] = dict(value)
        else:
            body[name] = value
    if not full:
        body.pop("sourceId", None)
        body.pop("destinationId", None)
    return body
