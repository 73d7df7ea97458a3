"""File plumbing shared by the state store and the stand-ins: replace a file atomically, privately.

A reader never sees a half-written file, and a crash mid-write leaves the old one in place.
"""

from __future__ import annotations

import os
import pathlib
import tempfile


def atomic_write(path: pathlib.Path, text: str, mode: int = 0o600) -> None:
    """Write `text` to a temporary file beside `path` (with `mode`), then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
