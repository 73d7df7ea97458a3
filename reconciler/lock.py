"""The environment lock: one writer at a time, taken before apply plans and held until its last record is saved.

Two applies of one environment at once would both find nothing and both create everything;
the state would keep one set and the other would run unowned. `EnvironmentLock` is what the
engine needs; `FileLock` keeps it in a file beside the state (an exclusive `flock`, which the
kernel drops when its holder dies, plus who holds it); the controller keeps the same lock in a
Kubernetes Lease.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from reconciler.errors import LockedError, ReconcilerError


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) an environment's lock."""

    pid: int
    host: str
    command: str
    since: str
    """When it was taken, ISO 8601 in UTC."""

    @classmethod
    def current(cls, command: str) -> LockHolder:
        """This process, about to run `command`."""
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        return cls(os.getpid(), socket.gethostname(), command, now.isoformat().replace("+00:00", "Z"))

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} ({self.command}, since {self.since})"

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        """The holder a lock file names; None when it names none (empty, half-written or not ours)."""
        try:
            body = json.loads(text)
            return cls(int(body["pid"]), str(body["host"]), str(body["command"]), str(body["since"]))
        except (ValueError, KeyError, TypeError):
            return None


class EnvironmentLock(Protocol):
    """One environment's write lock."""

    def acquire(self, holder: LockHolder) -> LockHolder | None:
        """Take the lock for `holder`, or raise `LockedError` naming who holds it.

        Returns the holder of a stale lock taken over (one that died holding it), else None.
        """
        ...

    def release(self) -> None:
        """Give the lock up (nothing happens when it is not held)."""
        ...


def _read(descriptor: int) -> str:
    chunks = []
    offset = 0
    while chunk := os.pread(descriptor, 4096, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _is_file_at(descriptor: int, path: Path) -> bool:
    """Whether `path` still names the open file (a releasing holder removes it before letting go)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class FileLock:
    """The lock as a file beside the state: `flock`ed by its holder, and naming it.

    The kernel releases a `flock` when its process dies, so a lock file left behind by a killed
    apply on this host is stale the moment nobody holds it: it is taken over, and reported. A
    file naming another host cannot be checked from here and is never taken over.
    """

    def __init__(self, path: Path, environment: str) -> None:
        self.path = path
        self.environment = environment
        self._descriptor: int | None = None

    def _open_locked(self) -> int:
        """A descriptor of the lock file holding its `flock`; raises `LockedError` when someone else holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReconcilerError(f"cannot create the lock {self.path}: {exc.strerror}") from exc
        while True:
            try:  # never through a symlink: the holder's name is written into the file it opens
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
            except OSError as exc:
                reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
                raise ReconcilerError(f"cannot open the lock {self.path}: {reason}") from exc
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                os.close(descriptor)
                raise ReconcilerError(f"cannot open the lock {self.path}: it is not a regular file")
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = LockHolder.parse(_read(descriptor))
                os.close(descriptor)
                who = holder.describe() if holder is not None else "another reconcile run (it has not said who yet)"
                raise LockedError(
                    f"environment {self.environment} is locked by {who}; wait for it to finish and try again"
                ) from None
            if _is_file_at(descriptor, self.path):
                return descriptor
            os.close(descriptor)  # its holder removed it as we opened it: lock the file that is there now

    def acquire(self, holder: LockHolder) -> LockHolder | None:
        if self._descriptor is not None:
            raise LockedError(f"environment {self.environment} is already locked by this process")
        descriptor = self._open_locked()
        previous = LockHolder.parse(_read(descriptor))
        if previous is not None and previous.host != holder.host:
            os.close(descriptor)
            raise LockedError(
                f"environment {self.environment} is locked by {previous.describe()}; reconciler cannot tell from "
                f"here whether it still runs: if it does not, remove {self.path}"
            )
        text = json.dumps({**asdict(holder), "environment": self.environment}) + "\n"
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, text.encode(), 0)
        os.fsync(descriptor)
        self._descriptor = descriptor
        return previous

    def release(self) -> None:
        if self._descriptor is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it, so no one locks a file about to vanish
        finally:
            os.close(self._descriptor)
            self._descriptor = None
