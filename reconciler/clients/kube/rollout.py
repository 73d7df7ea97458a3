"""Kubernetes client, rollout observation: how far a Deployment's rollout is, and why its pods are stuck.

Pure functions over Deployments and Pods read as plain dicts; KubeClient.wait_for_rollout (kube.py)
polls with them, the way `kubectl rollout status` does, and the workloads provider reports what
they say. No kubernetes import here: these read API shapes, not client models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class PodProblem:
    """Why one container of one pod is not running."""

    pod: str
    container: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


@dataclass(frozen=True)
class RolloutProgress:
    """One look at a Deployment during a rollout."""

    namespace: str
    name: str
    generation: int
    observed_generation: int
    replicas: int  # desired
    updated: int
    available: int
    total: int  # pods of every ReplicaSet, old ones included

    def __str__(self) -> str:
        if self.observed_generation < self.generation:
            return f"deployment {self.namespace}/{self.name}: waiting for generation {self.generation} to be observed"
        text = f"deployment {self.namespace}/{self.name}: {self.updated} of {self.replicas} updated"
        text += f", {self.available} available"
        old = self.total - self.updated
        return text + (f", {old} old replica{'s' if old != 1 else ''} pending termination" if old > 0 else "")


@dataclass(frozen=True)
class RolloutResult:
    """How a wait for a rollout ended: `ready`, or `reason` says why not (with the pods' problems)."""

    ready: bool
    progress: RolloutProgress
    reason: str | None = None
    pod_problems: tuple[PodProblem, ...] = ()
    deadline_exceeded: bool = False


def deployment_condition(deployment: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The status condition of this type (`Progressing`, `Available`), or {} when there is none."""
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def rollout_progress(deployment: Mapping[str, Any]) -> RolloutProgress:
    meta, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    return RolloutProgress(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        updated=int(status.get("updatedReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        total=int(status.get("replicas") or 0),
    )


def rollout_complete(progress: RolloutProgress) -> bool:
    """Like `kubectl rollout status`: generation observed, every replica updated and available, no old ones."""
    return (
        progress.observed_generation >= progress.generation
        and progress.updated >= progress.replicas
        and progress.total <= progress.updated
        and progress.available >= progress.updated
    )


def pod_problems(pods: list[dict[str, Any]]) -> tuple[PodProblem, ...]:
    """Waiting containers of these pods (still-starting ones left out), one per distinct reason and message."""
    seen: dict[tuple[str, str, str], PodProblem] = {}
    for pod in pods:
        status = pod.get("status") or {}
        for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (container.get("state") or {}).get("waiting")
            if not waiting or waiting.get("reason") in _STARTING_REASONS:
                continue
            problem = PodProblem(
                pod=str((pod.get("metadata") or {}).get("name", "")),
                container=str(container.get("name", "")),
                reason=str(waiting.get("reason") or "Waiting"),
                message=str(waiting.get("message") or ""),
            )
            seen.setdefault((problem.container, problem.reason, problem.message), problem)
    return tuple(seen.values())
