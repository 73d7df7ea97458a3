"""Spec loading, the workloads slice: `specs/workloads.yaml` + an environment's `workloads:` -> `WorkloadsSelection`.

Pure, called by the loader through `SYSTEM.load`: every pinned image names a known component, a
pinned Dagster code location needs the Dagster URL, and no image slot is carried by two components
(each apply would flip it back and forth). A pin on `latest` is valid but warned about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.spec.loader import Problems, SectionInput, validate_model
from reconciler.spec.yamlsource import LocatedMap, locate
from reconciler.systems.workloads.spec import (
    MOVING_TAG,
    ComponentSpec,
    ImageVersion,
    WorkloadsEnvironment,
    WorkloadsFile,
)

WORKLOADS_SPEC = "specs/workloads.yaml"


@dataclass(frozen=True)
class WorkloadsSelection:
    """The image each component runs in one environment, and where the image is carried."""

    settings: WorkloadsEnvironment
    components: dict[str, ComponentSpec]
    images: dict[str, ImageVersion]
    warnings: tuple[str, ...] = ()
    """`file:line: field: message` of valid but risky pins (`latest`), for `reconcile validate`."""


def read_workloads_file(
    texts: Mapping[str, str], parsed: Mapping[str, Any], problems: Problems
) -> WorkloadsFile | None:
    """`specs/workloads.yaml`, read once per load."""
    return _load_workloads_file(parsed, problems)


def load_workloads_section(section: SectionInput) -> WorkloadsSelection:
    return _load_workloads(section.raw, section.settings, section.specs, section.problems)


def _load_workloads_file(parsed: Mapping[str, Any], problems: Problems) -> WorkloadsFile | None:
    raw = parsed.get(WORKLOADS_SPEC)
    if raw is None:
        return None
    spec = validate_model(WorkloadsFile, raw, (), problems)
    if spec is not None:
        _shared_carriers(spec, raw, problems)
    return spec


def _shared_carriers(spec: WorkloadsFile, raw: Any, problems: Problems) -> None:
    """Two components naming one image slot (same namespace as written, same place): refused, naming both."""
    seen: dict[tuple[str | None, str], str] = {}
    for name, component in spec.components.items():
        for index, carrier in enumerate(component.carriers):
            slot = (carrier.namespace, carrier.place)
            other = seen.setdefault(slot, name)
            if other != name:
                problems.at(
                    raw,
                    ("components", name, "carriers", index),
                    f"{name} and {other} both carry their image in {carrier.place}"
                    + (f" (namespace {carrier.namespace})" if carrier.namespace else "")
                    + "; each apply would set it to one and then the other: give each component its own carrier",
                )


def _shared_in_namespace(
    raw: LocatedMap, settings: WorkloadsEnvironment, components: Mapping[str, ComponentSpec], problems: Problems
) -> None:
    """Carriers written with different namespaces that this environment resolves to one slot."""
    seen: dict[tuple[str, str], tuple[str, str | None]] = {}
    for name, component in sorted(components.items()):
        for carrier in component.carriers:
            slot = (carrier.namespace or settings.kubernetes.namespace, carrier.place)
            other, written = seen.setdefault(slot, (name, carrier.namespace))
            if other != name and written != carrier.namespace:
                problems.at(
                    raw,
                    ("workloads", "kubernetes", "namespace"),
                    f"{name} and {other} both carry their image in {slot[0]}: {carrier.place} in this environment; "
                    "each apply would set it to one and then the other: give each component its own carrier",
                )


def _warnings(raw: LocatedMap, images: Mapping[str, ImageVersion]) -> tuple[str, ...]:
    found = []
    for name, version in sorted(images.items()):
        if version.tag == MOVING_TAG and version.digest is None:
            file, line = locate(raw, ("workloads", "images", name, "tag"))
            where = f"{file}:{line}" if line else file
            found.append(
                f"{where}: workloads.images.{name}.tag: {MOVING_TAG!r} names no version: the image can change under "
                "the same pin and a plan cannot see it; pin a version tag or add its digest"
            )
    return tuple(found)


def _load_workloads(
    raw: LocatedMap, settings: WorkloadsEnvironment, spec: WorkloadsFile | None, problems: Problems
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
    _shared_in_namespace(raw, settings, chosen, problems)
    return WorkloadsSelection(settings, chosen, dict(settings.images), _warnings(raw, settings.images))
