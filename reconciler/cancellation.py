"""A cancellation signal for long runs: the service sets it, long waits (rollouts, health gates) poll it.

Beside the lock, below the systems and clients that wait: a wait is `cancellation.wait(seconds)`
instead of `time.sleep(seconds)`, so a 300 s rollout wait stops within a poll of being asked.
"""

from __future__ import annotations

import threading

from reconciler.errors import CancelledError


class Cancellation:
    """A one-way flag (a `threading.Event`) with the reason it was set; safe to share between threads."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask every wait polling this signal to stop (idempotent: the first reason is kept)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise `CancelledError` when the signal is set."""
        if self._event.is_set():
            raise CancelledError(self.reason)

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early with `CancelledError` as soon as the signal is set."""
        if self._event.wait(max(0.0, seconds)):
            raise CancelledError(self.reason)
