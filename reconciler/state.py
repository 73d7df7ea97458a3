"""Ownership records: which live objects reconciler created or adopted, with secret fingerprints.

Read when planning (to find owned objects by id and to compare secrets), written by apply
after every successful action, so a failure part-way loses nothing. Never holds a secret
value. The file store writes atomically; a ConfigMap store for the controller lives with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from reconciler.atomic import atomic_write
from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import ReconcilerError

FORMAT_VERSION = 1


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
    """Where records live: a file locally, a ConfigMap in the cluster."""

    def load(self) -> dict[ResourceKey, OwnershipRecord]: ...

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None: ...


class FileStateStore:
    """Records in one JSON file, replaced atomically on every save."""

    def __init__(self, path: Path, environment: str) -> None:
        self.path = path
        self.environment = environment

    def load(self) -> dict[ResourceKey, OwnershipRecord]:
        if not self.path.exists():
            return {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ReconcilerError(f"cannot read state {self.path}: {exc.strerror}") from exc
        return decode_records(text, str(self.path), self.environment)

    def save(self, records: Mapping[ResourceKey, OwnershipRecord]) -> None:
        try:
            atomic_write(self.path, encode_records(self.environment, records))
        except OSError as exc:
            raise ReconcilerError(f"cannot write state {self.path}: {exc.strerror}") from exc
