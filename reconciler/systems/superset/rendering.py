"""Rendering at the edge: a Superset verification as a table, one row per chart, failures with Superset's error."""

from __future__ import annotations

from reconciler.render.table import render_table
from reconciler.render.values import MAX_WIDTH
from reconciler.systems.superset.rules.verify import Verification


def _cut(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_WIDTH else line[: MAX_WIDTH - 1] + "…"


def render_verification(verification: Verification) -> str:
    rows = [
        (", ".join(r.chart.dashboards) or "(no dashboard)", r.chart.name, r.outcome.value, _cut(r.detail))
        for r in verification.results
    ]
    table = render_table(["dashboard", "chart", "result", "detail"], rows) if rows else "No charts to run."
    return f"{table}\n{verification.summary()[0].upper()}{verification.summary()[1:]}."
