"""Core: a saved plan checked against a fresh plan of the same environment, before apply runs it.

A saved plan runs only if a plan made now (fresh observation, current specs and secrets) has
exactly its actions, in its order: kind, resource, live id, reason, changes, desired fields,
secret references and fingerprints; and the same adoptions, forgotten records and live ids.
Anything else is named, so an edited plan file (an action's `id` pointed at another object, an
edited `desired`, an action added or removed) never runs: what runs is what was printed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.model import ResourceKey
from reconciler.core.plan import Action, Plan
from reconciler.core.plan_codec import action_to_json

ACTION_PARTS = ("action", "id", "reason", "changes")
DESIRED_PARTS = ("fields", "secrets", "dependsOn", "replaceOn", "exact")


def _canonical(action: Action) -> dict[str, Any]:
    """The action as a plan file holds it (what `--out` writes), so saved and fresh compare alike."""
    body: dict[str, Any] = json.loads(json.dumps(action_to_json(action), default=str))
    return body


def _label(action: Action) -> str:
    return f"`{action.kind.value} {action.key}`"


def _rotated_secret(saved: dict[str, Any], fresh: dict[str, Any]) -> str | None:
    """The reference of a secret whose value changed (same slot and reference, another fingerprint)."""
    before = {slot["path"]: slot for slot in (saved["desired"] or {}).get("secrets", [])}
    for slot in (fresh["desired"] or {}).get("secrets", []):
        old = before.get(slot["path"])
        if old is not None and old["ref"] == slot["ref"] and old["fingerprint"] != slot["fingerprint"]:
            return str(slot["ref"])
    return None


def _desired_difference(saved: dict[str, Any] | None, fresh: dict[str, Any] | None) -> str:
    if saved is None or fresh is None:
        return "its desired state"
    for part in DESIRED_PARTS:
        if saved.get(part) == fresh.get(part):
            continue
        if part == "fields" and isinstance(saved.get(part), dict) and isinstance(fresh.get(part), dict):
            names = sorted(set(saved[part]) | set(fresh[part]))
            edited = [name for name in names if saved[part].get(name) != fresh[part].get(name)]
            return f"desired field {edited[0]}" if edited else "its desired fields"
        return f"desired {part}"
    return "its desired state"


def action_difference(saved: Action, fresh: Action, live_ids: Mapping[ResourceKey, str]) -> str | None:
    """How a saved action differs from the fresh one for the same resource; None when identical.

    `live_ids` (what the fresh plan observed) names the object an edited id points at.
    """
    old, new = _canonical(saved), _canonical(fresh)
    if old == new:
        return None
    secret = _rotated_secret(old, new)
    if secret is not None:
        return f"secret {secret} of {fresh.key} changed since the plan was made"
    for part in ACTION_PARTS:
        if old[part] == new[part]:
            continue
        if part == "id":
            owner = next((str(key) for key, value in live_ids.items() if value == old["id"]), "no observed object")
            return f"{_label(saved)} names live id {old['id']!r} ({owner}), but {fresh.key} is {new['id']!r}"
        if part == "action":
            return f"{_label(saved)} is `{fresh.kind.value}` in a fresh plan"
        return f"{_label(saved)} differs from a fresh plan in its {part}"
    return f"{_label(saved)} differs from a fresh plan in {_desired_difference(old['desired'], new['desired'])}"


def _listed(name: str, saved: Sequence[ResourceKey], fresh: Sequence[ResourceKey]) -> list[str]:
    only_saved = [f"the saved plan {name} {key}, a fresh plan does not" for key in sorted(set(saved) - set(fresh))]
    only_fresh = [f"a fresh plan {name} {key}, the saved plan does not" for key in sorted(set(fresh) - set(saved))]
    return only_saved + only_fresh


def saved_plan_differences(saved: Plan, fresh: Plan) -> list[str]:
    """Every way the saved plan differs from a fresh plan of the same environment (empty: run it)."""
    problems: list[str] = []
    # A key may have two actions (a connection deleted before its end is replaced, created again after):
    # the n-th saved action of a key is checked against the n-th fresh one.
    fresh_actions: dict[ResourceKey, list[Action]] = {}
    for action in fresh.actions:
        fresh_actions.setdefault(action.key, []).append(action)
    seen: dict[ResourceKey, int] = {}
    for action in saved.actions:
        occurrence = seen.get(action.key, 0)
        seen[action.key] = occurrence + 1
        candidates = fresh_actions.get(action.key, [])
        if occurrence >= len(candidates):
            problems.append(f"the saved plan has {_label(action)}, which a fresh plan does not")
            continue
        difference = action_difference(action, candidates[occurrence], fresh.live_ids)
        if difference is not None:
            problems.append(difference)
    for key, candidates in fresh_actions.items():
        problems += [
            f"a fresh plan has {_label(action)}, which the saved plan does not"
            for action in candidates[seen.get(key, 0) :]
        ]
    if not problems and [a.key for a in saved.actions] != [a.key for a in fresh.actions]:
        problems.append("the saved plan's actions are in another order than a fresh plan's")
    problems += _listed("adopts", saved.adopted, fresh.adopted)
    problems += _listed("forgets", saved.forgotten, fresh.forgotten)
    for key in sorted(set(saved.live_ids) | set(fresh.live_ids)):
        old, new = saved.live_ids.get(key), fresh.live_ids.get(key)
        if old != new:
            problems.append(f"the saved plan's live id of {key} is {old!r}, but it is {new!r}")
    return problems
