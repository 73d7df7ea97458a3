"""Rendering at the edge: plain-text tables (environment comparisons, health reports)."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join("{:<" + str(width) + "}" for width in widths)
    out = [line.format(*headers), line.format(*("-" * width for width in widths))]
    out += [line.format(*(str(cell) for cell in row)) for row in rows]
    return "\n".join(text.rstrip() for text in out)
