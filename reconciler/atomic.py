"""File plumbing shared by the state store and the stand-ins: replace a file atomically, privately.

A reader never sees a half-written file, and a crash mid-write leaves the old one in place.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile


def staged_write(path: pathlib.Path, text: str, mode: int, *, durable: bool = False) -> pathlib.Path:
    """`text` in a temporary file beside `path` (beside the file a symlink names), with `mode`: `os.replace` it
    over that file to finish, unlink it to give up. Lets a caller stage every write before it changes anything.
    `durable` fsyncs it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return pathlib.Path(temporary)


def atomic_write(path: pathlib.Path, text: str, mode: int = 0o600, *, durable: bool = False) -> None:
    """Write `text` to a temporary file beside `path` (with `mode`), then rename it over `path`.

    `durable` also fsyncs the file and its directory, so the new content survives a machine crash.
    A symlink is followed: the file it names is replaced and the link stays (renaming over the link
    would turn it into a copy, and leave the file it names, which other links may share, as it was).
    """
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = staged_write(path, text, mode, durable=durable)
    try:
        os.replace(temporary, path)
        if durable:
            sync_directory(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
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


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: pathlib.Path, second: pathlib.Path) -> bool:
    """Swap two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where the system cannot."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    code = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if code == 0:
        return True
    number = ctypes.get_errno()
    if number in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(number, os.strerror(number), str(first))


def swap_in_directory(staged: pathlib.Path, target: pathlib.Path) -> None:
    """Put the complete tree `staged` (a sibling of `target`) where `target` is, then delete the old tree.

    Where the kernel can, the two trees trade places in one step, so a crash at any moment leaves
    either the old tree or the new one at `target`, never a mix; elsewhere, two renames (a crash
    between them leaves the old tree beside `target`, under a hidden name).
    """
    if not target.exists():
        os.rename(staged, target)
    elif not _exchange(staged, target):
        old = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, old / target.name)
        os.rename(staged, target)
        staged = old
    sync_directory(target.parent)
    shutil.rmtree(staged, ignore_errors=True)
