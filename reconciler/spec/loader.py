"""Spec loading, step 2: shared specs + one environment file -> a validated `Environment`.

Pure: it takes the files' texts (`{relative path: text}`) and the variables for `${VAR}`,
and either returns the environment's desired state or raises `SpecError` listing every
problem as `file:line: field: message`. Reading the files from disk is `spec.files`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler.errors import SpecError, SpecProblem
from reconciler.spec.airbyte import ConnectionSpec, DestinationSpec, SourceSpec
from reconciler.spec.environment import EnvironmentFile, interpolate_tree
from reconciler.spec.secrets import SecretRef, iter_inline_secrets, iter_secret_refs
from reconciler.spec.superset_loader import SUPERSET_SPEC_DIR, SupersetSelection, load_superset, read_superset_specs
from reconciler.spec.workloads import ComponentSpec, ImageVersion, WorkloadsEnvironment, WorkloadsFile
from reconciler.spec.yamlsource import (
    LocatedList,
    LocatedMap,
    YamlSyntaxError,
    deep_merge,
    locate,
    one_line,
    parse_yaml,
)

AIRBYTE_SPEC_DIR = "specs/airbyte/"
WORKLOADS_SPEC = "specs/workloads.yaml"
ENVIRONMENT_DIR = "environments/"
AIRBYTE_KINDS = ("sources", "destinations", "connections")

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class AirbyteSelection:
    """The Airbyte resources that exist in one environment, overrides applied."""

    sources: tuple[SourceSpec, ...]
    destinations: tuple[DestinationSpec, ...]
    connections: tuple[ConnectionSpec, ...]


@dataclass(frozen=True)
class WorkloadsSelection:
    """The image each component runs in one environment, and where the image is carried."""

    settings: WorkloadsEnvironment
    components: dict[str, ComponentSpec]
    images: dict[str, ImageVersion]


@dataclass(frozen=True)
class Environment:
    """One environment's desired state, validated."""

    name: str
    file: str
    settings: EnvironmentFile
    airbyte: AirbyteSelection | None
    workloads: WorkloadsSelection | None = None
    superset: SupersetSelection | None = None


class _Problems:
    def __init__(self) -> None:
        self.items: list[SpecProblem] = []

    def at(self, tree: Any, path: Iterable[Any], message: str, *, field: str | None = None) -> None:
        steps = [step for step in path]
        file, line = locate(tree, steps)
        label = field if field is not None else ".".join(str(step) for step in steps)
        self.items.append(SpecProblem(file, line, one_line(label), message))

    def from_validation(self, tree: Any, prefix: tuple[Any, ...], error: ValidationError) -> None:
        for detail in error.errors():
            loc = tuple(step for step in detail["loc"] if not _is_union_tag(step))
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "extra_forbidden":
                message = "unknown field"
            self.at(tree, (*prefix, *loc), message)


def _is_union_tag(step: Any) -> bool:
    return isinstance(step, str) and step.startswith(("function-", "literal["))


def _validate(model: type[Model], tree: Any, prefix: tuple[Any, ...], problems: _Problems) -> Model | None:
    try:
        return model.model_validate(tree)
    except ValidationError as error:
        problems.from_validation(tree, prefix, error)
        return None


def _parse_all(files: Mapping[str, str], problems: _Problems) -> dict[str, Any]:
    """Every file's tree; a file that does not parse, or holds a single value, is reported and left out."""
    parsed: dict[str, Any] = {}
    for path, text in sorted(files.items()):
        try:
            document = parse_yaml(text, path)
        except YamlSyntaxError as exc:
            problems.items.append(exc.problem)
            continue
        if document is not None and not isinstance(document, LocatedMap | LocatedList):
            problems.items.append(SpecProblem(path, 1, "", f"expected a mapping, not {type(document).__name__}"))
            continue
        parsed[path] = document
    return parsed


def _collect_airbyte_definitions(
    parsed: Mapping[str, Any], problems: _Problems
) -> dict[str, dict[str, tuple[LocatedMap, int]]]:
    """{kind: {name: (raw mapping, index in its file)}} from every file under specs/airbyte/."""
    found: dict[str, dict[str, tuple[LocatedMap, int]]] = {kind: {} for kind in AIRBYTE_KINDS}
    for path, document in parsed.items():
        if not path.startswith(AIRBYTE_SPEC_DIR) or document is None:
            continue
        if not isinstance(document, LocatedMap):
            problems.items.append(SpecProblem(path, 1, "", "expected a mapping with sources/destinations/connections"))
            continue
        for key, items in document.items():
            if key not in AIRBYTE_KINDS:
                problems.at(document, (key,), f"unknown section; expected one of {', '.join(AIRBYTE_KINDS)}")
                continue
            if not isinstance(items, list):
                problems.at(document, (key,), "expected a list")
                continue
            for index, item in enumerate(items):
                if not isinstance(item, LocatedMap) or not isinstance(item.get("name"), str):
                    problems.at(document, (key, index), "each entry needs a name", field=f"{key}[{index}].name")
                    continue
                name = item["name"]
                if name in found[key]:
                    first, _ = found[key][name]
                    problems.at(
                        item,
                        ("name",),
                        f"duplicate {key[:-1]} name {name!r} (first defined at {first.file}:{first.line})",
                    )
                    continue
                found[key][name] = (item, index)
    return found


def _check_secrets(tree: LocatedMap, problems: _Problems) -> None:
    configuration = tree.get("configuration")
    for path in iter_inline_secrets(configuration):
        problems.at(tree, ("configuration", *path), "looks like an inline secret; use {secretRef: {env: NAME}}")
    for path, raw in iter_secret_refs(configuration):
        try:
            SecretRef.model_validate(raw)
        except ValidationError as error:
            for detail in error.errors():
                problems.at(
                    tree,
                    ("configuration", *path),
                    f"secretRef: {detail['msg'].removeprefix('Value error, ')}",
                )


def _select(
    kind: str,
    env_raw: LocatedMap,
    definitions: Mapping[str, tuple[LocatedMap, int]],
    problems: _Problems,
) -> list[tuple[str, LocatedMap]]:
    selection = env_raw.get(kind) or {}
    if not isinstance(selection, dict):
        problems.at(env_raw, (kind,), "expected a mapping of names to overrides")
        return []
    chosen: list[tuple[str, LocatedMap]] = []
    for name, override in selection.items():
        if name not in definitions:
            problems.at(env_raw, (kind, name), f"no {kind[:-1]} named {name!r} in {AIRBYTE_SPEC_DIR}")
            continue
        base, _ = definitions[name]
        if override is not None and not isinstance(override, dict):
            problems.at(env_raw, (kind, name), "overrides must be a mapping")
            continue
        if override and "name" in override:
            problems.at(override, ("name",), "the name of a resource cannot be overridden")
            continue
        chosen.append((name, deep_merge(base, override) if override else base))
    return chosen


_AIRBYTE_MODELS: dict[str, type[BaseModel]] = {
    "sources": SourceSpec,
    "destinations": DestinationSpec,
    "connections": ConnectionSpec,
}


def _check_airbyte_definitions(
    definitions: Mapping[str, Mapping[str, tuple[LocatedMap, int]]], problems: _Problems
) -> None:
    """Every definition under specs/airbyte/ as written, whether an environment selects it or not."""
    for kind in AIRBYTE_KINDS:
        for tree, _ in definitions[kind].values():
            if kind != "connections":
                _check_secrets(tree, problems)
            _validate(_AIRBYTE_MODELS[kind], tree, (), problems)
            if kind == "connections":
                for field, section in (("source", "sources"), ("destination", "destinations")):
                    target = tree.get(field)
                    if isinstance(target, str) and target not in definitions[section]:
                        problems.at(tree, (field,), f"{field} {target!r} is not defined in {AIRBYTE_SPEC_DIR}")


def _load_airbyte(
    env_raw: LocatedMap, definitions: Mapping[str, Mapping[str, tuple[LocatedMap, int]]], problems: _Problems
) -> AirbyteSelection:
    models: dict[str, list[Any]] = {kind: [] for kind in AIRBYTE_KINDS}
    for kind in AIRBYTE_KINDS:
        for _name, merged in _select(kind, env_raw, definitions[kind], problems):
            if kind != "connections":
                _check_secrets(merged, problems)
            model = _validate(_AIRBYTE_MODELS[kind], merged, (), problems)
            if model is not None:
                models[kind].append((model, merged))
    source_names = {model.name for model, _ in models["sources"]}
    destination_names = {model.name for model, _ in models["destinations"]}
    for connection, raw in models["connections"]:
        for field, names, section in (
            ("source", source_names, "sources"),
            ("destination", destination_names, "destinations"),
        ):
            target = getattr(connection, field)
            if target in names:
                continue
            if target in definitions[section]:
                message = f"{field} {target!r} is not part of this environment (add it under airbyte.{section})"
            else:
                message = f"{field} {target!r} is not defined in {AIRBYTE_SPEC_DIR}"
            problems.at(raw, (field,), message)
    return AirbyteSelection(
        sources=tuple(model for model, _ in models["sources"]),
        destinations=tuple(model for model, _ in models["destinations"]),
        connections=tuple(model for model, _ in models["connections"]),
    )


def _load_workloads_file(parsed: Mapping[str, Any], problems: _Problems) -> WorkloadsFile | None:
    raw = parsed.get(WORKLOADS_SPEC)
    if raw is None:
        return None
    return _validate(WorkloadsFile, raw, (), problems)


def _load_workloads(
    raw: LocatedMap, settings: WorkloadsEnvironment, spec: WorkloadsFile | None, problems: _Problems
) -> WorkloadsSelection:
    components = spec.components if spec is not None else {}
    for name in settings.images:
        if name not in components:
            known = ", ".join(sorted(components)) or f"none ({WORKLOADS_SPEC} is missing)"
            problems.at(
                raw, ("workloads", "images", name), f"no component {name!r} in {WORKLOADS_SPEC} (known: {known})"
            )
    if any(c.dagster_location for name, c in components.items() if name in settings.images) and not settings.dagster:
        problems.at(raw, ("workloads",), "a Dagster code location is pinned but workloads.dagster.url is not set")
    chosen = {name: components[name] for name in settings.images if name in components}
    return WorkloadsSelection(settings, chosen, dict(settings.images))


def airbyte_definition_names(files: Mapping[str, str]) -> dict[str, set[str]]:
    """Names defined under specs/airbyte/ by kind (`source`, `destination`, `connection`)."""
    problems = _Problems()
    definitions = _collect_airbyte_definitions(_parse_all(files, problems), problems)
    if problems.items:
        raise SpecError(problems.items)
    return {kind[:-1]: set(found) for kind, found in definitions.items()}


def environment_names(files: Mapping[str, str]) -> list[str]:
    """Names of the environments, from the file names under environments/."""
    return sorted(
        path.removeprefix(ENVIRONMENT_DIR).rsplit(".", 1)[0]
        for path in files
        if path.startswith(ENVIRONMENT_DIR) and path.endswith((".yaml", ".yml"))
    )


def load_environments(
    files: Mapping[str, str], variables: Mapping[str, str], only: str | None = None
) -> dict[str, Environment]:
    """Validate the specs and every (or one) environment; raise `SpecError` with all problems."""
    problems = _Problems()
    parsed = _parse_all(files, problems)
    definitions = _collect_airbyte_definitions(parsed, problems)
    _check_airbyte_definitions(definitions, problems)
    workloads_file = _load_workloads_file(parsed, problems)
    superset_specs = (
        read_superset_specs(files, parsed, problems) if any(p.startswith(SUPERSET_SPEC_DIR) for p in files) else None
    )
    names = environment_names(files)
    if only is not None and only not in names:
        known = ", ".join(names) or "none"
        raise SpecError(
            [SpecProblem(f"{ENVIRONMENT_DIR}{only}.yaml", None, "", f"no such environment (known: {known})")]
        )
    environments: dict[str, Environment] = {}
    for name in names:
        if only is not None and name != only:
            continue
        path = next(p for p in (f"{ENVIRONMENT_DIR}{name}.yaml", f"{ENVIRONMENT_DIR}{name}.yml") if p in files)
        raw = parsed.get(path)
        if raw is None:
            if path in parsed:
                problems.items.append(SpecProblem(path, 1, "", "the file is empty"))
            continue
        if not isinstance(raw, LocatedMap):
            problems.items.append(SpecProblem(path, 1, "", "expected a mapping"))
            continue
        unresolved: list[tuple[tuple[Any, ...], str]] = []
        interpolate_tree(raw, variables, unresolved)
        for where, message in unresolved:
            problems.at(raw, where, message)
        settings = _validate(EnvironmentFile, raw, (), problems)
        if settings is None:
            continue
        if settings.environment != name:
            problems.at(raw, ("environment",), f"says {settings.environment!r} but the file is named {name!r}")
        airbyte_raw = raw.get("airbyte")
        airbyte = (
            _load_airbyte(airbyte_raw, definitions, problems)
            if isinstance(airbyte_raw, LocatedMap) and settings.airbyte is not None
            else None
        )
        workloads = (
            _load_workloads(raw, settings.workloads, workloads_file, problems)
            if settings.workloads is not None
            else None
        )
        superset = None
        if settings.superset is not None:
            superset_specs = superset_specs or read_superset_specs(files, parsed, problems)
            trees = {
                other: parsed.get(f"{ENVIRONMENT_DIR}{other}.yaml", parsed.get(f"{ENVIRONMENT_DIR}{other}.yml"))
                for other in names
            }
            superset = load_superset(name, raw, settings.superset, superset_specs, trees, variables, problems)
        environments[name] = Environment(
            name=name, file=path, settings=settings, airbyte=airbyte, workloads=workloads, superset=superset
        )
    if problems.items:
        raise SpecError(problems.items)
    return environments
