"""Core: field-by-field comparison of a desired resource with its live twin.

Only what the spec declares is compared (a server's defaults are not drift), except under
paths marked exact (e.g. a connection's streams: a stream only live is a change). Secrets are
compared by fingerprint against the last applied one, never by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import ABSENT, DesiredResource, LiveResource, OwnershipRecord, Path, dotted

__all__ = ["ABSENT", "FieldChange", "diff_resource", "diff_tree"]
SECRET_SET = "(secret set)"
SECRET_CHANGED = "(secret changed)"
SECRET_UNKNOWN = "(secret not tracked yet)"
SECRET_HIDDEN = "(secret)"


@dataclass(frozen=True)
class FieldChange:
    """One field whose live value differs from the desired one."""

    path: Path
    old: Any
    new: Any
    secret: bool = False

    @property
    def name(self) -> str:
        return dotted(self.path)


def diff_tree(desired: Any, live: Any, exact: frozenset[Path], path: Path = ()) -> list[FieldChange]:
    """Changes needed to make `live` match `desired` at and under `path`."""
    if isinstance(desired, Mapping) and desired and live is ABSENT:
        live = {}  # a new mapping is shown leaf by leaf
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        changes: list[FieldChange] = []
        keys = list(desired)
        if path in exact:
            keys += [key for key in live if key not in desired]
        for key in keys:
            want, have = desired.get(key, ABSENT), live.get(key, ABSENT)
            if want == have:
                # one C-level `==` instead of the walk below it: equal subtrees have the same keys at every
                # level (so no key only live, exact paths or not) and equal leaves, so the walk finds
                # nothing; most fields of a fleet are unchanged. (`==` inside containers holds a NaN equal
                # to itself when the very same object is in both trees: a tree read from the spec and one
                # read from a server never share one.)
                continue
            changes += diff_tree(want, have, exact, (*path, key))
        return changes
    if desired != live:
        return [FieldChange(path, live, desired)]
    return []


def secret_changes(desired: DesiredResource, record: OwnershipRecord | None, *, exists: bool) -> list[FieldChange]:
    """Secrets whose fingerprint differs from the last applied one (or that were never applied)."""
    changes: list[FieldChange] = []
    for slot in desired.secrets:
        if not exists:
            changes.append(FieldChange(slot.path, ABSENT, SECRET_SET, secret=True))
            continue
        applied = record.fingerprints.get(dotted(slot.path)) if record else None
        if applied is None:
            changes.append(FieldChange(slot.path, SECRET_HIDDEN, SECRET_UNKNOWN, secret=True))
        elif applied != slot.fingerprint:
            changes.append(FieldChange(slot.path, SECRET_HIDDEN, SECRET_CHANGED, secret=True))
    return changes


def diff_resource(
    desired: DesiredResource, live: LiveResource | None, record: OwnershipRecord | None
) -> list[FieldChange]:
    """Every change, plain fields first (in declaration order), then secrets."""
    live_fields: Mapping[str, Any] = live.fields if live is not None else {}
    plain = diff_tree(desired.fields, live_fields, frozenset(desired.exact))
    return plain + secret_changes(desired, record, exists=live is not None)
