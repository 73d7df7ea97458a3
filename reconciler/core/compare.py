"""Core: what differs between two environments' desired states (`reconcile diff-env qa prod`), offline.

Pure: each registered system gives its rows (`System.diff_rows`: images, Airbyte resources,
Superset dashboards and roles); this module gathers them in registry order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler import registry

if TYPE_CHECKING:
    from reconciler.spec.loader import Environment


@dataclass(frozen=True)
class Difference:
    """One row of the comparison table."""

    area: str
    item: str
    left: str | None
    right: str | None
    """What each side has, or `ABSENT` (core.model) when it has none."""


def compare_environments(
    left: Environment, right: Environment, systems: Sequence[registry.System] | None = None
) -> list[Difference]:
    rows: list[Difference] = []
    for system in registry.systems() if systems is None else systems:
        rows += [Difference(*row) for row in system.diff_rows(left, right)]
    return rows
