"""The drift policy, pure: which of a plan's actions against the applied revision are drift, and what to do.

Between commits the loop plans against the revision it applied; every action of that plan is a
difference no commit explains. `controller.yaml`'s `drift:` rules (first match by system, kind and
environment) give each one a policy (enforce, alert, ignore) and field paths to ignore, because
servers fill fields in. An update whose changes are all ignored is not drift. A create (someone
deleted it) or a delete (an owned resource the specs no longer want, with pruning on: the plan only
deletes what reconciler owns) has no fields to ignore.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.controller.config import DriftRule, DriftSettings, Policy
from reconciler.core.diff import FieldChange
from reconciler.core.model import ResourceKey
from reconciler.core.plan import Action, ActionKind, Plan


def rule_for(settings: DriftSettings, environment: str, key: ResourceKey) -> DriftRule | None:
    """The first rule matching the resource (None: the default policy, nothing ignored)."""
    for rule in settings.rules:
        if rule.system != key.system:
            continue
        if rule.kind is not None and rule.kind != key.kind:
            continue
        if rule.environment is not None and rule.environment != environment:
            continue
        return rule
    return None


def ignored(change: FieldChange, paths: Sequence[str]) -> bool:
    """Whether an ignore path covers the change: the same dotted path, or a prefix of it at a `.`."""
    name = change.name
    return any(name == path or name.startswith(f"{path}.") for path in paths)


@dataclass(frozen=True)
class Drifted:
    """One action of the plan that is drift, the policy that applies and the changes left after the ignore rules."""

    action: Action
    policy: Policy
    changes: tuple[FieldChange, ...]

    @property
    def key(self) -> ResourceKey:
        return self.action.key


def assess(plan: Plan, settings: DriftSettings) -> list[Drifted]:
    """The drift in `plan` (made against the applied revision), ignored policies and fields left out."""
    found: list[Drifted] = []
    for action in plan.actions:
        rule = rule_for(settings, plan.environment, action.key)
        policy = rule.policy if rule is not None else settings.default
        if policy == Policy.IGNORE:
            continue
        changes = action.changes
        if action.kind in (ActionKind.UPDATE, ActionKind.REPLACE) and rule is not None and rule.ignore:
            changes = tuple(change for change in action.changes if not ignored(change, rule.ignore))
            if not changes:
                continue  # only what the server fills in differs
        found.append(Drifted(action, policy, changes))
    return found


def to_enforce(drift: Sequence[Drifted]) -> list[ResourceKey]:
    """The resources whose actions an enforce re-applies, in plan order."""
    return [item.key for item in drift if item.policy == Policy.ENFORCE]
