"""Core data model shared by every system: what is desired, what is live, what reconciler owns.

Pure data. Providers translate spec models and API answers into these; the planner compares
them. Fields are JSON-like trees in which references to other resources use spec names (never
live ids) and secrets are absent (they are compared by fingerprint, see `SecretSlot`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Any

Path = tuple[str, ...]

ABSENT: None = None
"""The one "absent" marker: no value at a path (a missing key and a null compare the same), or a resource or
pin an environment does not have. Renderers choose how to show it (`—` in tables)."""


@total_ordering  # <=, > and >= from < and the identity equality below
class ResourceKey:
    """A resource's identity in the specs: `airbyte.source/app-postgres`. Immutable, ordered by its three parts.

    Interned: making a key returns the one object for its three parts (`_KEYS`), so equal keys are the same
    object and equality and hashing are the object's own (identity, in C). A plan of 10,000 resources hashes
    and compares keys some 500,000 times; a frozen dataclass did each in Python (about 7 % of such a plan).
    """

    __slots__ = ("kind", "name", "system")
    system: str
    kind: str
    name: str

    def __new__(cls, system: str, kind: str, name: str) -> ResourceKey:
        parts = (system, kind, name)
        key = _KEYS.get(parts)
        if key is None:
            made = object.__new__(cls)
            object.__setattr__(made, "system", system)
            object.__setattr__(made, "kind", kind)
            object.__setattr__(made, "name", name)
            key = _KEYS.setdefault(parts, made)  # two threads making the same new key both get the first one
        return key

    # equal keys are one object (above; an unpickled or copied one too, by `__reduce__`)
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ResourceKey is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ResourceKey is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[ResourceKey], tuple[str, str, str]]:
        return ResourceKey, (self.system, self.kind, self.name)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ResourceKey):
            return NotImplemented
        return (self.system, self.kind, self.name) < (other.system, other.kind, other.name)

    def __repr__(self) -> str:
        return f"ResourceKey(system={self.system!r}, kind={self.kind!r}, name={self.name!r})"

    def __str__(self) -> str:
        return f"{self.system}.{self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> ResourceKey:
        """Inverse of `str()`."""
        qualifier, _, name = text.partition("/")
        system, _, kind = qualifier.partition(".")
        if not (system and kind and name):
            raise ValueError(f"not a resource key: {text!r}")
        return cls(system, kind, name)


_KEYS: dict[tuple[str, str, str], ResourceKey] = {}
"""Every key made in this process, by its parts (a few hundred bytes a resource: kept for the process's life)."""


def key_order(key: ResourceKey) -> tuple[str, str, str]:
    """`sorted(keys, key=key_order)`: ResourceKey's own order, without a Python `__lt__` call per comparison (a
    plan of 10,000 resources sorts them several times)."""
    return (key.system, key.kind, key.name)


def item_order(item: tuple[ResourceKey, Any]) -> tuple[str, str, str]:
    """`sorted(mapping.items(), key=item_order)`: by key, as `key_order`."""
    key = item[0]
    return (key.system, key.kind, key.name)


@dataclass(frozen=True)
class SecretSlot:
    """A secret a desired resource carries: where it goes, where it comes from, its fingerprint."""

    path: Path
    ref: str
    fingerprint: str


@dataclass(frozen=True)
class DesiredResource:
    """One resource as the specs want it."""

    key: ResourceKey
    fields: Mapping[str, Any]
    secrets: tuple[SecretSlot, ...] = ()
    depends_on: tuple[ResourceKey, ...] = ()
    replace_on: tuple[str, ...] = ()
    """Top-level fields the live system cannot change in place: a change means replace."""
    exact: tuple[Path, ...] = ()
    """Mapping fields compared on every key (an entry only live is a change), not only declared ones."""


@dataclass(frozen=True)
class LiveResource:
    """One resource as observed, normalised into the same shape as its desired fields."""

    key: ResourceKey
    id: str
    fields: Mapping[str, Any]

    @property
    def digest(self) -> str:
        """A stable hash of what was observed, to tell whether it changed since a plan."""
        return digest_of({"id": self.id, "fields": self.fields})


@dataclass(frozen=True)
class OwnershipRecord:
    """What reconciler remembers about a resource it created or adopted."""

    key: ResourceKey
    id: str
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    """Keyed fingerprints of the secrets last applied, by dotted path. Never values."""
    memo: Mapping[str, str] = field(default_factory=dict)
    """What the system remembers about the resource between runs (e.g. `lastGood`: the last image that passed
    the health gate). Plain, non-secret values; empty for most systems."""


@dataclass(frozen=True)
class PendingCreate:
    """A create (or a replace's create) sent with no record yet of how it ended: its object may still appear.

    Journaled before the request leaves, settled by the action's record; until `settle_by` a planner that does
    not see its object waits for it rather than create a second one (a server finishes a request it has read,
    even after its client died). Times are wall-clock seconds since the epoch: they cross processes.
    """

    key: ResourceKey
    sent_at: float
    settle_by: float


def digest_of(value: Any) -> str:
    """SHA-256 of a canonical JSON rendering (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def dotted(path: Path) -> str:
    """`("configuration", "host")` -> `configuration.host`."""
    return ".".join(path)
