"""Whether a component's images are rolled out in an environment: the read-only look `promote` takes at its source.

For every Deployment that carries one of the components (its image, or an env var naming the
dbt image), the rollout must be complete as `kubectl rollout status` reads it (generation
observed, every replica updated and available, no old replica left) and no pod may be waiting
(`CrashLoopBackOff`, `ImagePullBackOff`). A ConfigMap key does not roll out: its value matching
the pin is all there is to check (the plan does that). Each Deployment is read once; nothing is
written.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.clients.kube.client import KubeClient, KubeError, pod_problems, rollout_complete, rollout_progress
from reconciler.clients.kube.rollout import deployment_condition
from reconciler.errors import ApiError
from reconciler.systems.workloads.rules import SYSTEM, CarrierRef
from reconciler.systems.workloads.spec import ConfigMapKey


def rollout_problems(kube: KubeClient, refs: Iterable[CarrierRef]) -> list[str]:
    """Why each Deployment carrying these components is not rolled out and running; [] when every one is."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for ref in refs:
        carrier = ref.carrier
        if isinstance(carrier, ConfigMapKey) or (ref.namespace, carrier.deployment) in seen:
            continue
        seen.add((ref.namespace, carrier.deployment))
        try:
            deployment = kube.get_deployment(ref.namespace, carrier.deployment)
            selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            waiting = pod_problems(kube.list_pods(ref.namespace, selector)) if selector else ()
        except KubeError as exc:
            raise ApiError(SYSTEM, f"{ref.label}: {exc}", status=exc.status, transient=exc.retryable) from exc
        progress = rollout_progress(deployment)
        complete = rollout_complete(progress)
        if complete and not waiting:
            continue
        why = [] if complete else [f"rollout not complete ({progress})"]
        stalled = deployment_condition(deployment, "Progressing")
        if stalled.get("reason") == "ProgressDeadlineExceeded":
            why.append(f"ProgressDeadlineExceeded: {stalled.get('message') or 'the rollout exceeded its deadline'}")
        why += sorted({f"pod {p.pod}: {p}" for p in waiting})
        problems.append(f"{ref.label} (carrier of {ref.component}): {'; '.join(why)}")
    return problems
