"""One root for every error reconciler raises on purpose; the CLI turns them into `Error: ...`.

The tree:

    ReconcilerError                 anything the user can act on (exit code 1, no traceback)
    ├── SpecError                   bad spec files: carries every problem with file:line: field
    ├── SecretError                 a secret reference that cannot be resolved
    ├── ApiError                    a live system answered with an error (status, detail)
    │   └── AmbiguousIdentityError  two live objects answer to one spec name
    ├── PlanError                   a plan that must not run (mass delete, stale saved plan)
    ├── LockedError                 another run holds the environment's lock (retry once it is done)
    └── ApplyError                  an action failed mid-apply (what was done is recorded)

Every one of them (and the clients' own KubeError and DagsterError) is a `RedactedError`: a URL's
`user:password@` never reaches a message, a log line or a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]+)@")
"""The `user:password@` (or `token@`) part of any URL in a text, up to the authority's last `@` (`p@ss`)."""


def redact_credentials(text: str) -> str:
    """`http://user:pass@host` -> `http://user:***@host` (and `http://token@host` -> `http://***@host`)."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match.group("userinfo").partition(":")
        return f"{match.group('scheme')}{user + ':' if colon else ''}***@"

    return URL_USERINFO.sub(hide, text)


class RedactedError(Exception):
    """An exception whose text arguments never carry the credentials of a URL (see `redact_credentials`)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_credentials(arg) if isinstance(arg, str) else arg for arg in args))


class ReconcilerError(RedactedError):
    """An error with a message meant for the person running reconciler."""


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


class SpecError(ReconcilerError):
    """The specs are invalid; every problem found is reported at once."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.field)))
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the specs:\n{lines}")


class SecretError(ReconcilerError):
    """A secret reference could not be resolved (the value itself is never in the message)."""


class ApiError(ReconcilerError):
    """A live system refused a request or could not be reached."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.status = status
        super().__init__(f"{system}: {message}")


class AmbiguousIdentityError(ApiError):
    """More than one live object has the name a spec resource is known by."""


class PlanError(ReconcilerError):
    """A plan that reconciler refuses to carry out as it stands."""


class LockedError(ReconcilerError):
    """Another run holds the environment's write lock; nothing was done."""


class ApplyError(ReconcilerError):
    """An action failed during apply; the actions before it are done and recorded."""
