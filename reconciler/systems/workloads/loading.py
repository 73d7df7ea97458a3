"""Spec loading, the workloads slice: `specs/workloads.yaml` + an environment's `workloads:` -> `WorkloadsSelection`.

Pure, called by the loader through `SYSTEM.load`: every pinned image names a known component,
and a pinned Dagster code location needs the Dagster URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.spec.loader import Problems, SectionInput, validate_model
from reconciler.spec.yamlsource import LocatedMap
from reconciler.systems.workloads.spec import ComponentSpec, ImageVersion, WorkloadsEnvironment, WorkloadsFile

WORKLOADS_SPEC = "specs/workloads.yaml"


@dataclass(frozen=True)
class WorkloadsSelection:
    """The image each component runs in one environment, and where the image is carried."""

    settings: WorkloadsEnvironment
    components: dict[str, ComponentSpec]
    images: dict[str, ImageVersion]


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
    return validate_model(WorkloadsFile, raw, (), problems)


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
    return WorkloadsSelection(settings, chosen, dict(settings.images))
