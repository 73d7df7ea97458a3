"""Rendering at the edge: apply progress lines and the closing summary."""

from __future__ import annotations

from collections import Counter

from reconciler.core.plan import Action
from reconciler.render.text import SYMBOLS

PAST = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
VERBS = {"started": "...", "done": "done", "failed": "FAILED", "progress": "  "}


def event_line(action: Action, status: str, message: str = "") -> str:
    if status == "progress":
        return f"    {message}"
    suffix = f": {message}" if message else ""
    return f"{SYMBOLS[action.kind]} {action.kind.value} {action.key} {VERBS[status]}{suffix}"


def apply_summary(done: list[Action], failed: Action | None) -> str:
    counts = Counter(action.kind.value for action in done)
    parts = ", ".join(f"{counts[kind]} {PAST[kind]}" for kind in PAST if counts[kind])
    if failed is None:
        return f"Apply complete: {parts or 'nothing to do'}."
    return f"Apply stopped at {failed.key}: {parts or 'nothing'} done before the failure."
