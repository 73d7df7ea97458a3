"""State of the Airbyte stand-in: its resources in memory, guarded by one lock, optionally kept in a JSON file.

Objects are stored in API shape with real secret values and a `tombstone` flag (Airbyte's word for a
soft-deleted actor). The file is the stand-in's database, so it holds secrets; it is replaced
atomically after every write so `reconcile sandbox` survives restarts.
"""

from __future__ import annotations

import copy
import json
import pathlib
import threading
from collections.abc import Mapping
from typing import Any

from reconciler.atomic import atomic_write  # the file holds secrets: mode 0600

SOURCES, DESTINATIONS, CONNECTIONS, JOBS = "sources", "destinations", "connections", "jobs"
KINDS = (SOURCES, DESTINATIONS, CONNECTIONS, JOBS)
ID_FIELDS = {SOURCES: "sourceId", DESTINATIONS: "destinationId", CONNECTIONS: "connectionId", JOBS: "jobId"}
TOMBSTONE = "tombstone"
_FORMAT_VERSION = 1


def kind_name(kind: str) -> str:
    """`source`, `Sources`, `sources` -> `sources`; ValueError for anything else."""
    name = kind.strip().lower()
    name = name if name.endswith("s") else f"{name}s"
    if name not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return name


class Store:
    """Resources by kind and id. Hold `lock` around any read-modify-write."""

    def __init__(self, state_file: pathlib.Path | None = None) -> None:
        self.lock = threading.RLock()
        self._state_file = state_file
        self._objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._next_job_id = 1

    # --- reads (callers copy before handing objects out) ---

    def get(self, kind: str, resource_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        with self.lock:
            found = self._objects[kind].get(str(resource_id))
            if found is None or (found.get(TOMBSTONE) and not include_deleted):
                return None
            return found

    def all(self, kind: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            return [obj for obj in self._objects[kind].values() if include_deleted or not obj.get(TOMBSTONE)]

    def snapshot(self, kind: str) -> list[dict[str, Any]]:
        """Deep copies of every stored object of a kind, tombstoned ones included."""
        with self.lock:
            return copy.deepcopy(list(self._objects[kind].values()))

    # --- writes (each one persists) ---

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            obj.setdefault(TOMBSTONE, False)
            self._objects[kind][str(obj[ID_FIELDS[kind]])] = obj
            self.save()

    def tombstone(self, kind: str, resource_id: str) -> None:
        with self.lock:
            self._objects[kind][str(resource_id)][TOMBSTONE] = True
            self.save()

    def deprecate_connection(self, connection: Mapping[str, Any]) -> None:
        """Soft-delete a connection the way Airbyte does: it stays readable, with status `deprecated`."""
        updated = {**copy.deepcopy(dict(connection)), "status": "deprecated", TOMBSTONE: True}
        self.put(CONNECTIONS, updated)

    def next_job_id(self) -> int:
        with self.lock:
            job_id = self._next_job_id
            self._next_job_id += 1
            return job_id

    # --- persistence ---

    def load(self) -> None:
        """Read the state file if there is one; a missing file means an empty store."""
        if self._state_file is None or not self._state_file.exists():
            return
        data = json.loads(self._state_file.read_text(encoding="utf-8"))
        with self.lock:
            for kind in KINDS:
                self._objects[kind] = {str(obj[ID_FIELDS[kind]]): obj for obj in data.get(kind, [])}
            self._next_job_id = int(data.get("nextJobId", 1))

    def save(self) -> None:
        """Atomically replace the state file (no-op without one)."""
        if self._state_file is None:
            return
        with self.lock:  # written under the lock too, so an older snapshot never replaces a newer one
            data: dict[str, Any] = {"version": _FORMAT_VERSION, "nextJobId": self._next_job_id}
            data.update({kind: list(self._objects[kind].values()) for kind in KINDS})
            atomic_write(self._state_file, json.dumps(data, indent=2, sort_keys=True))
