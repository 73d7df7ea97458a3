"""Rendering at the edge: apply events as console lines (a listener of the service) and the closing summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.core.events import Event, EventKind
from reconciler.core.plan import Action
from reconciler.render.text import SYMBOLS, render_plan

PAST = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
VERBS = {EventKind.ACTION_DONE: "done", EventKind.ACTION_FAILED: "FAILED"}


def event_line(event: Event) -> str | None:
    """The console line of an action event (progress indented under its action); None for the others."""
    if event.kind == EventKind.ACTION_PROGRESS:
        return f"    {event.message}"
    if event.action is None or event.kind not in VERBS:
        return None
    action = event.action
    suffix = f": {event.message}" if event.message else ""
    return f"{SYMBOLS[action.kind]} {action.kind.value} {action.key} {VERBS[event.kind]}{suffix}"


@dataclass
class ConsoleListener:
    """The service's events on a terminal: the plan (when `show_plan`), action lines, warnings via `warn`."""

    echo: Callable[[str], None]
    warn: Callable[[str], None]
    prefix: str = ""
    show_plan: bool = True
    colour: bool = False

    def __call__(self, event: Event) -> None:
        if event.kind in (EventKind.LOCK_TAKEN_OVER, EventKind.WARNING):
            self.warn(event.message)
        elif event.kind == EventKind.PLAN_MADE and event.plan is not None:
            if self.show_plan:
                self.echo(
                    "\n".join(self.prefix + line for line in render_plan(event.plan, colour=self.colour).split("\n"))
                )
        else:
            line = event_line(event)
            if line is not None:
                self.echo(self.prefix + line)


def apply_summary(
    done: list[Action], failed: Action | None, *, cancelled: bool = False, error: BaseException | None = None
) -> str:
    """One line on how an apply ended; when the failed write's answer was lost (`error.outcome_unknown`),
    it says so instead of claiming what was or was not done."""
    counts = Counter(action.kind.value for action in done)
    parts = ", ".join(f"{counts[kind]} {PAST[kind]}" for kind in PAST if counts[kind])
    if failed is None and cancelled:
        return f"Apply cancelled: {parts or 'nothing'} done before it stopped."
    if failed is None:
        return f"Apply complete: {parts or 'nothing to do'}."
    if getattr(error, "outcome_unknown", False):
        return (
            f"Apply stopped at {failed.key}: {parts or 'nothing'} done before it, and whether {failed.key} took "
            "effect is unknown (its answer was lost). Run apply again: it plans from what is live and settles it."
        )
    return f"Apply stopped at {failed.key}: {parts or 'nothing'} done before the failure."
