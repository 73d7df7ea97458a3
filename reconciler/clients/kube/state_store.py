"""Ownership records in Kubernetes: one environment's state in ConfigMaps, for the controller and the CLI alike.

A `StateStore` (reconciler/state.py) on ConfigMapCalls, chosen by the service (`open_session`)
when the environment file says `state: {kubernetes: ...}`. The layout, in the state namespace:

- `<name>`, the head: `data["index.json"]` names the shards (and the environment), and
  `binaryData["journal.jsonl.gz"]` holds the records written since the last fold, in the file
  journal's line format (state.py). The head's resourceVersion orders every write.
- `<name>-<n>`, the shards: `binaryData["records.json.gz"]`, gzip of the state file's JSON for
  the records whose key hashes (CRC-32) to that shard. A shard is never modified: a fold writes
  the shards whose records changed under new numbers, swaps the head to name them, then deletes
  the shards no head names any more. A reader therefore always sees a head and the shards it
  names, consistent; a shard gone under it means a newer head, read again.

`record` rewrites only the head (one PUT of a small object, whatever the number of records);
past `JOURNAL_LIMIT` entries (or `JOURNAL_MAX_BYTES`, for long keys) it folds the journal into the shards.
A shard the head names that stays missing (deleted by hand) is a PermanentError naming it, and a
record too large for any ConfigMap one naming the record. Every write carries the
resourceVersion it was computed from: on a 409 the store re-reads and applies only what it
changed (per record) on top of what is there, so a record another writer added or changed is
kept; it retries after a random backoff (a storm of writers takes turns) and gives up only as a
temporary error. A kill at any point loses nothing acknowledged: before the head is swapped the new shards
are unnamed (deleted by the next fold), after it the old ones are. Pending creates (`intend`) are
journal lines too; a fold carries the ones not settled yet into the new head's journal.
Shards are sized by their records' uncompressed JSON (`SHARD_TARGET_BYTES`, so even
incompressible records stay under the API server's 1 MiB ConfigMap limit), then checked compressed.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import random
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from reconciler.clients.kube.calls import KubeConflict, KubeError
from reconciler.clients.kube.configmaps import ConfigMapCalls
from reconciler.core.model import OwnershipRecord, PendingCreate, ResourceKey
from reconciler.errors import ApiError, PermanentError
from reconciler.state import (
    decode_records,
    encode_journal_entry,
    encode_journal_header,
    encode_journal_intent,
    encode_records,
    replay_journal,
    unsettled,
)

log = structlog.get_logger("reconciler.state")

INDEX_FORMAT_VERSION = 1
INDEX_KEY = "index.json"
JOURNAL_KEY = "journal.jsonl.gz"
RECORDS_KEY = "records.json.gz"
SHARD_TARGET_BYTES = 512 * 1024
"""Uncompressed JSON per shard; a fold re-shards when a shard grows past twice this or the whole falls far below."""
MAX_OBJECT_BYTES = 900 * 1024
"""What one shard may hold compressed: under the API server's 1 MiB (1,048,576 bytes) of ConfigMap data."""
JOURNAL_LIMIT = 200
"""Journal entries in the head before `record` folds them into the shards."""
JOURNAL_MAX_BYTES = SHARD_TARGET_BYTES
"""Uncompressed journal in the head before `record` folds, whatever the count: long keys reach 1 MiB first."""
WRITE_ATTEMPTS = 8
"""Reads of a head that keeps changing under a snapshot before giving up."""
CONFLICT_ATTEMPTS = 24
"""Writes refused with a 409 before giving up (a temporary error then): each retry waits a random backoff
(`conflict_backoff`), so writers in a storm stop colliding in lockstep and each gets its turn."""
CONFLICT_BACKOFF_CAP_SECONDS = 0.5
MANAGED_BY = {"app.kubernetes.io/managed-by": "reconciler"}
STATE_LABEL = "reconciler.io/state"
PART_LABEL = "reconciler.io/part"
SHARD_LABEL = "reconciler.io/shard"
ENVIRONMENT_LABEL = "reconciler.io/environment"
T = TypeVar("T")


def conflict_backoff(attempt: int) -> None:
    """Sleep a random while before retry number `attempt` (from 0) of a write refused with a 409."""
    time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_CAP_SECONDS, 0.005 * 2**attempt)))


def gzip_b64(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


def gunzip_b64(data: str, origin: str) -> str:
    try:
        return gzip.decompress(base64.b64decode(data, validate=True)).decode("utf-8")
    except (binascii.Error, OSError, EOFError, ValueError, zlib.error) as exc:
        raise PermanentError(f"state {origin} is unreadable: not gzip+base64 data ({exc})") from exc


def shard_of(key: ResourceKey, shards: int) -> int:
    return zlib.crc32(str(key).encode("utf-8")) % shards


def record_size(key: ResourceKey, record: OwnershipRecord) -> int:
    """About what a record takes in a shard's JSON (its journal line is the same fields)."""
    return len(encode_journal_entry(key, record))


@dataclass
class _Head:
    """The head ConfigMap as read: which shard holds which part, the journal, and its resourceVersion."""

    shards: list[str | None] = field(default_factory=list)
    next_shard: int = 1
    journal: str = ""
    resource_version: str | None = None
    """None: the head does not exist yet (the first write creates it)."""

    @property
    def journal_entries(self) -> int:
        return max(0, self.journal.count("\n") - 1)


@dataclass
class _Snapshot:
    head: _Head
    parts: list[dict[ResourceKey, OwnershipRecord]]
    """Each shard's records, as stored (before the journal)."""
    records: dict[ResourceKey, OwnershipRecord]
    """Everything: the shards with the journal replayed."""
    pending: dict[ResourceKey, PendingCreate] = field(default_factory=dict)
    """The journal's pending creates that no later record settled."""


class KubeStateStore:
    """One environment's records in ConfigMaps `<name>` (head and journal) and `<name>-<n>` (shards)."""

    def __init__(
        self,
        kube: ConfigMapCalls,
        namespace: str,
        name: str,
        environment: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.environment = environment
        self._clock = clock
        self._pending: dict[ResourceKey, PendingCreate] = {}
        self._head: _Head | None = None
        self._base: dict[ResourceKey, OwnershipRecord] = {}
        """The records as this store last read or wrote them: what a write's per-record merge is computed from."""

    @property
    def where(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    # --- StateStore ---

    def load(self) -> dict[ResourceKey, OwnershipRecord]:
        snapshot = self._guard(self._snapshot)
        self._head, self._base = snapshot.head, dict(snapshot.records)
        self._pending = dict(snapshot.pending)
        return dict(snapshot.records)

    def pending(self) -> dict[ResourceKey, PendingCreate]:
        return dict(self._pending)

    def intend(self, pending: PendingCreate) -> None:
        self._guard(lambda: self._append(pending.key, None, intent=pending))
        self._pending[pending.key] = pending

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None:
        changes: dict[ResourceKey, OwnershipRecord | None] = {
            key: records.get(key) for key in set(self._base) | set(records) if self._base.get(key) != records.get(key)
        }
        self._guard(lambda: self._fold(changes))

    def record(self, key: ResourceKey, record: OwnershipRecord | None) -> None:
        self._guard(lambda: self._append(key, record))
        self._pending.pop(key, None)

    def compact(self) -> None:
        """Fold the journal into the shards (no write at all when the journal is empty)."""
        self._guard(lambda: self._fold({}))

    # --- reading ---

    def _guard(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except KubeError as exc:
            raise ApiError(
                "kubernetes",
                f"state of environment {self.environment} ({self.where}): {exc}",
                status=exc.status,
                transient=exc.retryable,
            ) from None

    def _read_head(self) -> _Head:
        live = self.kube.read_config_map(self.namespace, self.name)
        if live is None:
            return _Head()
        origin = self.where
        try:
            index = json.loads((live.get("data") or {})[INDEX_KEY])
            if index.get("formatVersion") != INDEX_FORMAT_VERSION:
                raise ValueError(f"unsupported formatVersion {index.get('formatVersion')!r}")
            if index.get("environment") != self.environment:
                raise PermanentError(
                    f"state {origin} belongs to environment {index.get('environment')!r}, not {self.environment!r}; "
                    "point state.kubernetes.name at this environment's own state"
                )
            shards = [None if name is None else str(name) for name in index["shards"]]
            next_shard = int(index["nextShard"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PermanentError(f"state {origin} is unreadable: {exc}") from exc
        journal_data = (live.get("binaryData") or {}).get(JOURNAL_KEY)
        journal = gunzip_b64(journal_data, origin) if journal_data else ""
        return _Head(shards, next_shard, journal, str(live["metadata"]["resourceVersion"]))

    def _read_shard(self, name: str) -> dict[ResourceKey, OwnershipRecord] | None:
        live = self.kube.read_config_map(self.namespace, name)
        if live is None:
            return None
        origin = f"configmap {self.namespace}/{name}"
        data = (live.get("binaryData") or {}).get(RECORDS_KEY)
        if not data:
            raise PermanentError(f"state {origin} is unreadable: it has no {RECORDS_KEY}")
        return decode_records(gunzip_b64(data, origin), origin, self.environment)

    def _snapshot(self) -> _Snapshot:
        """The head and the shards it names; read again when a shard vanished (a newer head replaced it)."""
        missing: tuple[str | None, str] | None = None
        for _ in range(WRITE_ATTEMPTS):
            head = self._read_head()
            parts: list[dict[ResourceKey, OwnershipRecord]] = []
            for name in head.shards:
                part = {} if name is None else self._read_shard(name)
                if part is None:
                    assert name is not None
                    if missing == (head.resource_version, name):  # the same head, still naming it: not a race
                        raise PermanentError(
                            f"state {self.where} names shard configmap {self.namespace}/{name}, which is missing "
                            "(deleted by hand?); its records are lost to reconciler: restore that ConfigMap, or "
                            f"remove {name!r} from the head's index.json shards to go on without its records"
                        )
                    missing = (head.resource_version, name)
                    break
                parts.append(part)
            else:
                records = {key: record for part in parts for key, record in part.items()}
                pending: dict[ResourceKey, PendingCreate] = {}
                if head.journal:
                    replay_journal(head.journal, f"{self.where} {JOURNAL_KEY}", self.environment, records, pending)
                return _Snapshot(head, parts, records, pending)
        raise ApiError("kubernetes", f"state {self.where} kept changing while being read; try again", transient=True)

    # --- writing ---

    def _labels(self, part: str) -> dict[str, str]:
        return {**MANAGED_BY, STATE_LABEL: self.name, PART_LABEL: part, ENVIRONMENT_LABEL: self.environment}

    def _write_head(self, head: _Head, shards: list[str | None], next_shard: int, journal: str) -> _Head:
        """Create or replace (at `head.resource_version`) the head; KubeConflict when someone wrote first."""
        index = {
            "formatVersion": INDEX_FORMAT_VERSION,
            "environment": self.environment,
            "shards": shards,
            "nextShard": next_shard,
        }
        manifest: dict[str, Any] = {
            "metadata": {"labels": self._labels("head")},
            "data": {INDEX_KEY: json.dumps(index) + "\n"},
        }
        if journal:
            manifest["binaryData"] = {JOURNAL_KEY: gzip_b64(journal)}
        if head.resource_version is None:
            written = self.kube.create_config_map(self.namespace, self.name, manifest)
        else:
            written = self.kube.replace_config_map(self.namespace, self.name, manifest, head.resource_version)
        return _Head(list(shards), next_shard, journal, str(written["metadata"]["resourceVersion"]))

    def _append(self, key: ResourceKey, record: OwnershipRecord | None, *, intent: PendingCreate | None = None) -> None:
        """One journal line in the head (a record, or with `intent` a pending create): read the head only when this
        store has none, re-read it on a 409."""
        entry = encode_journal_intent(intent) if intent is not None else encode_journal_entry(key, record)
        for attempt in range(CONFLICT_ATTEMPTS):
            head = self._head if self._head is not None else self._read_head()
            journal = (head.journal or encode_journal_header(self.environment)) + entry
            if head.journal_entries >= JOURNAL_LIMIT or len(journal.encode("utf-8")) > JOURNAL_MAX_BYTES:
                if intent is not None:
                    self._fold({})  # then the intent opens the new journal
                    continue
                self._fold({key: record})
                return
            try:
                self._head = self._write_head(head, head.shards, head.next_shard, journal)
            except KubeConflict:
                self._head = None  # someone wrote the head since: append to what is there now
                conflict_backoff(attempt)
                continue
            if intent is None:
                self._remember(key, record)
            return
        raise ApiError(
            "kubernetes",
            f"state {self.where}: still conflicting after {CONFLICT_ATTEMPTS} attempts",
            status=409,
            transient=True,
        )

    def _remember(self, key: ResourceKey, record: OwnershipRecord | None) -> None:
        if record is None:
            self._base.pop(key, None)
        else:
            self._base[key] = record

    def _apply_to_base(self, changes: Mapping[ResourceKey, OwnershipRecord | None]) -> None:
        """The caller's view after a write: what it read, with what it changed; never the records other writers
        added meanwhile, which a later `save` without them must not take for records it dropped."""
        for key, record in changes.items():
            self._remember(key, record)

    def _fold(self, changes: Mapping[ResourceKey, OwnershipRecord | None]) -> None:
        """Read everything, apply `changes` on top, write the shards that differ, swap the head (journal empty)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            snapshot = self._snapshot()
            merged = dict(snapshot.records)
            for key, record in changes.items():
                if record is None:
                    merged.pop(key, None)
                else:
                    merged[key] = record
            head = snapshot.head
            carried = unsettled({k: p for k, p in snapshot.pending.items() if k not in changes}, self._clock())
            if not head.journal and merged == snapshot.records:
                self._head = head
                self._apply_to_base(changes)
                if head.resource_version is not None:
                    self._collect(head.shards, head.next_shard)  # leftovers of a fold killed after its swap
                return  # nothing to write: a second apply writes nothing here either (unless leftovers)
            shards, next_shard = self._write_shards(merged, snapshot)
            journal = "".join([encode_journal_header(self.environment), *map(encode_journal_intent, carried.values())])
            try:
                self._head = self._write_head(head, shards, next_shard, journal if carried else "")
            except KubeConflict:
                conflict_backoff(attempt)
                continue  # the shards just written are named by no head: the next fold deletes them
            self._apply_to_base(changes)
            self._collect(shards, next_shard)
            return
        raise ApiError(
            "kubernetes",
            f"state {self.where}: still conflicting after {CONFLICT_ATTEMPTS} attempts",
            status=409,
            transient=True,
        )

    def _layout(self, records: Mapping[ResourceKey, OwnershipRecord], current: int) -> int:
        total = sum(record_size(key, record) for key, record in records.items())
        if current < 1 or total > current * SHARD_TARGET_BYTES * 2 or total < current * SHARD_TARGET_BYTES / 4:
            return max(1, math.ceil(total / SHARD_TARGET_BYTES))
        return current

    def _write_shards(
        self, records: Mapping[ResourceKey, OwnershipRecord], snapshot: _Snapshot
    ) -> tuple[list[str | None], int]:
        """The shard names for `records`: unchanged parts keep their ConfigMap, the others get a new one."""
        head = snapshot.head
        for key, record in records.items():
            if record_size(key, record) > MAX_OBJECT_BYTES and (
                len(gzip_b64(encode_records(self.environment, {key: record}))) * 3 // 4 > MAX_OBJECT_BYTES
            ):
                raise PermanentError(
                    f"state {self.where}: the record of {str(key)[:80]}... is too large for one ConfigMap "
                    f"(over {MAX_OBJECT_BYTES} bytes compressed); shorten that resource's name"
                )
        count = self._layout(records, len(head.shards))
        while True:
            if count > 64 * max(1, len(records)):
                raise PermanentError(f"state {self.where}: records too large to shard under the object limit")
            parts: list[dict[ResourceKey, OwnershipRecord]] = [{} for _ in range(count)]
            for key, record in records.items():
                parts[shard_of(key, count)][key] = record
            encoded = [gzip_b64(encode_records(self.environment, part)) if part else None for part in parts]
            if all(len(data or "") * 3 // 4 <= MAX_OBJECT_BYTES for data in encoded):
                break
            count *= 2  # an unlucky spread, or huge records: split further
        shards: list[str | None] = []
        next_shard = head.next_shard
        for index, (part, data) in enumerate(zip(parts, encoded, strict=True)):
            if data is None:
                shards.append(None)
            elif count == len(head.shards) and part == snapshot.parts[index] and head.shards[index] is not None:
                shards.append(head.shards[index])
            else:
                name, next_shard = self._create_shard(data, next_shard)
                shards.append(name)
        return shards, next_shard

    def _create_shard(self, data: str, number: int) -> tuple[str, int]:
        """Create `<name>-<number>` (or the next free number); returns its name and the number after it."""
        for _ in range(WRITE_ATTEMPTS * 4):
            name = f"{self.name}-{number}"
            labels = {**self._labels("shard"), SHARD_LABEL: str(number)}
            manifest = {"metadata": {"labels": labels}, "binaryData": {RECORDS_KEY: data}}
            try:
                self.kube.create_config_map(self.namespace, name, manifest)
            except KubeConflict:
                number += 1  # another writer's shard, not yet (or never) named by a head
                continue
            return name, number + 1
        raise ApiError("kubernetes", f"state {self.where}: no free shard name after {number}", status=409)

    def _collect(self, shards: list[str | None], next_shard: int) -> None:
        """Delete the shards no head names: numbered below the head just written, and not in it.

        A writer that read this head numbers its new shards from `next_shard` on, so none of them is
        deleted here; a writer still working from an older head will see its swap refused (409).
        """
        named = {name for name in shards if name is not None}
        try:
            found = self.kube.list_config_maps(self.namespace, {STATE_LABEL: self.name, PART_LABEL: "shard"})
            for live in found:
                meta = live.get("metadata") or {}
                name = str(meta.get("name"))
                try:
                    number = int((meta.get("labels") or {}).get(SHARD_LABEL, ""))
                except ValueError:
                    continue
                if name not in named and number < next_shard:
                    self.kube.delete_config_map(self.namespace, name)
        except KubeError as exc:  # the state is written; leftovers are collected by the next fold
            log.warning("state.shards_not_collected", env=self.environment, state=self.where, error=str(exc))
