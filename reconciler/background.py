"""Work on background threads while the main thread computes: a plan's early listings and exports.

Beside `cancellation`, below the systems that start such work (Airbyte's and Superset's listings,
Superset's exports) and the service that overlaps it with loading the specs (`session.open_session`).
`in_background` runs one piece of work on a daemon thread, its outcome in a future; `DaemonWorkers` runs
many on a few daemon threads that each keep their own state between pieces (an HTTP client's per-thread
connection pool); `responsive_threads` shortens how long a thread that has its answer waits for the
interpreter while the main thread is busy.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

SWITCH_SECONDS = 0.0005
"""The interpreter's switch interval while background reads overlap the main thread's work (Python's is 5 ms).

A thread whose socket read returned needs the GIL again for every step of its request (h11's parsing,
the JSON, the next request), and waits up to the switch interval for it each time while the main thread
parses specs: at 5 ms, a workspace of 5,000 connections (105 pages) listed in 1.4 s beside a spec load
instead of 0.9 s alone, and the plan waited for it. At 0.5 ms the listings end before the specs are loaded."""

_lock = threading.Lock()
_holders = 0
_saved = 0.0


@contextmanager
def responsive_threads(seconds: float = SWITCH_SECONDS) -> Iterator[None]:
    """Within: the switch interval at most `seconds`. Nested and concurrent uses (the controller's environments)
    share one change: the first in sets it, the last out puts back what was there before."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(seconds, _saved))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                sys.setswitchinterval(_saved)


def in_background(work: Callable[[], T], name: str) -> Future[T]:
    """`work` on a daemon thread of its own, its outcome in the future returned: nothing waits for it at exit
    (an early read that a failed plan never takes, from a server that does not answer, holds no process)."""
    future: Future[T] = Future()
    threading.Thread(target=_settle, args=(future, work), name=name, daemon=True).start()
    return future


def _settle(future: Future[T], work: Callable[[], T]) -> None:
    """Run `work` into `future`: its result, or what it raised (raised again where the future is read)."""
    try:
        future.set_result(work())
    except BaseException as exc:
        future.set_exception(exc)


class DaemonWorkers:
    """`workers` daemon threads running submitted work, first come first served, each its outcome in a future.

    Unlike a `ThreadPoolExecutor`, nothing waits for them at exit (an abandoned listing, a server that does not
    answer), and `close` does not wait either: each thread ends once the work it runs returns. A thread runs
    many pieces, so what a piece keeps per thread (a connection pool) serves the next one."""

    def __init__(self, workers: int, name: str) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[[], object], Future[object]] | None] = queue.SimpleQueue()
        self._workers = workers
        for index in range(workers):
            threading.Thread(target=self._run, name=f"{name}-{index}", daemon=True).start()

    def submit(self, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._work.put((work, future))  # type: ignore[arg-type]  # each future gets its own work's outcome
        return future

    def close(self) -> None:
        """No further work: each thread ends once the work queued before this has run (a cancelled future's work
        is skipped)."""
        for _ in range(self._workers):
            self._work.put(None)

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            work, future = item
            if future.set_running_or_notify_cancel():
                _settle(future, work)
