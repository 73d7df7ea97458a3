"""Rendering at the edge: every environment's plan as one pull-request comment, cut to fit, plus the job summary.

Under `reconcile github comment`: service/pull_request.py plans each environment and gives this module the
Markdown (render/markdown.py, already redacted: secrets appear only as references and fingerprints) or the
error of each; this module lays out the comment, starting with the hidden marker that finds it again, and cuts
it under GitHub's limit (65,536 characters; 60,000 kept, like tfcmt) with a pointer to the job summary, which
gets the whole plan (up to its own 1 MiB limit).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MARKER = "<!-- reconcile-plan -->"
COMMENT_LIMIT = 60_000
"""Characters of a comment body (GitHub refuses over 65,536)."""
SUMMARY_LIMIT = 1_000_000
"""UTF-8 bytes in `$GITHUB_STEP_SUMMARY` (GitHub refuses a step summary over 1 MiB: bytes, so a plan in CJK or
emoji reaches it at a third or a quarter of the characters)."""
SEPARATOR = "\n---\n\n"
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Section:
    """One environment's part of the comment: its plan's Markdown, or why there is none."""

    environment: str
    markdown: str | None = None
    error: str | None = None

    def text(self) -> str:
        if self.markdown is not None:
            return self.markdown.rstrip("\n") + "\n"
        message = (self.error or "unknown error").replace("```", "'''")
        return f"### reconcile plan: `{self.environment}`\n\n❌ **The plan failed:**\n\n```\n{message}\n```\n"


@dataclass(frozen=True)
class Header:
    """What the comment says about where the plan comes from."""

    commit: str | None = None
    run_url: str | None = None
    summary: bool = True
    """Whether the whole plan goes to a job summary (else a cut comment points at `reconcile plan`)."""

    def lines(self, count: int) -> list[str]:
        facts = [f"{count} environment{'s' if count != 1 else ''}"]
        if self.commit:
            facts.insert(0, f"commit `{self.commit[:12]}`")
        if self.run_url:
            facts.append(f"[workflow run]({self.run_url})")
        return ["## reconcile plan", "", " · ".join(facts), ""]


def outdated_body(current_url: str) -> str:
    """What a second plan comment (two runs at once) is edited to: no marker, a pointer to the current plan."""
    return f"~~reconcile plan~~: outdated, the current plan is [this comment]({current_url})."


def open_fence(text: str) -> str | None:
    """The code fence still open at the end of `text`, as CommonMark reads it: a fence closes only with the
    opener's character, at least as many of them, and nothing else on its line (a `~~~` line inside a ```
    block is content, not a fence)."""
    opened: str | None = None
    for match in FENCE.finditer(text):
        fence, rest = match.group(1), match.group(2)
        if opened is None:
            opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not rest.strip():
            opened = None
    return opened


def _balanced(text: str) -> str:
    """Close what a cut left open: a code fence, then any `<details>` blocks."""
    fence = open_fence(text)
    if fence is not None:
        text += "\n" + fence
    opened = text.count("<details>") - text.count("</details>")
    return text + "\n</details>" * max(0, opened)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def cut_markdown(text: str, limit: int, note: str, *, in_bytes: bool = False) -> str:
    """`text` if it fits in `limit` characters (UTF-8 bytes when `in_bytes`); else its first whole lines, blocks
    closed, then `note`."""
    size = _utf8 if in_bytes else len
    if size(text) <= limit:
        return text
    budget = max(0, limit - size(note) - 40)  # room for the closing fence and tags
    head = text.encode("utf-8")[:budget].decode("utf-8", "ignore") if in_bytes else text[:budget]
    head = head[: head.rfind("\n") + 1] if "\n" in head else ""
    return _balanced(head.rstrip("\n")) + "\n\n" + note + "\n"


def _shares(lengths: Sequence[int], budget: int) -> list[int]:
    """Split `budget` characters between texts of `lengths`: the short ones whole, the rest equally (water-filling)."""
    shares = [0] * len(lengths)
    remaining, left = budget, len(lengths)
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        fair = remaining // left
        shares[index] = min(lengths[index], fair)
        remaining -= shares[index]
        left -= 1
    return shares


def comment_body(sections: Sequence[Section], header: Header, *, limit: int = COMMENT_LIMIT) -> tuple[str, bool]:
    """The comment (marker first) and whether it had to be cut; every environment keeps a part of its plan."""
    texts = [section.text() for section in sections]
    top = [MARKER, *header.lines(len(sections))]
    whole = "\n".join(top) + "\n" + SEPARATOR.join(texts)
    if len(whole) <= limit:
        return whole, False
    where = f"the [job summary]({header.run_url})" if header.run_url else "the job summary"
    if not header.summary:
        where = "`reconcile plan --env NAME` (no job summary was written)"
    top.append(
        f"> ⚠️ This plan is {len(whole):,} characters, more than a comment holds: each environment's part is cut"
        f" where marked. The whole plan is in {where}."
    )
    top.append("")
    fixed = len("\n".join(top)) + 1 + len(SEPARATOR) * (len(texts) - 1)
    shares = _shares([len(t) for t in texts], limit - fixed)
    cut = [
        cut_markdown(text, share, f"_✂️ {section.environment}: cut here; the rest is in {where}._")
        for section, text, share in zip(sections, texts, shares, strict=True)
    ]
    return "\n".join(top) + "\n" + SEPARATOR.join(cut), True


def summary_text(sections: Sequence[Section], header: Header, *, limit: int = SUMMARY_LIMIT, used: int = 0) -> str:
    """The whole plan for `$GITHUB_STEP_SUMMARY` (cut only past the summary's own limit, in UTF-8 bytes, of which
    `used` are already taken by what the step wrote there before)."""
    body = "\n".join(header.lines(len(sections))) + "\n" + SEPARATOR.join(s.text() for s in sections)
    note = "_✂️ cut: the plan is larger than a job summary holds (1 MiB)._"
    return cut_markdown(body, max(0, limit - used), note, in_bytes=True)
