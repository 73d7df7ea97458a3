"""Rendering at the edge: plain-text tables (environment comparisons, health reports)."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.model import ABSENT

ABSENT_CELL = "—"
"""How a table shows `ABSENT` (core.model): a side that has no value."""


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str | None]]) -> str:
    cells = [[ABSENT_CELL if cell is ABSENT else str(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *cells, strict=False)]
    line = "  ".join("{:<" + str(width) + "}" for width in widths)
    out = [line.format(*headers), line.format(*("-" * width for width in widths))]
    out += [line.format(*row) for row in cells]
    return "\n".join(text.rstrip() for text in out)
