"""What a reconcile run reports as it goes: typed events for listeners (console, later Slack and metrics).

Plain data, beside the plan it talks about; the service emits them, renderers and notifiers read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from reconciler.core.plan import Action, Plan


class EventKind(Enum):
    """Every kind of event a run emits, in the order a run meets them."""

    LOCK_TAKEN_OVER = "lock taken over"
    """A lock left by a dead process on this host was taken over (`message` names it)."""
    PLAN_MADE = "plan made"
    """The plan about to run (`plan`): fresh, or the fresh twin of a checked saved plan."""
    WARNING = "warning"
    ACTION_STARTED = "action started"
    ACTION_PROGRESS = "action progress"
    """A line from a long action (a rollout's progress, a health gate's answer)."""
    ACTION_DONE = "action done"
    """The action succeeded and is recorded (`message`: its notes)."""
    ACTION_FAILED = "action failed"
    """The action failed (`message`: why); nothing after it starts."""
    APPLY_FINISHED = "apply finished"
    """The last event of an apply (`message`: a one-line summary)."""


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run on `environment`; `action` for action events, `plan` for PLAN_MADE."""

    kind: EventKind
    environment: str
    message: str = ""
    action: Action | None = None
    plan: Plan | None = None


class Listener(Protocol):
    """Anything told about a run as it goes; a listener must not raise (it would stop the run)."""

    def __call__(self, event: Event) -> None: ...
