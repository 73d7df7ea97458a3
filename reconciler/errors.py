"""One root for every error reconciler raises on purpose; the CLI turns them into `Error: ...`.

The tree:

    ReconcilerError                 anything the user can act on (exit code 1, no traceback)
    ├── PermanentError              retrying the same input cannot help: fix the specs, the plan or the setup
    │   ├── SpecError               bad spec files: carries every problem with file:line: field
    │   ├── SecretError             a secret reference that cannot be resolved
    │   └── PlanError               a plan that must not run (mass delete, stale saved plan)
    ├── TemporaryError(delay)       worth trying again after `delay` seconds
    │   ├── LockedError             another run holds the environment's lock (retry once it is done)
    │   └── CancelledError          the run was asked to stop (shutdown, Ctrl-C); what was done is recorded
    ├── ApiError                    a live system answered with an error (status, detail): temporary when
    │   │                           `transient` (429, 5xx after retries, timeouts, unreachable), else permanent;
    │   │                           `outcome_unknown` when a write was sent and its answer lost
    │   └── AmbiguousIdentityError  two live objects answer to one spec name (permanent)
    └── ApplyError                  an action failed mid-apply (what was done is recorded): as its cause

Every error says whether retrying can help (kopf's PermanentError / TemporaryError(delay=...)):
`retryable` and `delay` (seconds before the next try, None when retrying cannot help), read
through `is_retryable(exc)` for any exception. Every one of them (and the clients' own KubeError
and DagsterError, classified by their status the same way) is a `RedactedError`: a URL's
`user:password@` never reaches a message, a log line or a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

URL_USERINFO = re.compile(
    r"""
    (?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)
    (?P<userinfo>
        [^/?#\s]+                        # user:password or token, up to the authority's last `@` (p@ss)
      | [^:/?#@\s]*:(?!\d*[/?#])         # or user: then a password holding `/`, `?` or `#` (pa/ss), as
        (?:(?!://)\S)*?                  #   SQLAlchemy reads it; never host:port/path (`h:80/a@b`)
    )
    @(?![^/?#\s]*@)                      # the last `@` before the host
    """,
    re.VERBOSE,
)
"""The `user:password@` (or `token@`) part of any URL in a text, up to the authority's last `@` (`p@ss`).

A password may hold `/` (`postgresql://u:pa/ss@h/db`: SQLAlchemy reads `pa/ss`); an `@` in the path
of a URL with no `user:` before it (`https://host/a/b@c`, `https://host:8443/a@b`) is no userinfo.
A password of digits before a `/` reads as a port and is missed (`u:123/4@h`).
"""


def redact_credentials(text: str) -> str:
    """`http://user:pass@host` -> `http://user:***@host` (and `http://token@host` -> `http://***@host`)."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match.group("userinfo").partition(":")
        return f"{match.group('scheme')}{user + ':' if colon else ''}***@"

    return URL_USERINFO.sub(hide, text)


DEFAULT_RETRY_DELAY = 60.0
"""Seconds before retrying a temporary error that names no delay of its own (kopf's default)."""


def transient_status(status: int | None) -> bool:
    """An HTTP status worth retrying later: 408, 429 and any 5xx (the clients already retried them in-call)."""
    return status is not None and (status in (408, 429) or 500 <= status <= 599)


class RedactedError(Exception):
    """An exception whose text arguments never carry the credentials of a URL (see `redact_credentials`).

    `retryable` says whether trying again later can help, `delay` how long to wait first; a class
    sets the default and an instance may decide (an API error by its status).
    """

    retryable: bool = False
    delay: float | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_credentials(arg) if isinstance(arg, str) else arg for arg in args))

    def classify(self, *, transient: bool, delay: float | None = None) -> None:
        """Mark this error temporary (worth a retry after `delay`) or permanent."""
        self.retryable = transient
        self.delay = (DEFAULT_RETRY_DELAY if delay is None else delay) if transient else None


def is_retryable(error: BaseException) -> bool:
    """Whether trying again later can help: a temporary reconciler error; never an unexpected exception."""
    return isinstance(error, RedactedError) and error.retryable


class ReconcilerError(RedactedError):
    """An error with a message meant for the person running reconciler."""


class PermanentError(ReconcilerError):
    """Retrying cannot help until someone changes something (specs, plan, configuration)."""


class TemporaryError(ReconcilerError):
    """Worth trying again after `delay` seconds (kopf's TemporaryError)."""

    def __init__(self, *args: object, delay: float = DEFAULT_RETRY_DELAY) -> None:
        super().__init__(*args)
        self.classify(transient=True, delay=delay)


@dataclass(frozen=True)
class SpecProblem:
    """One problem in one spec file, pointing at the line that holds it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(PermanentError):
    """The specs are invalid; every problem found is reported at once."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.field)))
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the specs:\n{lines}")


class SecretError(PermanentError):
    """A secret reference could not be resolved (the value itself is never in the message)."""


class ApiError(ReconcilerError):
    """A live system refused a request or could not be reached.

    Temporary when `transient` says so (unreachable, timed out, still failing after the client's own
    retries) or, by default, when its status is 408, 429 or 5xx; permanent otherwise (4xx, a bad answer).
    """

    outcome_unknown: bool

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        transient: bool | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        self.system = system
        self.status = status
        self.outcome_unknown = outcome_unknown
        """A write reached the system but its answer was lost: it may or may not have taken effect."""
        super().__init__(f"{system}: {message}")
        self.classify(transient=transient_status(status) if transient is None else transient)


class AmbiguousIdentityError(ApiError):
    """More than one live object has the name a spec resource is known by."""


class PlanError(PermanentError):
    """A plan that reconciler refuses to carry out as it stands."""


class LockedError(TemporaryError):
    """Another run holds the environment's write lock; nothing was done."""

    def __init__(self, *args: object, delay: float = 30.0) -> None:
        super().__init__(*args, delay=delay)


class CancelledError(TemporaryError):
    """The run was asked to stop; the actions finished before are recorded and a re-run carries on."""

    def __init__(self, *args: object, delay: float = 0.0) -> None:
        super().__init__(*args, delay=delay)


class ApplyError(ReconcilerError):
    """An action failed during apply; the actions before it are done and recorded. Retryable as its cause."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        if isinstance(cause, RedactedError):
            self.classify(transient=cause.retryable, delay=cause.delay)
