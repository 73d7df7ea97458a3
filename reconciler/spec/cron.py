"""Spec validation helper: Quartz cron syntax, the dialect Airbyte schedules use.

Seven fields at most: seconds minutes hours day-of-month month day-of-week [year]. Either
day-of-month or day-of-week must be `?`. A trailing ` UTC` is accepted (Airbyte echoes it).
"""

from __future__ import annotations

import functools
import re

_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
_FIELDS: tuple[tuple[str, int, int, str], ...] = (
    ("seconds", 0, 59, ""),
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, "LW?"),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS + "|L|#|\\?"),
    ("year", 1970, 2199, ""),
)


def strip_utc(expression: str) -> str:
    """`0 0 2 * * ? UTC` -> `0 0 2 * * ?`: Airbyte appends the zone on read."""
    text = " ".join(expression.split())
    return text[: -len(" UTC")] if text.upper().endswith(" UTC") else text


def _check_number(token: str, name: str, low: int, high: int, names: str) -> None:
    if names and re.fullmatch(f"({names})", token.upper()):
        return
    if not token.isdigit():
        raise ValueError(f"{name} field: {token!r} is not a number")
    if not low <= int(token) <= high:
        raise ValueError(f"{name} field: {token} is outside {low}-{high}")


def _check_field(value: str, name: str, low: int, high: int, names: str) -> None:
    for part in value.split(","):
        if part in ("*", "?"):
            if part == "?" and name not in ("day-of-month", "day-of-week"):
                raise ValueError(f"{name} field: '?' is only allowed for day-of-month or day-of-week")
            continue
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(f"{name} field: step {step!r} is not a number")
        if base == "*":
            continue
        if name == "day-of-month" and re.fullmatch(r"(L(-\d+)?|LW|\d+W)", base):
            continue
        if name == "day-of-week" and re.fullmatch(r"(\d|[A-Za-z]{3})(L|#[1-5])?|L", base):
            base = re.sub(r"(L|#[1-5])$", "", base) or "1"
        start, _, end = base.partition("-")
        _check_number(start, name, low, high, names)
        if end:
            _check_number(end, name, low, high, names)


@functools.lru_cache(maxsize=4096)  # a fleet's connections share a few schedules; a ValueError is not kept
def validate_quartz_cron(expression: str) -> str:
    """Return the expression without ` UTC` if it is valid Quartz cron, else raise ValueError."""
    text = strip_utc(expression)
    parts = text.split(" ")
    if len(parts) not in (6, 7):
        raise ValueError(
            f"cron {expression!r} has {len(parts)} fields; Quartz cron needs 6 or 7 "
            "(seconds minutes hours day-of-month month day-of-week [year])"
        )
    for value, (name, low, high, names) in zip(parts, _FIELDS, strict=False):
        _check_field(value, name, low, high, names)
    if (parts[3] == "?") == (parts[5] == "?"):
        raise ValueError(f"cron {expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    for value, name in ((parts[0], "seconds"), (parts[1], "minutes")):
        if not value.isdigit():
            raise ValueError(
                f"cron {expression!r}: Airbyte syncs at most hourly, so the {name} field must be a plain number"
            )
    return text
