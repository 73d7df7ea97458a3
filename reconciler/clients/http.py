"""Client plumbing shared by the HTTP clients: the one retry policy with backoff, request counters.

Which answers are worth another try is decided here, for every client (Airbyte, Superset, Dagster):

- a timeout, a lost connection, or one of `RETRYABLE_STATUS` (429 throttled; 500 a failure inside
  the server, often a worker restarting; 502-504 a proxy or server not answering) is retried with
  backoff, *for an idempotent call* (a read, an update by id, a delete): repeating it changes nothing;
  a 429 or 503 that says `Retry-After` is not tried again before then (capped at a minute);
- a call that is not idempotent (a create, an import, a mutation) is never retried blindly: only a
  client that can first find out whether it was carried out (Airbyte's create looks the resource up
  by name) tries again, and a create answered 500 is looked up, then reported, never sent again.
"""

from __future__ import annotations

import contextvars
import email.utils
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC

import httpx

SERVER_ERROR = 500
RETRYABLE_STATUS = frozenset({429, SERVER_ERROR, 502, 503, 504})
RETRY_AFTER_STATUS = frozenset({429, 503})
"""Answers whose `Retry-After` says how long to wait (RFC 9110 15.5.5 / 15.6.4)."""
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """How long a `Retry-After` header asks to wait: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass
class RetryPolicy:
    """Exponential backoff: `base * 2**attempt`, capped, for at most `attempts` tries; never sooner than the
    server's `Retry-After` (itself capped at `retry_after_cap_seconds`)."""

    attempts: int = 5
    base_seconds: float = 0.2
    cap_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    retry_after_cap_seconds: float = 60.0

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        delay = min(self.cap_seconds, self.base_seconds * (2**attempt))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_cap_seconds))
        self.sleep(delay)

    def again(self, attempt: int, status: int | None, *, idempotent: bool) -> bool:
        """Whether try number `attempt` (from 0) of a call, answered `status` (None: no answer, a timeout
        or a lost connection), is worth another try under this policy."""
        transient = status is None or status in RETRYABLE_STATUS
        return idempotent and transient and attempt + 1 < self.attempts


@dataclass
class RequestCounter:
    """How many requests a client made, and how many of them were writes."""

    requests: int = 0
    writes: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, *, write: bool | None = None) -> None:
        """Count one request; by default any method but GET/HEAD/OPTIONS is a write."""
        with self._lock:
            self.requests += 1
            if write if write is not None else method.upper() not in ("GET", "HEAD", "OPTIONS"):
                self.writes += 1


ApiListener = Callable[[str, int], None]
"""Told of every answer a system's API gave: (system, HTTP status)."""

_LISTENERS: contextvars.ContextVar[tuple[ApiListener, ...]] = contextvars.ContextVar("api_listeners", default=())


@contextmanager
def listening(listener: ApiListener) -> Iterator[None]:
    """Tell `listener` of every API answer the clients get in this context (this thread, and the apply workers
    it starts, which run in a copy of it); nothing process-wide, so two controllers (or tests) never mix."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


def answer_hooks(system: str) -> dict[str, list[Callable[[httpx.Response], None]]]:
    """httpx `event_hooks` telling the listeners of the current context of each answer `system`'s client gets."""

    def answered(response: httpx.Response) -> None:
        for listener in _LISTENERS.get():
            listener(system, response.status_code)

    return {"response": [answered]}
