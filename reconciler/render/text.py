"""Rendering at the edge: a plan and an apply report as terminal text (ANSI colour optional)."""

from __future__ import annotations

from reconciler.core.plan import Action, ActionKind, Plan
from reconciler.render.values import short

SYMBOLS = {ActionKind.CREATE: "+", ActionKind.UPDATE: "~", ActionKind.REPLACE: "-/+", ActionKind.DELETE: "-"}
COLOURS = {ActionKind.CREATE: "32", ActionKind.UPDATE: "33", ActionKind.REPLACE: "35", ActionKind.DELETE: "31"}


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def render_action(action: Action, colour: bool) -> list[str]:
    head = f"{SYMBOLS[action.kind]} {action.kind.value} {action.key}"
    lines = [_paint(head, COLOURS[action.kind], colour) + (f"  ({action.reason})" if action.reason else "")]
    if action.kind == ActionKind.DELETE:
        return lines
    for change in action.changes:
        if change.secret:
            lines.append(f"    {change.name}: {change.new}")
        elif action.kind == ActionKind.CREATE:
            lines.append(f"    {change.name}: {short(change.new)}")
        else:
            lines.append(f"    {change.name}: {short(change.old)} -> {short(change.new)}")
    return lines


def summary_line(plan: Plan) -> str:
    counts = plan.summary()
    parts = ", ".join(f"{counts[kind.value]} to {kind.value}" for kind in ActionKind)
    return f"Plan for {plan.environment}: {parts}, {counts['unchanged']} unchanged."


def render_plan(plan: Plan, *, colour: bool = False) -> str:
    lines: list[str] = []
    for action in plan.actions:
        lines += render_action(action, colour)
    if plan.adopted:
        lines.append(
            f"Adopting {len(plan.adopted)} existing resource(s) found by name: "
            + ", ".join(str(k) for k in plan.adopted)
        )
    if plan.forgotten:
        lines.append("Already gone, records will be dropped: " + ", ".join(str(k) for k in plan.forgotten))
    for warning in plan.warnings:
        lines.append(_paint(f"! {warning}", "33", colour))
    if not plan.has_changes:
        lines.append(_paint("No changes. The live systems match the specs.", "32", colour))
    lines.append(summary_line(plan))
    return "\n".join(lines)
