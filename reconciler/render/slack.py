"""Rendering at the edge: the controller's Slack messages as Block Kit plus a plain `text` fallback (pure).

The notifier (`controller/slack.py`) decides when to post, edit or reply; this module only says
what a message looks like. Nothing here holds a time or a duration, so the digest of a rendered
message changes only when what it tells changes. Secrets show as "changed" (their values never
reach this module's output, whatever a `FieldChange` carries), user text is escaped for Slack's
mrkdwn (`<!channel>` in a resource name pings no one) and every block stays inside Slack's limits
(a section's text 3,000 characters, a header 150, 50 blocks).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.core.diff import FieldChange
from reconciler.errors import redact_credentials
from reconciler.render.values import short

MAX_SECTION = 2900
"""Characters of a section's text we use (Slack refuses over 3,000)."""
MAX_HEADER = 150
MAX_CHANGES = 15
"""Field lines shown per resource; the rest are counted."""
MAX_VALUE = 60
MAX_PATH = 120
MAX_PROBLEMS = 20
REVISION_WIDTH = 12


@dataclass(frozen=True)
class SlackMessage:
    """What one Slack message says: Block Kit blocks and the plain text notifications and webhooks fall back to."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """A hash of the content: equal means the message would say nothing new."""
        canonical = json.dumps({"text": self.text, "blocks": self.blocks}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class DriftFacts(Protocol):
    """What a drift message tells (the controller's `DriftFinding` has these, read-only)."""

    @property
    def environment(self) -> str: ...
    @property
    def system(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def changes(self) -> tuple[FieldChange, ...]: ...
    @property
    def policy(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def revision(self) -> str: ...


# --- text helpers ---


def escape(text: str) -> str:
    """Slack mrkdwn control characters: `&`, `<` and `>` (so `<!channel>` or `<http://x|y>` stay literal)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code: escaped, its backticks swapped for quotes so the span cannot end early."""
    return "`" + escape(text.replace("`", "'").replace("\n", " ")) + "`"


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_revision(revision: str) -> str:
    return revision[:REVISION_WIDTH] if revision else "(none)"


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": cut(text, MAX_HEADER), "emoji": True}}


def _section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(markdown, MAX_SECTION)}}


def _fields(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": cut(f"*{label}*\n{value}", 1900)} for label, value in pairs[:10]],
    }


def _context(markdown: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(markdown, MAX_SECTION)}]}


def plan_command(environment: str, system: str | None = None) -> str:
    command = f"reconcile plan --env {environment}"
    return f"{command} --system {system}" if system else command


# --- drift ---


def resource_label(facts: DriftFacts) -> str:
    return f"{facts.system}/{facts.kind}/{facts.name}"


def change_line(change: FieldChange) -> str:
    """One field: `path`: live -> spec; a secret only as changed, whatever the change carries."""
    if change.secret:
        return f"• {code(cut(change.name, MAX_PATH))}: changed (secret, value not shown)"
    old, new = cut(short(change.old), MAX_VALUE), cut(short(change.new), MAX_VALUE)
    return f"• {code(cut(change.name, MAX_PATH))}: {code(old)} → {code(new)}"


def changes_text(changes: Sequence[FieldChange]) -> str:
    """The field lines, as many as fit a section (at most `MAX_CHANGES`), then how many more."""
    if not changes:
        return "_No field differences recorded._"
    lines: list[str] = []
    used = 0
    for index, change in enumerate(changes):
        line = change_line(change)
        if index == MAX_CHANGES or used + len(line) > MAX_SECTION - 120:
            lines.append(f"… and {len(changes) - index} more field(s)")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def drift_message(facts: DriftFacts, *, changed: bool = False) -> SlackMessage:
    """An open drift: what differs field by field, what the controller did, and the command that shows it.

    `changed` (incoming webhooks only, which cannot edit) says this post follows an earlier one."""
    label = resource_label(facts)
    verb = "Drift changed" if changed else "Drift"
    fields = len(facts.changes)
    text = (
        f"{verb} in {escape(facts.environment)}: {escape(label)}: {fields} field(s) differ from the specs; "
        f"{escape(facts.outcome)}"
    )
    blocks = [
        _header(f"⚠️ {verb}: {facts.system} {facts.kind} {facts.name}"),
        _fields(
            [
                ("Environment", code(facts.environment)),
                ("Resource", code(label)),
                ("Revision", code(short_revision(facts.revision))),
                ("Policy", code(facts.policy)),
                ("Controller", escape(facts.outcome)),
                ("A plan would", code(facts.action)),
            ]
        ),
        _section("*What differs* (live → spec)\n" + changes_text(facts.changes)),
        _context("See it: " + code(plan_command(facts.environment, facts.system))),
    ]
    return SlackMessage(text, blocks)


def drift_resolved_message(environment: str, system: str, kind: str, name: str, revision: str) -> SlackMessage:
    """The edit of a drift message once the resource matches the specs again."""
    label = f"{system}/{kind}/{name}"
    text = f"Resolved: drift in {escape(environment)}: {escape(label)} matches the specs again"
    blocks = [
        _header(f"✅ Resolved: {system} {kind} {name}"),
        _fields(
            [
                ("Environment", code(environment)),
                ("Resource", code(label)),
                ("Revision", code(short_revision(revision))),
            ]
        ),
        _section("The live resource matches the specs again; no drift is left."),
    ]
    return SlackMessage(text, blocks)


def resolved_reply(subject: str) -> SlackMessage:
    """The thread reply under a message marked resolved (a reply notifies the thread's followers; an edit does not)."""
    text = f"✅ Resolved: {escape(subject)}"
    return SlackMessage(text, [_section(text)])


def overflow_message(environment: str, more: int, limit: int) -> SlackMessage:
    """The one summary after the per-cycle limit of new messages: how many drifted resources got no message."""
    text = f"… and {more} more drifted resource(s) in {escape(environment)}"
    blocks = [
        _section(
            f"*{text}*\nNot posted one by one: at most {limit} new message(s) per cycle, the rest in the next cycles."
        ),
        _context("See them all: " + code(plan_command(environment))),
    ]
    return SlackMessage(text, blocks)


def overflow_resolved_message(environment: str) -> SlackMessage:
    text = f"Every drifted resource in {escape(environment)} has its own message now (or is resolved)"
    return SlackMessage(text, [_section(f"✅ {text}")])


# --- commits ---


def apply_failed_message(environment: str, revision: str, error: str) -> SlackMessage:
    shown = cut(redact_credentials(error).replace("`", "'"), MAX_SECTION - 200)
    text = f"Apply failed in {escape(environment)} at {short_revision(revision)}"
    blocks = [
        _header(f"❌ Apply failed in {environment}"),
        _fields([("Environment", code(environment)), ("Revision", code(short_revision(revision)))]),
        _section("*Error*\n```" + escape(shown) + "```"),
        _context("The controller retries on the next commit or cycle. See it: " + code(plan_command(environment))),
    ]
    return SlackMessage(text, blocks)


def invalid_commit_message(environment: str, revision: str, problems: Sequence[str]) -> SlackMessage:
    shown = [f"• {escape(cut(redact_credentials(problem), 300))}" for problem in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"… and {len(problems) - MAX_PROBLEMS} more problem(s)")
    text = f"Invalid commit for {escape(environment)} at {short_revision(revision)}: {len(problems)} problem(s)"
    blocks = [
        _header(f"🚫 Invalid commit for {environment}"),
        _fields([("Environment", code(environment)), ("Revision", code(short_revision(revision)))]),
        _section("*Problems*\n" + "\n".join(shown)),
        _context(
            "Nothing applied; the last good revision stays applied. See it: "
            + code(f"reconcile validate --env {environment}")
        ),
    ]
    return SlackMessage(text, blocks)


def commit_resolved_message(title: str, environment: str, revision: str) -> SlackMessage:
    """The edit of an apply-failure or invalid-commit message once a later revision applied."""
    text = f"Resolved: {escape(title)} ({escape(environment)}); {short_revision(revision)} applied since"
    return SlackMessage(text, [_section(f"✅ ~{escape(title)}~\n{text}")])


def applied_message(
    environment: str, revision: str, counts: Sequence[tuple[str, int]], *, plan_only: bool
) -> SlackMessage:
    """The short summary after a commit applied (or planned, in plan-only)."""
    parts = ", ".join(f"{count} {word}" for word, count in counts if count) or "no changes"
    if plan_only:
        text = f"📝 Plan-only {escape(environment)} at {short_revision(revision)}: would apply {parts}"
    else:
        text = f"🚀 Applied {short_revision(revision)} to {escape(environment)}: {parts}"
    return SlackMessage(text, [_section(text)])


BOLD_LABEL = re.compile(r"^\*([^*\n]+)\*", re.MULTILINE)


def _unmarked(markdown: str) -> str:
    text = BOLD_LABEL.sub(r"\1", markdown).replace("`", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def as_plain_text(message: SlackMessage) -> str:
    """A message roughly as Slack shows it, for a terminal (the demo prints what it posted): the header, the
    fields two to a line, sections and context; mrkdwn's marks and escapes removed."""
    lines: list[str] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(str(block["text"]["text"]))
        elif kind == "section" and "fields" in block:
            cells = []
            for item in block["fields"]:
                label, _, value = _unmarked(str(item["text"])).partition("\n")
                cells.append(f"{label:<12} {value}")
            for index in range(0, len(cells), 2):
                lines.append(" ".join(f"{cell:<44}" for cell in cells[index : index + 2]).rstrip())
        elif kind == "section":
            lines.append(_unmarked(str(block["text"]["text"])))
        elif kind == "context":
            lines.extend(_unmarked(str(element.get("text", ""))) for element in block["elements"])
    return "\n".join(lines) if lines else _unmarked(message.text)
