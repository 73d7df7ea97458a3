"""Core: match live objects to spec resources, by recorded id first and by name after lost state.

Airbyte (like many APIs) does not make names unique, so a name that matches more than one
live object is an error rather than a guess; a name that matches none means "create".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import AmbiguousIdentityError


@dataclass(frozen=True)
class LiveObject:
    """A listed object: its id, its name and its raw (already normalised) fields."""

    id: str
    name: str
    fields: Mapping[str, object]


def match_objects(
    system: str,
    kind: str,
    wanted: Iterable[str],
    records: Mapping[ResourceKey, OwnershipRecord],
    listed: Iterable[LiveObject],
) -> dict[ResourceKey, LiveObject]:
    """Which live object is each wanted (or owned) resource of one kind.

    Owned resources are found by their recorded id; when that id is gone, or there is no record
    (state lost, or a resource to adopt), by exact name among objects not claimed by another.
    """
    objects = list(listed)
    by_id = {obj.id: obj for obj in objects}
    keys = {ResourceKey(system, kind, name) for name in wanted}
    keys |= {key for key in records if key.system == system and key.kind == kind}
    matched: dict[ResourceKey, LiveObject] = {}
    for key in sorted(keys):
        record = records.get(key)
        if record is not None and record.id in by_id:
            matched[key] = by_id[record.id]
    claimed = {obj.id for obj in matched.values()}
    for key in sorted(keys - set(matched)):
        candidates = [obj for obj in objects if obj.name == key.name and obj.id not in claimed]
        if len(candidates) > 1:
            ids = ", ".join(sorted(obj.id for obj in candidates))
            raise AmbiguousIdentityError(
                system,
                f"{len(candidates)} live {kind}s are named {key.name!r} ({ids}); reconciler will not guess. "
                "Delete or rename the duplicates, or record the right id in the state.",
            )
        if candidates:
            matched[key] = candidates[0]
            claimed.add(candidates[0].id)
    return matched
