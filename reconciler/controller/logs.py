"""The controller's logs: structlog, one event per step, JSON lines when stderr is not a terminal.

Configured once by `reconcile controller`. Every value passes `redact_credentials` (a URL's
`user:password@`) before it is written; the events themselves carry names, revisions and outcomes,
never a value from a spec.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from reconciler.errors import redact_credentials


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact_credentials(value)
    return event


def configure_logging(*, debug: bool = False, stream: TextIO | None = None, json: bool | None = None) -> None:
    """INFO and above (DEBUG with `debug`) to `stream` (stderr): JSON unless it is a terminal (or `json` says)."""
    out = stream or sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if debug else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(out),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        cache_logger_on_first_use=False,
    )
