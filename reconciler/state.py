"""Ownership records: which live objects reconciler created or adopted, with secret fingerprints.

Read when planning (to find owned objects by id and to compare secrets), written by apply
after every successful action, so a failure part-way loses nothing. Never holds a secret
value. The file store appends each action to a journal beside the state file (one line,
whatever the number of records; actions that ended together share one fsync) and folds it
into the state file, written atomically, at the end of apply; a ConfigMap store for the
controller lives with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from reconciler.atomic import atomic_write, sync_directory
from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import ReconcilerError

FORMAT_VERSION = 1
JOURNAL_FORMAT_VERSION = 1


def encode_records(environment: str, records: Mapping[ResourceKey, OwnershipRecord]) -> str:
    body: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "environment": environment,
        "resources": {
            str(key): {"id": record.id, "fingerprints": dict(sorted(record.fingerprints.items()))}
            for key, record in sorted(records.items())
        },
    }
    return json.dumps(body, indent=2, sort_keys=False) + "\n"


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
            records[key] = OwnershipRecord(key, str(entry["id"]), dict(entry.get("fingerprints", {})))
        return records
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReconcilerError(f"state {origin} is unreadable: {exc}") from exc


class StateStore(Protocol):
    """Where records live: a file locally, a ConfigMap in the cluster.

    `save` replaces every record; `record` sets (or, with None, drops) one record durably and
    cheaply, whatever the number of records; `compact` folds what `record` wrote into the
    store's main copy (apply calls it once at the end).
    """

    def load(self) -> dict[ResourceKey, OwnershipRecord]: ...

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None: ...

    def record(self, key: ResourceKey, record: OwnershipRecord | None) -> None: ...

    def compact(self) -> None: ...


def journal_path(state_file: Path) -> Path:
    """The journal beside a state file: `.reconciler/state/qa.json.journal`."""
    return state_file.with_name(f"{state_file.name}.journal")


def encode_journal_header(environment: str) -> str:
    return json.dumps({"formatVersion": JOURNAL_FORMAT_VERSION, "environment": environment}) + "\n"


def encode_journal_entry(key: ResourceKey, record: OwnershipRecord | None) -> str:
    entry: dict[str, Any] = {"key": str(key)}
    if record is None:
        entry["deleted"] = True
    else:
        entry["id"] = record.id
        entry["fingerprints"] = dict(sorted(record.fingerprints.items()))
    return json.dumps(entry) + "\n"


def replay_journal(
    text: str, origin: str, environment: str, records: dict[ResourceKey, OwnershipRecord]
) -> dict[ResourceKey, OwnershipRecord]:
    """`records` with the journal's entries applied in order (a replay twice gives the same records).

    A last line without its newline is an append cut short by a kill: it was never acknowledged
    (the newline is written and fsynced with the entry), so it is ignored, even when it parses.
    A whole line that does not parse is damage, and refused.
    """
    for number, line in enumerate(text.split("\n")[:-1], start=1):  # what follows the last newline is torn
        try:
            entry = json.loads(line)
            if number == 1:
                if entry.get("formatVersion") != JOURNAL_FORMAT_VERSION:
                    raise ValueError(
                        f"unsupported formatVersion {entry.get('formatVersion')!r} "
                        f"(this reconciler reads {JOURNAL_FORMAT_VERSION})"
                    )
                if entry.get("environment") != environment:
                    raise ReconcilerError(
                        f"state journal {origin} belongs to environment {entry.get('environment')!r}, "
                        f"not {environment!r}; point state.path at this environment's own state"
                    )
                continue
            key = ResourceKey.parse(entry["key"])
            if entry.get("deleted"):
                records.pop(key, None)
            else:
                records[key] = OwnershipRecord(key, str(entry["id"]), dict(entry.get("fingerprints", {})))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReconcilerError(f"state journal {origin} is unreadable at line {number}: {exc}") from exc
    return records


class FileStateStore:
    """Records in one JSON file, plus an append-only journal beside it while apply runs.

    Each `record` appends one line to the journal and fsyncs it, so an action costs the same
    with 10 records or 10,000, and a kill at any point loses no acknowledged record. `compact`
    (end of apply) and the first write of the next run fold the journal into the state file,
    written atomically, then remove the journal. `load` reads the state file and replays any
    journal left behind, without writing: planning takes no lock, so it never rewrites files.
    """

    def __init__(self, path: Path, environment: str) -> None:
        self.path = path
        self.journal = journal_path(path)
        self.environment = environment
        self._stream: IO[str] | None = None

    def load(self) -> dict[ResourceKey, OwnershipRecord]:
        journal = self._read(self.journal)  # before the state: a compaction in between loses nothing
        state = self._read(self.path)
        records = decode_records(state, str(self.path), self.environment) if state is not None else {}
        if journal is not None:
            replay_journal(journal, str(self.journal), self.environment, records)
        return records

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None:
        self._close_journal()
        self._write_state(records)
        self._remove_journal()

    def record(self, key: ResourceKey, record: OwnershipRecord | None) -> None:
        self.record_all([(key, record)])

    def record_all(self, entries: Sequence[tuple[ResourceKey, OwnershipRecord | None]]) -> None:
        """`record` for several actions that ended together: their lines in one write and one fsync (a group
        commit: apply records what finished at once before it starts anything after it)."""
        try:
            if self._stream is None:
                self.compact()  # a journal left by a killed run is folded in before appending after it
                self._stream = self._open_journal()
            self._stream.write("".join(encode_journal_entry(key, record) for key, record in entries))
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as exc:
            raise ReconcilerError(f"cannot write state journal {self.journal}: {exc.strerror}") from exc

    def compact(self) -> None:
        """Fold the journal into the state file and remove it (nothing to do without a journal)."""
        self._close_journal()
        if not self.journal.exists():
            return
        self._write_state(self.load())
        self._remove_journal()

    def _read(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ReconcilerError(f"cannot read state {path}: {exc.strerror}") from exc

    def _write_state(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None:
        try:
            atomic_write(self.path, encode_records(self.environment, records), durable=True)
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
