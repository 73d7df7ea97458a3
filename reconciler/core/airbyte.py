"""Core rules for Airbyte: specs and API answers -> comparable fields, and fields -> API payloads.

Pure. This is where Airbyte's quirks are absorbed so the planner sees no phantom changes:
cron's " UTC" suffix, null vs [] for selectedFields, unstable stream order (streams are keyed
by namespace+name), masked secrets ("**********"), ids vs names for a connection's ends.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reconciler.core.model import DesiredResource, Path, ResourceKey, SecretSlot
from reconciler.errors import SpecProblem
from reconciler.spec.airbyte import ConnectionSpec, DestinationSpec, SourceSpec, StreamSpec
from reconciler.spec.cron import strip_utc
from reconciler.spec.loader import AirbyteSelection
from reconciler.spec.secrets import SecretRef, is_secret_ref

SYSTEM = "airbyte"
SOURCE, DESTINATION, CONNECTION = "source", "destination", "connection"
MASK = "**********"
STREAMS_PATH: Path = ("streams",)

Fingerprints = Callable[[SecretRef], str]


def key(kind: str, name: str) -> ResourceKey:
    return ResourceKey(SYSTEM, kind, name)


def split_secrets(configuration: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[Path, SecretRef]]]:
    """Configuration without its secret references, and the references by path."""
    plain: dict[str, Any] = {}
    refs: list[tuple[Path, SecretRef]] = []
    for name, value in configuration.items():
        if is_secret_ref(value):
            refs.append(((name,), SecretRef.model_validate(value["secretRef"])))
        elif isinstance(value, Mapping):
            inner, inner_refs = split_secrets(value)
            plain[name] = inner
            refs += [((name, *path), ref) for path, ref in inner_refs]
        else:
            plain[name] = copy.deepcopy(value)
    return plain, refs


def secret_refs(selection: AirbyteSelection) -> list[SecretRef]:
    """Every secret reference the selection uses, for the engine to resolve."""
    refs: list[SecretRef] = []
    connectors: list[SourceSpec | DestinationSpec] = [*selection.sources, *selection.destinations]
    for spec in connectors:
        refs += [ref for _, ref in split_secrets(spec.configuration)[1]]
    return refs


def _connector(kind: str, spec: SourceSpec | DestinationSpec, fingerprints: Fingerprints) -> DesiredResource:
    plain, refs = split_secrets(spec.configuration)
    type_field = "sourceType" if kind == SOURCE else "destinationType"
    fields: dict[str, Any] = {"name": spec.name, type_field: spec.type, "configuration": plain}
    if spec.definition_id:
        fields["definitionId"] = spec.definition_id
    slots = tuple(SecretSlot(("configuration", *path), ref.describe(), fingerprints(ref)) for path, ref in refs)
    return DesiredResource(key(kind, spec.name), fields, slots, (), replace_on=(type_field, "definitionId"))


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


def unmask(configuration: Any) -> Any:
    """Configuration without masked secret values (they cannot be compared)."""
    if isinstance(configuration, Mapping):
        return {name: unmask(value) for name, value in configuration.items() if value != MASK}
    return copy.deepcopy(configuration)


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
    problems: list[SpecProblem] = []
    for path in masked_paths(answer.get("configuration") or {}):
        value = _at(spec.configuration, path)
        if value is None or is_secret_ref(value):
            continue
        file, line = spec.where(path)
        field = ".".join(str(step) for step in ("configuration", *path))
        message = "Airbyte masks this field, so it is a secret: write {secretRef: {env: NAME}}, not a value"
        problems.append(SpecProblem(file, line, field, message))
    return problems


def live_connector_fields(kind: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    type_field = "sourceType" if kind == SOURCE else "destinationType"
    configuration = unmask(answer.get("configuration") or {})
    configuration.pop(type_field, None)
    fields = {
        "name": answer.get("name"),
        type_field: answer.get(type_field) or (answer.get("configuration") or {}).get(type_field),
        "configuration": configuration,
    }
    if answer.get("definitionId"):
        fields["definitionId"] = answer["definitionId"]
    return fields


def _live_schedule(schedule: Mapping[str, Any] | None) -> dict[str, Any]:
    if not schedule:
        return {"scheduleType": "manual"}
    kind = schedule.get("scheduleType")
    if kind == "cron":
        return {"scheduleType": "cron", "cronExpression": strip_utc(schedule.get("cronExpression") or "")}
    return {key: value for key, value in schedule.items() if value is not None}


def _live_stream(stream: Mapping[str, Any]) -> dict[str, Any]:
    selected = stream.get("selectedFields") or []
    return {
        "syncMode": stream.get("syncMode"),
        "cursorField": list(stream.get("cursorField") or []),
        "primaryKey": [list(part) for part in stream.get("primaryKey") or []],
        "selectedFields": sorted(".".join(item.get("fieldPath", [])) for item in selected),
    }


def live_connection_fields(
    answer: Mapping[str, Any], names_by_id: Mapping[str, str], desired: DesiredResource | None
) -> dict[str, Any]:
    """A connection answer in desired shape: ends by spec name, streams keyed, schedule without UTC."""
    wanted_streams = desired.fields.get("streams", {}) if desired is not None else {}
    streams: dict[str, Any] = {}
    for stream in (answer.get("configurations") or {}).get("streams") or []:
        namespace, name = stream.get("namespace"), stream.get("name", "")
        full = stream_key(namespace, name)
        streams[full if full in wanted_streams or name not in wanted_streams else name] = _live_stream(stream)
    source_id, destination_id = answer.get("sourceId", ""), answer.get("destinationId", "")
    return {
        "name": answer.get("name"),
        "source": names_by_id.get(source_id, f"<unmanaged {source_id}>"),
        "destination": names_by_id.get(destination_id, f"<unmanaged {destination_id}>"),
        "schedule": _live_schedule(answer.get("schedule")),
        "status": answer.get("status"),
        "namespaceDefinition": answer.get("namespaceDefinition"),
        "namespaceFormat": answer.get("namespaceFormat"),
        "prefix": answer.get("prefix") or "",
        "nonBreakingSchemaUpdatesBehavior": answer.get("nonBreakingSchemaUpdatesBehavior"),
        "streams": streams,
    }


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
    type_field = "sourceType" if kind == SOURCE else "destinationType"
    configuration = copy.deepcopy(dict(desired.fields["configuration"]))
    configuration[type_field] = desired.fields[type_field]
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
