"""Core: match live objects to spec resources, by recorded id first and by name only without a record.

Airbyte (like many APIs) does not make names unique, so a name that matches more than one
live object is an error rather than a guess; a name that matches none means "create". An owned
resource whose recorded object is gone is gone: it is never re-found by name, since an object
with that name now is someone else's (a colleague recreated it by hand) and must not be taken
over, updated or pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.core.model import OwnershipRecord, ResourceKey, item_order, key_order
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
    *,
    adopt_with: str | None = "reconcile import {system}",
) -> dict[ResourceKey, LiveObject]:
    """Which live object is each wanted (or owned) resource of one kind: the one matcher every system uses.

    An owned resource is its recorded object, or nothing when that id is no longer listed. Only a
    resource with no record (state lost, or one to adopt) is found by exact name, among objects
    no record claims. A wanted resource whose recorded object is gone while an unowned object
    has its name is an error: creating a second one by that name would make names ambiguous
    (the lost-state and lost-response recoveries find objects by name), and taking it over is
    a person's call (`reconcile import` records it), not a guess. `adopt_with` names the command that
    adopts a live object in that system (None: it has none; the error says to delete or rename it).
    """
    objects = list(listed)
    by_id = {obj.id: obj for obj in objects}
    keys = {ResourceKey(system, kind, name) for name in wanted}
    recorded = {key: record for key, record in records.items() if key.system == system and key.kind == kind}
    matched = _one_key_per_object(system, kind, keys, recorded, by_id)
    claimed = {record.id for record in recorded.values()}
    by_name: dict[str, list[LiveObject]] = {}
    for obj in objects:
        by_name.setdefault(obj.name, []).append(obj)
    for key in sorted(keys, key=key_order):
        candidates = [obj for obj in by_name.get(key.name, ()) if obj.id not in claimed]
        ids = ", ".join(sorted(obj.id for obj in candidates))
        if key in recorded:
            if key not in matched and candidates:
                remedy = "Delete or rename it."
                if adopt_with is not None:
                    remedy = f"Adopt it with `{adopt_with.format(system=system)}`, or delete or rename it."
                raise AmbiguousIdentityError(
                    system,
                    f"{key}: the {kind} reconciler recorded ({recorded[key].id}) is gone, and an unowned {kind} "
                    f"has its name ({ids}); reconciler will neither take that one over nor create a second "
                    f"{key.name!r}. {remedy}",
                )
            continue
        if len(candidates) > 1:
            raise AmbiguousIdentityError(
                system,
                f"{len(candidates)} live {kind}s are named {key.name!r} ({ids}); reconciler will not guess. "
                "Delete or rename the duplicates, or record the right id in the state.",
            )
        if candidates:
            matched[key] = candidates[0]
            claimed.add(candidates[0].id)
    return matched


def _one_key_per_object(
    system: str,
    kind: str,
    wanted: set[ResourceKey],
    recorded: Mapping[ResourceKey, OwnershipRecord],
    by_id: Mapping[str, LiveObject],
) -> dict[ResourceKey, LiveObject]:
    """Owned resources found by their recorded id, one key per live object.

    A state may record one object under two keys (an import that ran twice did so): the wanted
    key keeps it and the others are gone (forgotten, never a delete of what the specs still
    want); with no wanted key, the first keeps it; two wanted keys are an error.
    """
    keys_by_id: dict[str, list[ResourceKey]] = {}
    for key, record in sorted(recorded.items(), key=item_order):
        if record.id in by_id:
            keys_by_id.setdefault(record.id, []).append(key)
    matched: dict[ResourceKey, LiveObject] = {}
    for live_id, keys in keys_by_id.items():
        keeping = [key for key in keys if key in wanted] or keys[:1]
        if len(keeping) > 1:
            raise AmbiguousIdentityError(
                system,
                f"{', '.join(str(key) for key in keeping)} are all recorded at the one live {kind} {live_id}; "
                "reconciler will not act on it twice. Keep one of them in the specs.",
            )
        matched[keeping[0]] = by_id[live_id]
    return matched
