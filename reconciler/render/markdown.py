"""Rendering at the edge: a plan as Markdown for a pull request comment (summary first, details folded)."""

from __future__ import annotations

from reconciler.core.plan import ActionKind, Plan
from reconciler.render.values import short

EMOJI = {ActionKind.CREATE: "🟢", ActionKind.UPDATE: "🟡", ActionKind.REPLACE: "🟣", ActionKind.DELETE: "🔴"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan) -> str:
    counts = plan.summary()
    lines = [f"### reconcile plan: `{plan.environment}`", ""]
    if not plan.has_changes:
        lines.append(f"✅ **No changes.** {counts['unchanged']} resource(s) match the specs.")
    else:
        lines.append("| create | update | replace | delete | unchanged |")
        lines.append("|---:|---:|---:|---:|---:|")
        lines.append(
            " | ".join(str(counts[k]) for k in ("create", "update", "replace", "delete", "unchanged")).join(
                ("| ", " |")
            )
        )
        lines.append("")
        for action in plan.actions:
            lines.append(f"- {EMOJI[action.kind]} **{action.kind.value}** `{action.key}`")
    for warning in plan.warnings:
        lines.append(f"> ⚠️ {warning}")
    if plan.has_changes:
        lines += ["", "<details><summary>Details</summary>", ""]
        for action in plan.actions:
            lines.append(f"#### {action.kind.value} `{action.key}`")
            if action.reason:
                lines.append(f"_{action.reason}_")
            if action.changes:
                lines += ["", "| field | from | to |", "|---|---|---|"]
                for change in action.changes:
                    old = "" if change.secret or action.kind == ActionKind.CREATE else short(change.old)
                    new = str(change.new) if change.secret else short(change.new)
                    lines.append(f"| `{_cell(change.name)}` | {_cell(old)} | {_cell(new)} |")
            lines.append("")
        lines.append("</details>")
    return "\n".join(lines) + "\n"
