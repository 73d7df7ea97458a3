"""Spec files, edited in place: the one editor of environment files (pull airbyte, pull superset, promote).

A round trip through ruamel.yaml keeps comments, key order, quoting, flow or block style and the
file's own indentation (guessed from it), so the pull request shows only the lines that changed.
ruamel is imported when a file is edited, never at start-up.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
