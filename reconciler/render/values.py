"""Rendering helper: short, one-line forms of field values for plans."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

MAX_WIDTH = 80


HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Unicode categories shown escaped: controls, format characters (bidi overrides, zero-width), surrogates,
private-use and unassigned code points, line and paragraph separators: what could hide or reorder text."""


def _visible(text: str) -> str:
    """Text as written, except the characters in `HIDDEN`, which show as `\\uXXXX` / `\\UXXXXXXXX`."""
    return "".join(
        (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}") if unicodedata.category(c) in HIDDEN else c
        for c in text
    )


def short(value: Any) -> str:
    """A compact JSON-ish rendering, in readable Unicode (invisible characters escaped); long values are cut with
    an ellipsis."""
    if value is None:
        return "(none)"
    text = _visible(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False))
    return text if len(text) <= MAX_WIDTH else text[: MAX_WIDTH - 1] + "…"
