"""File plumbing shared by the state store and the stand-ins: replace a file atomically, privately.

A reader never sees a half-written file, and a crash mid-write leaves the old one in place.
"""

from __future__ import annotations

import os
import pathlib
import tempfile


def atomic_write(path: pathlib.Path, text: str, mode: int = 0o600, *, durable: bool = False) -> None:
    """Write `text` to a temporary file beside `path` (with `mode`), then rename it over `path`.

    `durable` also fsyncs the file and its directory, so the new content survives a machine crash.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
        if durable:
            sync_directory(path.parent)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def sync_directory(directory: pathlib.Path) -> None:
    """Make a file created or renamed in `directory` survive a crash of the machine (no-op where unsupported)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
