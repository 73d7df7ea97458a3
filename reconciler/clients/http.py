"""Client plumbing shared by the HTTP clients: retry policy with backoff, request counters.

Policy only; each client (one per API) decides which calls are safe to retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
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
