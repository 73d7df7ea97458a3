"""Alert records: which message stands for which alert, kept beside an environment's ownership records.

Beside the state (same layer): the controller's notifier loads them each cycle and saves what it
posted or edited, so a restart or a new leader edits the same messages instead of posting new ones.
This module holds the record, the `AlertStore` port (re-exported by `controller/ports.py`), the
codec shared by every store, the per-key merge a store applies when someone wrote since its read,
and the file store used with file state (`.reconciler/state/<env>.alerts.json`); the Kubernetes
store keeps the same document in a ConfigMap beside the state shards (clients/kube/alert_store.py).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reconciler.atomic import atomic_write
from reconciler.errors import ReconcilerError

ALERTS_FORMAT_VERSION = 1


@dataclass(frozen=True)
class AlertRecord:
    """Which message stands for one alert, so the next cycle (or the next leader) edits it instead of posting."""

    key: str
    channel: str
    ts: str
    """The message's Slack timestamp; "" when it was posted through an incoming webhook, which cannot edit it."""
    digest: str
    """A hash of what the message says (never a time): equal means nothing new to tell."""
    resolved: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)


class AlertStore(Protocol):
    """One environment's alert records, kept beside its ownership records (a file, or its state ConfigMap)."""

    def load(self) -> dict[str, AlertRecord]: ...

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        """Replace every record (a conflicting concurrent write is retried or raised, never lost silently)."""
        ...


class MemoryAlertStore:
    """Alert records in memory (tests, and a controller that keeps no state)."""

    def __init__(self) -> None:
        self._alerts: dict[str, AlertRecord] = {}

    def load(self) -> dict[str, AlertRecord]:
        return dict(self._alerts)

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        self._alerts = dict(alerts)


def encode_alerts(environment: str, alerts: Mapping[str, AlertRecord]) -> str:
    body: dict[str, Any] = {
        "formatVersion": ALERTS_FORMAT_VERSION,
        "environment": environment,
        "alerts": {
            key: {
                "channel": alert.channel,
                "ts": alert.ts,
                "digest": alert.digest,
                "resolved": alert.resolved,
                "extra": dict(sorted(alert.extra.items())),
            }
            for key, alert in sorted(alerts.items())
        },
    }
    return json.dumps(body, indent=1) + "\n"


def decode_alerts(text: str, origin: str, environment: str) -> dict[str, AlertRecord]:
    """The alert records of `environment`; records written for another environment are refused, never merged."""
    try:
        body = json.loads(text)
        if body.get("formatVersion") != ALERTS_FORMAT_VERSION:
            raise ValueError(f"unsupported formatVersion {body.get('formatVersion')!r}")
        if body.get("environment") != environment:
            raise ReconcilerError(
                f"alert records {origin} belong to environment {body.get('environment')!r}, not {environment!r}"
            )
        return {
            str(key): AlertRecord(
                str(key),
                str(entry["channel"]),
                str(entry["ts"]),
                str(entry["digest"]),
                bool(entry.get("resolved", False)),
                {str(k): str(v) for k, v in (entry.get("extra") or {}).items()},
            )
            for key, entry in body.get("alerts", {}).items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReconcilerError(f"alert records {origin} are unreadable: {exc}") from exc


def merge_alerts(
    base: Mapping[str, AlertRecord], ours: Mapping[str, AlertRecord], theirs: Mapping[str, AlertRecord]
) -> dict[str, AlertRecord]:
    """`theirs` (what is stored now) with only the keys we changed since we read `base` set (or dropped) as in `ours`.

    A record another writer added or changed since our read is kept unless we changed that key too.
    """
    merged = dict(theirs)
    for key in set(base) | set(ours):
        if base.get(key) == ours.get(key):
            continue
        if key in ours:
            merged[key] = ours[key]
        else:
            merged.pop(key, None)
    return merged


def alerts_path(state_file: Path, environment: str) -> Path:
    """The alert records beside a state file: `.reconciler/state/qa.alerts.json` beside `qa.json`."""
    return state_file.with_name(f"{environment}.alerts.json")


class FileAlertStore:
    """Alert records in one JSON file beside the state file, replaced atomically.

    `save` re-reads the file under an exclusive `flock` (of `<file>.lock`) and applies only the keys
    changed since this store's last `load` or `save`, so two writers on one host lose nothing.
    """

    def __init__(self, path: Path, environment: str) -> None:
        self.path = path
        self.environment = environment
        self._base: dict[str, AlertRecord] = {}

    def load(self) -> dict[str, AlertRecord]:
        self._base = self._read()
        return dict(self._base)

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        ours = dict(alerts)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path.with_name(f"{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ReconcilerError(f"cannot lock alert records {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            merged = merge_alerts(self._base, ours, self._read())
            atomic_write(self.path, encode_alerts(self.environment, merged), durable=True)
        except OSError as exc:
            raise ReconcilerError(f"cannot write alert records {self.path}: {exc.strerror}") from exc
        finally:
            os.close(descriptor)
        self._base = ours

    def _read(self) -> dict[str, AlertRecord]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ReconcilerError(f"cannot read alert records {self.path}: {exc.strerror}") from exc
        return decode_alerts(text, str(self.path), self.environment)
