"""Spec loading, the Airbyte slice: `specs/airbyte/` + an environment's `airbyte:` section -> `AirbyteSelection`.

Pure, called by the loader through `SYSTEM.load`: it gathers the definitions (a name each, no
name twice), applies the environment's overrides, checks secrets and that each connection's
ends are part of the environment, and reports problems at their file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.errors import SpecError, SpecProblem
from reconciler.spec.loader import Problems, SectionInput, parse_all, validate_model
from reconciler.spec.secrets import scan_secrets, secret_ref
from reconciler.spec.yamlsource import LocatedMap, deep_merge
from reconciler.systems.airbyte.spec import ConnectionSpec, DestinationSpec, SourceSpec

AIRBYTE_SPEC_DIR = "specs/airbyte/"
AIRBYTE_KINDS = ("sources", "destinations", "connections")


@dataclass(frozen=True)
class Definitions:
    """Every definition under specs/airbyte/ and its model as written, read once per load."""

    trees: dict[str, dict[str, tuple[LocatedMap, int]]]
    """{kind: {name: (raw mapping, index in its file)}}."""
    checked: dict[int, BaseModel | None]
    """By `id` of a definition's tree (held in `trees`): its model, None when invalid (already reported). An
    environment selecting a definition without overrides uses it as is instead of validating it again."""


@dataclass(frozen=True)
class AirbyteSelection:
    """The Airbyte resources that exist in one environment, overrides applied."""

    sources: tuple[SourceSpec, ...]
    destinations: tuple[DestinationSpec, ...]
    connections: tuple[ConnectionSpec, ...]


def read_definitions(texts: Mapping[str, str], parsed: Mapping[str, Any], problems: Problems) -> Definitions:
    """Every definition under specs/airbyte/, read once per load."""
    trees = _collect_airbyte_definitions(parsed, problems)
    return Definitions(trees, _check_airbyte_definitions(trees, problems))


def load_airbyte_section(section: SectionInput) -> AirbyteSelection | None:
    """One environment's selection (None when its `airbyte:` is not a mapping, already reported)."""
    airbyte_raw = section.raw.get("airbyte")
    if not isinstance(airbyte_raw, LocatedMap):
        return None
    return _load_airbyte(airbyte_raw, section.specs, section.problems)


def _collect_airbyte_definitions(
    parsed: Mapping[str, Any], problems: Problems
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


def _check_secrets(tree: LocatedMap, problems: Problems) -> None:
    inline, refs = scan_secrets(tree.get("configuration"))
    for path in inline:
        problems.at(tree, ("configuration", *path), "looks like an inline secret; use {secretRef: {env: NAME}}")
    for path, raw in refs:
        try:
            secret_ref(raw)
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
    problems: Problems,
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
    definitions: Mapping[str, Mapping[str, tuple[LocatedMap, int]]], problems: Problems
) -> dict[int, BaseModel | None]:
    """Every definition under specs/airbyte/ as written, whether an environment selects it or not."""
    checked: dict[int, BaseModel | None] = {}
    for kind in AIRBYTE_KINDS:
        for tree, _ in definitions[kind].values():
            if kind != "connections":
                _check_secrets(tree, problems)
            checked[id(tree)] = validate_model(_AIRBYTE_MODELS[kind], tree, (), problems)
            if kind == "connections":
                for field, section in (("source", "sources"), ("destination", "destinations")):
                    target = tree.get(field)
                    if isinstance(target, str) and target not in definitions[section]:
                        problems.at(tree, (field,), f"{field} {target!r} is not defined in {AIRBYTE_SPEC_DIR}")
    return checked


def _load_airbyte(env_raw: LocatedMap, specs: Definitions, problems: Problems) -> AirbyteSelection:
    definitions = specs.trees
    models: dict[str, list[Any]] = {kind: [] for kind in AIRBYTE_KINDS}
    for kind in AIRBYTE_KINDS:
        for _name, merged in _select(kind, env_raw, definitions[kind], problems):
            if id(merged) in specs.checked:  # selected as written: checked once, its problems already reported
                model = specs.checked[id(merged)]
            else:
                if kind != "connections":
                    _check_secrets(merged, problems)
                model = validate_model(_AIRBYTE_MODELS[kind], merged, (), problems)
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


def airbyte_definition_names(files: Mapping[str, str]) -> dict[str, set[str]]:
    """Names defined under specs/airbyte/ by kind (`source`, `destination`, `connection`)."""
    problems = Problems()
    definitions = _collect_airbyte_definitions(parse_all(files, problems), problems)
    if problems.items:
        raise SpecError(problems.items)
    return {kind[:-1]: set(found) for kind, found in definitions.items()}
