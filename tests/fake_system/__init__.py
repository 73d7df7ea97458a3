"""A fourth system that lives only in the tests: notes kept in a JSON file, registered like a plugin.

It brings what a real system brings (an environment-file section, its loader, a provider, a
diff-env row) and is registered with `RECONCILER_SYSTEMS=tests.fake_system`, no production module
touched. The "live system" is a JSON file beside the project: `{name: {"id": ..., "text": ...}}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, ActionKind
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation, Provider
from reconciler.registry import Row, System
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment, SectionInput
from reconciler.spec.secrets import SecretRef

NAME = "notes"
KIND = "note"


class NotesSection(BaseModel):
    """`notes:` in an environment file: where the notes live, and what they say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str
    notes: dict[str, str] = {}


@dataclass(frozen=True)
class NotesSelection:
    store: str
    notes: Mapping[str, str]


def load(section: SectionInput) -> NotesSelection:
    settings: NotesSection = section.settings
    for name, text in settings.notes.items():
        if not text.strip():
            section.problems.at(section.raw, (NAME, "notes", name), "a note cannot be empty")
    return NotesSelection(settings.store, dict(settings.notes))


class NotesProvider:
    system = NAME
    prune = True

    def __init__(self, store: Path, selection: NotesSelection) -> None:
        self.store = store
        self.selection = selection

    def _read(self) -> dict[str, dict[str, str]]:
        return json.loads(self.store.read_text()) if self.store.exists() else {}

    def desired(self, fingerprints: Callable[[SecretRef], str]) -> list[DesiredResource]:
        return [
            DesiredResource(ResourceKey(NAME, KIND, name), {"text": text})
            for name, text in self.selection.notes.items()
        ]

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation:
        live = {
            ResourceKey(NAME, KIND, name): LiveResource(
                ResourceKey(NAME, KIND, name), note["id"], {"text": note["text"]}
            )
            for name, note in self._read().items()
        }
        return Observation(live)

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome:
        notes = self._read()
        name = action.key.name
        if action.kind == ActionKind.DELETE:
            notes.pop(name, None)
            outcome = ApplyOutcome(None)
        else:
            note_id = notes.get(name, {}).get("id") or f"n-{len(notes) + 1}"
            notes[name] = {"id": note_id, "text": self.selection.notes[name]}
            outcome = ApplyOutcome(note_id)
        self.store.write_text(json.dumps(notes, indent=2, sort_keys=True))
        return outcome

    def close(self) -> None:
        pass


def connect(root: Path, env: Environment, resolver: SecretResolver) -> Provider:
    selection = env.section(NAME, NotesSelection)
    assert selection is not None
    return NotesProvider(root / selection.store, selection)


def diff_rows(left: Environment, right: Environment) -> list[Row]:
    a, b = left.section(NAME, NotesSelection), right.section(NAME, NotesSelection)
    left_notes, right_notes = (a.notes if a else {}), (b.notes if b else {})
    return [
        ("note", name, left_notes.get(name, "—"), right_notes.get(name, "—"))
        for name in sorted(set(left_notes) | set(right_notes))
        if left_notes.get(name) != right_notes.get(name)
    ]


SYSTEM = System(
    name=NAME,
    section=NotesSection,
    load=load,
    connect=connect,
    summary=lambda selection: f"{len(selection.notes)} notes",
    diff_rows=diff_rows,
)
