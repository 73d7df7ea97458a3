"""Client plumbing shared by the HTTP clients: the one retry policy with backoff, request counters.

Which answers are worth another try is decided here, for every client (Airbyte, Superset, Dagster):

- a timeout, a lost connection, or one of `RETRYABLE_STATUS` (429 throttled; 500 a failure inside
  the server, often a worker restarting; 502-504 a proxy or server not answering) is retried with
  backoff, *for an idempotent call* (a read, an update by id, a delete): repeating it changes nothing;
- a call that is not idempotent (a create, an import, a mutation) is never retried blindly: only a
  client that can first find out whether it was carried out (Airbyte's create looks the resource up
  by name) tries again, and a create answered 500 is looked up, then reported, never sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

SERVER_ERROR = 500
RETRYABLE_STATUS = frozenset({429, SERVER_ERROR, 502, 503, 504})
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass
class RetryPolicy:
    """Exponential backoff: `base * 2**attempt`, capped, for at most `attempts` tries."""

    attempts: int = 5
    base_seconds: float = 0.2
    cap_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def pause(self, attempt: int) -> None:
        self.sleep(min(self.cap_seconds, self.base_seconds * (2**attempt)))

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
