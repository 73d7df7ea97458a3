"""Component health, read by the workloads plan, its gate and `reconcile health`: what degrades a component.

Pure. A component is degraded while a rollout of one of its Deployments is not complete (like
`kubectl rollout status`), or while its Dagster code location fails to load, is still LOADING or
is absent. The provider reads the Deployments and asks Dagster; these say what the answers mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.clients.kube.rollout import deployment_condition, rollout_complete, rollout_progress
from reconciler.core.model import ResourceKey
from reconciler.systems.workloads.dagster import LocationStatus


@dataclass(frozen=True)
class ComponentState:
    """One component as observe saw it: each carrier's image, what degrades it, the image to go back to."""

    images: Mapping[ResourceKey, str]
    problems: tuple[str, ...]
    known: bool
    """False when Dagster could not be asked: its location's health is unknown."""
    last_good: str | None

    @property
    def healthy(self) -> bool:
        return self.known and not self.problems


@dataclass(frozen=True)
class HealthRow:
    """One line of `reconcile health`: a code location or a Deployment, its status, and whether that is healthy."""

    what: str
    status: str
    ok: bool


def rollout_problem(deployment: Mapping[str, Any], *, detailed: bool = False) -> str | None:
    """Why a Deployment's rollout is not complete (None when it is), like `kubectl rollout status`.

    Short and stable for the plan (its replica counts would change the observation while it rolls out);
    `detailed` adds them, for `reconcile health`."""
    progress = rollout_progress(deployment)
    if rollout_complete(progress):
        return None
    stalled = progress.observed_generation >= progress.generation and (
        deployment_condition(deployment, "Progressing").get("reason") == "ProgressDeadlineExceeded"
    )
    text = f"rollout of {progress.name} {'failed (ProgressDeadlineExceeded)' if stalled else 'not complete'}"
    return f"{text}: {progress}" if detailed else text


def location_problem(location: str, statuses: Mapping[str, LocationStatus]) -> str | None:
    """Why a pinned code location is not healthy (None when it is)."""
    status = statuses.get(location)
    if status is None:
        return f"Dagster has no code location {location!r}"
    if status.loading:
        return f"code location {location} is still LOADING"
    if status.error is not None:
        first = status.error.splitlines()[0] if status.error.strip() else status.error
        return f"code location {location} fails to load ({status.error_class}): {first[:200]}"
    return None
