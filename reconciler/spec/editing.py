"""Spec files, edited in place: the one editor of environment files (pull airbyte, pull superset, promote).

Two ways, both through ruamel.yaml's view of the file. A round trip (`edit_yaml_text`) keeps
comments, key order, quoting, flow or block style and the file's own indentation (guessed from
it), so the pull request shows only the lines that changed; `pull` adds entries that way. Where
every other byte must stay as it is (`promote`: a multi-line flow mapping, CRLF line endings, a
`{` in a comment), the file is composed into nodes that know their character offsets, and only
the spans of the nodes being changed are replaced (`compose_yaml`, `splice`); the file is then
read back with the exact bytes it had (`read_exactly`) and replaced atomically only if nobody
changed it meanwhile (`replace_exactly`). ruamel is imported when a file is edited, never at
start-up.
"""

from __future__ import annotations

import io
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic import atomic_write
from reconciler.errors import PermanentError

WIDTH = 4096
"""Long values (a database URI) stay on their line."""


def edit_yaml_text(text: str, change: Callable[[Any], bool]) -> str:
    """`text` after `change` edited its document (a ruamel mapping, edited in place); `text` itself, byte for
    byte, when `change` answers False (nothing to change)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    _, indent, block_indent = load_yaml_guess_indent(text)
    editor = YAML()
    editor.preserve_quotes = True
    editor.width = WIDTH
    editor.indent(mapping=indent or 2, sequence=indent or 2, offset=block_indent or 0)
    document = editor.load(text)
    if not change(document):
        return text
    buffer = io.StringIO()
    editor.dump(document, buffer)
    return buffer.getvalue()


def edit_yaml_file(path: Path, change: Callable[[Any], bool]) -> bool:
    """Edit a YAML file in place (see `edit_yaml_text`); False when `change` found nothing to change."""
    text = path.read_text(encoding="utf-8")
    edited = edit_yaml_text(text, change)
    if edited == text:
        return False
    path.write_text(edited, encoding="utf-8")
    return True


@dataclass(frozen=True)
class Splice:
    """Replace `text[start:end]` with `new` (an insertion where `start == end`); offsets are characters."""

    start: int
    end: int
    new: str


def compose_yaml(text: str, file: str) -> Any:
    """The node graph of a one-document YAML text (ruamel nodes: `start_mark.index` and `end_mark.index` are
    character offsets, `anchor` is set where the text names one, an alias is the very node it names); None
    for an empty document."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="rt").compose(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        raise PermanentError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None


def splice(text: str, splices: Iterable[Splice]) -> str:
    """`text` with each splice applied; every byte outside them is kept. Splices may touch, never overlap."""
    ordered = sorted(splices, key=lambda s: (s.start, s.end))
    parts: list[str] = []
    at = 0
    for item in ordered:
        if item.start < at or item.end < item.start:
            raise ValueError(f"overlapping splices at {item.start}")
        parts += [text[at : item.start], item.new]
        at = item.end
    parts.append(text[at:])
    return "".join(parts)


def line_break(text: str) -> str:
    """The file's own line break (`\r\n` for a CRLF file), from its first line; `\n` when it has one line."""
    for index, char in enumerate(text):
        if char == "\r":
            return "\r\n" if text[index + 1 : index + 2] == "\n" else "\r"
        if char == "\n":
            return "\n"
    return "\n"


def read_exactly(path: Path) -> str:
    """A text file as its bytes say (line endings kept: `Path.read_text` would turn CRLF into LF)."""
    return path.read_bytes().decode("utf-8")


def replace_exactly(path: Path, before: str, after: str) -> None:
    """Replace the file's text `before` with `after` atomically (its mode kept); refuse if it is no longer `before`."""
    if read_exactly(path) != before:
        raise PermanentError(f"{path.name} changed while it was being edited; run the command again")
    atomic_write(path, after, stat.S_IMODE(path.stat().st_mode))
