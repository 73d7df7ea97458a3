"""Core: what differs between two environments' desired states (`reconcile diff-env qa prod`).

Pure: image versions per component, Airbyte resources present in one environment but not the
other, and settings that differ for resources present in both; Superset dashboards one side has
and the other does not replicate, and roles (`core.superset_compare`).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.spec.loader import Environment
from reconciler.systems.superset.compare import superset_rows


@dataclass(frozen=True)
class Difference:
    """One row of the comparison table."""

    area: str
    item: str
    left: str
    right: str


ABSENT = "—"


def _images(env: Environment) -> dict[str, str]:
    if env.workloads is None:
        return {}
    return {
        name: version.tag + (f"@{version.digest[:19]}…" if version.digest else "")
        for name, version in env.workloads.images.items()
    }


def _airbyte(env: Environment) -> dict[str, dict[str, str]]:
    if env.airbyte is None:
        return {"source": {}, "destination": {}, "connection": {}}
    schedules = {}
    for c in env.airbyte.connections:
        schedules[c.name] = "manual" if c.schedule is None or c.schedule.type == "manual" else str(c.schedule.cron)
    return {
        "source": {s.name: str(s.type or s.definition_id) for s in env.airbyte.sources},
        "destination": {d.name: str(d.type or d.definition_id) for d in env.airbyte.destinations},
        "connection": schedules,
    }


def compare_environments(left: Environment, right: Environment) -> list[Difference]:
    rows: list[Difference] = []
    left_images, right_images = _images(left), _images(right)
    for name in sorted(set(left_images) | set(right_images)):
        a, b = left_images.get(name, ABSENT), right_images.get(name, ABSENT)
        if a != b:
            rows.append(Difference("image", name, a, b))
    left_airbyte, right_airbyte = _airbyte(left), _airbyte(right)
    for kind in ("source", "destination", "connection"):
        a_items, b_items = left_airbyte[kind], right_airbyte[kind]
        for name in sorted(set(a_items) | set(b_items)):
            if name not in b_items:
                rows.append(Difference(f"airbyte {kind}", name, "present", ABSENT))
            elif name not in a_items:
                rows.append(Difference(f"airbyte {kind}", name, ABSENT, "present"))
            elif kind == "connection" and a_items[name] != b_items[name]:
                rows.append(Difference("airbyte schedule", name, a_items[name], b_items[name]))
    rows += [Difference(*row) for row in superset_rows(left, right)]
    return rows
