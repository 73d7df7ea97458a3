"""Ownership records: which live objects reconciler created or adopted, with secret fingerprints.

Read when planning (to find owned objects by id and to compare secrets), written by apply
after every successful action, so a failure part-way loses nothing. Never holds a secret
value. The file store appends each action to a journal beside the state file (one line,
whatever the number of records; actions that ended together, and the pending creates that start
after them, share one fsync) and folds it into the state file, written atomically, at the end of
apply; a ConfigMap store for the controller lives with it.

Before a create is sent, apply journals it as pending (`intend`); the action's record settles it.
A pending create nothing settled (the apply was killed with the request in flight) is kept, in
the journal and in the state file, until its `settle_by` has passed: planning waits for its object
until then instead of creating a second one (service/planning.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from reconciler.atomic import atomic_write, sync_directory
from reconciler.core.model import OwnershipRecord, PendingCreate, ResourceKey
from reconciler.errors import ReconcilerError

FORMAT_VERSION = 1
"""The state file's; `pendingCreates` was added without a new version (an older reader ignores it)."""
JOURNAL_FORMAT_VERSION = 2
"""Version 2 added pending-create lines, which version 1 readers could not skip; version 1 journals are read."""
READABLE_JOURNAL_VERSIONS = (1, 2)
# A record's `memo` (e.g. workloads' `lastGood`) is written only when it has entries, as an extra key that
# readers before it ignore: state files stay format 1 both ways (an older reconciler only forgets the memo).


def _entry(record: OwnershipRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": record.id, "fingerprints": dict(sorted(record.fingerprints.items()))}
    if record.memo:
        entry["memo"] = dict(sorted(record.memo.items()))
    return entry


def _record(key: ResourceKey, entry: Mapping[str, Any]) -> OwnershipRecord:
    memo = entry.get("memo") or {}
    if not isinstance(memo, dict):
        raise ValueError(f"{key}: memo is not an object")
    return OwnershipRecord(
        key, str(entry["id"]), dict(entry.get("fingerprints", {})), {str(k): str(v) for k, v in memo.items()}
    )


def encode_records(
    environment: str,
    records: Mapping[ResourceKey, OwnershipRecord],
    pending: Mapping[ResourceKey, PendingCreate] | None = None,
) -> str:
    body: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "environment": environment,
        "resources": {str(key): _entry(record) for key, record in sorted(records.items())},
    }
    if pending:
        body["pendingCreates"] = {str(key): _pending_fields(item) for key, item in sorted(pending.items())}
    return json.dumps(body, indent=2, sort_keys=False) + "\n"


def _pending_fields(pending: PendingCreate) -> dict[str, float]:
    return {"sentAt": pending.sent_at, "settleBy": pending.settle_by}


def _pending_from(key: ResourceKey, fields: Mapping[str, Any]) -> PendingCreate:
    return PendingCreate(key, float(fields["sentAt"]), float(fields["settleBy"]))


def decode_pending(text: str, origin: str) -> dict[ResourceKey, PendingCreate]:
    """The pending creates a state file carries (none in a file written before they existed)."""
    try:
        entries = json.loads(text).get("pendingCreates") or {}
        return {ResourceKey.parse(name): _pending_from(ResourceKey.parse(name), v) for name, v in entries.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReconcilerError(f"state {origin} is unreadable: pendingCreates: {exc}") from exc


def unsettled(pending: Mapping[ResourceKey, PendingCreate], now: float) -> dict[ResourceKey, PendingCreate]:
    """The pending creates whose object may still appear at `now`."""
    return {key: item for key, item in pending.items() if item.settle_by > now}


def decode_records(text: str, origin: str, environment: str) -> dict[ResourceKey, OwnershipRecord]:
    """Records of `environment`; a state written for another environment is refused, never merged."""
    try:
        body = json.loads(text)
        if body.get("formatVersion") != FORMAT_VERSION:
            raise ValueError(f"unsupported formatVersion {body.get('formatVersion')!r}")
        if body.get("environment") != environment:
            raise ReconcilerError(
                f"state {origin} belongs to environment {body.get('environment')!r}, not {environment!r}; "
                "point state.path at this environment's own state"
            )
        records: dict[ResourceKey, OwnershipRecord] = {}
        for name, entry in body.get("resources", {}).items():
            key = ResourceKey.parse(name)
            records[key] = _record(key, entry)
        return records
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReconcilerError(f"state {origin} is unreadable: {exc}") from exc


class StateStore(Protocol):
    """Where records live: a file locally, a ConfigMap in the cluster.

    `save` replaces every record; `record` sets (or, with None, drops) one record durably and
    cheaply, whatever the number of records, and settles the key's pending create; `intend`
    journals a create as pending, durably, before it is sent; `pending` is what the last `load`
    found pending; `compact` folds what `record` and `intend` wrote into the store's main copy
    (apply calls it once at the end), keeping the pending creates not settled yet.
    """

    def load(self) -> dict[ResourceKey, OwnershipRecord]: ...

    def pending(self) -> dict[ResourceKey, PendingCreate]: ...

    def intend(self, pending: PendingCreate) -> None: ...

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None: ...

    def record(self, key: ResourceKey, record: OwnershipRecord | None) -> None: ...

    def compact(self) -> None: ...


def journal_path(state_file: Path) -> Path:
    """The journal beside a state file: `.reconciler/state/qa.json.journal`."""
    return state_file.with_name(f"{state_file.name}.journal")


def encode_journal_header(environment: str) -> str:
    return json.dumps({"formatVersion": JOURNAL_FORMAT_VERSION, "environment": environment}) + "\n"


def encode_journal_intent(pending: PendingCreate) -> str:
    return json.dumps({"key": str(pending.key), "pendingCreate": _pending_fields(pending)}) + "\n"


def encode_journal_entry(key: ResourceKey, record: OwnershipRecord | None) -> str:
    entry: dict[str, Any] = {"key": str(key)}
    if record is None:
        entry["deleted"] = True
    else:
        entry.update(_entry(record))
    return json.dumps(entry) + "\n"


def replay_journal(
    text: str,
    origin: str,
    environment: str,
    records: dict[ResourceKey, OwnershipRecord],
    pending: dict[ResourceKey, PendingCreate] | None = None,
) -> dict[ResourceKey, OwnershipRecord]:
    """`records` with the journal's entries applied in order (a replay twice gives the same records).

    A pending-create line goes into `pending` (when given); a later record of its key settles it.

    A last line without its newline is an append cut short by a kill: it was never acknowledged
    (the newline is written and fsynced with the entry), so it is ignored, even when it parses.
    A whole line that does not parse is damage, and refused.
    """
    for number, line in enumerate(text.split("\n")[:-1], start=1):  # what follows the last newline is torn
        try:
            entry = json.loads(line)
            if number == 1:
                if entry.get("formatVersion") not in READABLE_JOURNAL_VERSIONS:
                    raise ValueError(
                        f"unsupported formatVersion {entry.get('formatVersion')!r} "
                        f"(this reconciler reads {' and '.join(map(str, READABLE_JOURNAL_VERSIONS))})"
                    )
                if entry.get("environment") != environment:
                    raise ReconcilerError(
                        f"state journal {origin} belongs to environment {entry.get('environment')!r}, "
                        f"not {environment!r}; point state.path at this environment's own state"
                    )
                continue
            key = ResourceKey.parse(entry["key"])
            if "pendingCreate" in entry:
                if pending is not None:
                    pending[key] = _pending_from(key, entry["pendingCreate"])
                continue
            if pending is not None:
                pending.pop(key, None)
            if entry.get("deleted"):
                records.pop(key, None)
            else:
                records[key] = _record(key, entry)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReconcilerError(f"state journal {origin} is unreadable at line {number}: {exc}") from exc
    return records


def _sync_data(descriptor: int) -> None:
    """Make an append durable: `fdatasync` where there is one (it writes the new length with the data, and skips
    the timestamps `fsync` also writes: 1.2 ms against 1.8 ms an append here), `fsync` elsewhere."""
    getattr(os, "fdatasync", os.fsync)(descriptor)


class FileStateStore:
    """Records in one JSON file, plus an append-only journal beside it while apply runs.

    Each `record` appends one line to the journal and syncs it to disk, so an action costs the same
    with 10 records or 10,000, and a kill at any point loses no acknowledged record. `compact`
    (end of apply) and the first write of the next run fold the journal into the state file,
    written atomically, then remove the journal. `load` reads the state file and replays any
    journal left behind, without writing: planning takes no lock, so it never rewrites files.
    """

    def __init__(self, path: Path, environment: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.journal = journal_path(path)
        self.environment = environment
        self._clock = clock
        self._stream: IO[str] | None = None
        self._pending: dict[ResourceKey, PendingCreate] = {}

    def load(self) -> dict[ResourceKey, OwnershipRecord]:
        journal = self._read(self.journal)  # before the state: a compaction in between loses nothing
        state = self._read(self.path)
        records, pending = {}, {}
        if state is not None:
            records = decode_records(state, str(self.path), self.environment)
            pending = decode_pending(state, str(self.path))
        if journal is not None:
            replay_journal(journal, str(self.journal), self.environment, records, pending)
        self._pending = pending
        return records

    def pending(self) -> dict[ResourceKey, PendingCreate]:
        return dict(self._pending)

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None:
        self._close_journal()
        self._write_state(records)
        self._remove_journal()

    def record(self, key: ResourceKey, record: OwnershipRecord | None) -> None:
        self.record_all([(key, record)])

    def record_all(
        self, entries: Sequence[tuple[ResourceKey, OwnershipRecord | None]], intents: Sequence[PendingCreate] = ()
    ) -> None:
        """`record` for several actions that ended together, then `intend` for the creates about to start: their
        lines in one write and one fsync (a group commit: apply records what finished and journals what it starts
        next at once, before any of those requests leaves)."""
        if not entries and not intents:
            return
        self._append(
            "".join(encode_journal_entry(key, record) for key, record in entries)
            + "".join(encode_journal_intent(pending) for pending in intents)
        )
        for key, _record in entries:
            self._pending.pop(key, None)
        for pending in intents:
            self._pending[pending.key] = pending

    def intend(self, pending: PendingCreate) -> None:
        self._append(encode_journal_intent(pending))
        self._pending[pending.key] = pending

    def _append(self, line: str) -> None:
        try:
            if self._stream is None:
                self.compact()  # a journal left by a killed run is folded in before appending after it
                self._stream = self._open_journal()
            self._stream.write(line)
            self._stream.flush()
            _sync_data(self._stream.fileno())
        except OSError as exc:
            raise ReconcilerError(f"cannot write state journal {self.journal}: {exc.strerror}") from exc

    def compact(self) -> None:
        """Fold the journal into the state file and remove it (nothing to do without a journal)."""
        self._close_journal()
        if not self.journal.exists():
            return
        records = self.load()
        self._write_state(records)
        self._remove_journal()

    def _read(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ReconcilerError(f"cannot read state {path}: {exc.strerror}") from exc

    def _write_state(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None:
        """The records, with the pending creates that may still land (the others are settled by time)."""
        self._pending = unsettled(self._pending, self._clock())
        try:
            atomic_write(self.path, encode_records(self.environment, records, self._pending), durable=True)
        except OSError as exc:
            raise ReconcilerError(f"cannot write state {self.path}: {exc.strerror}") from exc

    def _open_journal(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        stream = os.fdopen(descriptor, "w", encoding="utf-8")
        stream.write(encode_journal_header(self.environment))
        stream.flush()
        os.fsync(descriptor)
        sync_directory(self.path.parent)
        return stream

    def _close_journal(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _remove_journal(self) -> None:
        try:
            self.journal.unlink(missing_ok=True)
        except OSError as exc:
            raise ReconcilerError(f"cannot remove state journal {self.journal}: {exc.strerror}") from exc
