"""The `airbyte` system for the registry: its section, loader, provider, early plan listings (`prefetch`), summary
and diff-env rows (`SYSTEM`)."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.model import ABSENT
from reconciler.providers.base import Prefetch, Provider
from reconciler.registry import Row, System
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.systems.airbyte import DECLARATION, NAME
from reconciler.systems.airbyte.loading import AirbyteSelection, load_airbyte_section, read_definitions
from reconciler.systems.airbyte.spec import AirbyteEnvironment, AirbyteSpecFile


def _connect(root: Path, env: Environment, resolver: SecretResolver) -> Provider:
    from reconciler.systems.airbyte.provider import connect

    return connect(root, env, resolver)


def _prefetch(root: Path, settings: AirbyteEnvironment, resolver: SecretResolver) -> Prefetch | None:
    from reconciler.systems.airbyte.listing import prefetch

    return prefetch(root, settings, resolver)


def _summary(selection: AirbyteSelection) -> str:
    return (
        f"{len(selection.sources)} sources, {len(selection.destinations)} destinations, "
        f"{len(selection.connections)} connections"
    )


def _names(env: Environment) -> dict[str, dict[str, str]]:
    selection = env.section(NAME, AirbyteSelection)
    if selection is None:
        return {"source": {}, "destination": {}, "connection": {}}
    schedules = {}
    for c in selection.connections:
        schedules[c.name] = "manual" if c.schedule is None or c.schedule.type == "manual" else str(c.schedule.cron)
    return {
        "source": {s.name: str(s.type or s.definition_id) for s in selection.sources},
        "destination": {d.name: str(d.type or d.definition_id) for d in selection.destinations},
        "connection": schedules,
    }


def _diff_rows(left: Environment, right: Environment) -> list[Row]:
    """Resources one environment has and the other lacks, and connection schedules that differ."""
    rows: list[Row] = []
    left_names, right_names = _names(left), _names(right)
    for kind in ("source", "destination", "connection"):
        a_items, b_items = left_names[kind], right_names[kind]
        for name in sorted(set(a_items) | set(b_items)):
            if name not in b_items:
                rows.append((f"airbyte {kind}", name, "present", ABSENT))
            elif name not in a_items:
                rows.append((f"airbyte {kind}", name, ABSENT, "present"))
            elif kind == "connection" and a_items[name] != b_items[name]:
                rows.append(("airbyte schedule", name, a_items[name], b_items[name]))
    return rows


SYSTEM = System(
    name=DECLARATION.name,
    section=AirbyteEnvironment,
    read_specs=read_definitions,
    spec_files="specs/airbyte/",
    load=load_airbyte_section,
    connect=_connect,
    prefetch=_prefetch,
    schemas={"airbyte": AirbyteSpecFile},
    summary=_summary,
    diff_rows=_diff_rows,
    commands=DECLARATION.commands,
)
