"""Rendering helper: short, one-line forms of field values for plans."""

from __future__ import annotations

import json
from typing import Any

MAX_WIDTH = 80


def short(value: Any) -> str:
    """A compact JSON-ish rendering; long values are cut with an ellipsis."""
    if value is None:
        return "(none)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_WIDTH else text[: MAX_WIDTH - 1] + "…"
