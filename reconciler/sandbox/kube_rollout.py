"""Kubernetes stand-in, controller layer: how a Deployment's status and pods move during a rollout.

Beside kube_store.py (objects) and under kube_verbs.py (which calls it on every read and write).
There is no background thread: a write that changes the pod template starts a rollout (a new
ReplicaSet, or an old one on rollback) and records when; a read computes the status from the
clock, so the same moment always gives the same answer.

The model, simplified from the real controller: the new ReplicaSet gets all its pods at once;
they become ready evenly over `rollout_seconds` while the old ReplicaSet's pods are scaled down
as new ones become ready (never below spec.replicas available). Pods of an image that matches a
failure pattern never become ready and show the waiting reason; the old pods stay, and after
spec.progressDeadlineSeconds Progressing turns False with ProgressDeadlineExceeded. Rolling back
to a ReplicaSet whose pods are still running is complete at once. Scaling and readiness probes
are not simulated (a replica-count change takes effect at once).
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.kube_store import now_rfc3339

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the letters Kubernetes uses in generated names
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HISTORY_LIMIT = 10


def _safe_hash(text: str, length: int) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:length])


def template_hash(template: Any) -> str:
    """The `pod-template-hash` label value of a pod template."""
    return _safe_hash(json.dumps(template, sort_keys=True), 10)


@dataclass(frozen=True)
class ImageFailure:
    """What the kubelet reports for a container whose image matches `pattern`."""

    pattern: str
    reason: str  # ImagePullBackOff, ErrImagePull, CrashLoopBackOff
    message: str | None = None

    def describe(self, image: str, container: str, pod: str) -> str:
        if self.message:
            return self.message
        if self.reason == "ErrImagePull":
            return f'failed to pull and unpack image "{image}": not found'
        if self.reason == "CrashLoopBackOff":
            return f"back-off 5m0s restarting failed container={container} pod={pod}"
        return f'Back-off pulling image "{image}"'


def match_failures(template: Mapping[str, Any], failures: list[ImageFailure]) -> dict[str, list[str]]:
    """container name -> [reason, image, explicit message or ""] for containers whose image fails."""
    found: dict[str, list[str]] = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        image = str(container.get("image", ""))
        for failure in failures:
            if fnmatch.fnmatchcase(image, failure.pattern):
                found[str(container.get("name"))] = [failure.reason, image, failure.message or ""]
                break
    return found


# --- the controller's record of one Deployment -----------------------------------------------


def start_rollout(
    deployment: dict[str, Any],
    record: dict[str, Any] | None,
    failures: list[ImageFailure],
    moment: float,
    rollout_seconds: float,
) -> dict[str, Any]:
    """The record after a write: unchanged when the template is, else a rollout to its ReplicaSet."""
    template = deployment["spec"].get("template") or {}
    new_hash = template_hash(template)
    if record is not None and record["current"] == new_hash:
        return record
    running = ready_pods(deployment, record, moment, rollout_seconds) if record else {}
    revision = int(record["revision"]) + 1 if record else 1
    templates = dict(record["templates"]) if record else {}
    templates[new_hash] = copy.deepcopy(template)
    keep = [h for h in templates if h == new_hash or running.get(h)][-HISTORY_LIMIT:]
    return {
        "current": new_hash,
        "revision": revision,
        "started": moment,
        "carried": {h: n for h, n in running.items() if n},
        "failures": match_failures(template, failures),
        "templates": {h: templates[h] for h in keep},
    }


def _replicas(deployment: Mapping[str, Any]) -> int:
    return int(deployment["spec"].get("replicas", 1))


def _max_unavailable(deployment: Mapping[str, Any], replicas: int) -> int:
    value = ((deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(replicas * int(value[:-1]) / 100)
    return int(value)


def _new_ready(deployment: Mapping[str, Any], record: Mapping[str, Any], moment: float, rollout_seconds: float) -> int:
    replicas = _replicas(deployment)
    base = min(replicas, int(record["carried"].get(record["current"], 0)))
    if record["failures"]:
        return base
    elapsed = moment - float(record["started"])
    fraction = 1.0 if rollout_seconds <= 0 or elapsed >= rollout_seconds else max(0.0, elapsed / rollout_seconds)
    return min(replicas, base + math.floor((replicas - base) * fraction))


def ready_pods(
    deployment: Mapping[str, Any], record: Mapping[str, Any], moment: float, rollout_seconds: float
) -> dict[str, int]:
    """Ready pods per ReplicaSet hash at `moment`; old ones scale down as new pods become ready."""
    replicas = _replicas(deployment)
    new_ready = _new_ready(deployment, record, moment, rollout_seconds)
    room = max(0, replicas - new_ready)
    counts = {record["current"]: new_ready}
    for rs_hash, count in record["carried"].items():
        if rs_hash != record["current"]:
            counts[rs_hash] = min(int(count), room)
            room -= counts[rs_hash]
    return counts


def _condition(kind: str, status: bool, reason: str, message: str, moment: float) -> dict[str, Any]:
    stamp = now_rfc3339(moment)
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }


def deployment_status(
    deployment: Mapping[str, Any], record: Mapping[str, Any], moment: float, rollout_seconds: float
) -> dict[str, Any]:
    """What the Deployment controller would have written into status by `moment`."""
    replicas = _replicas(deployment)
    counts = ready_pods(deployment, record, moment, rollout_seconds)
    new_ready = counts[record["current"]]
    old = sum(n for h, n in counts.items() if h != record["current"])
    available = new_ready + old
    total = replicas + old
    started = float(record["started"])
    rs_name = f"{deployment['metadata']['name']}-{record['current']}"
    deadline = started + float(deployment["spec"].get("progressDeadlineSeconds", 600))
    done = new_ready == replicas and old == 0
    if done:
        finished = started if record["failures"] or rollout_seconds <= 0 else min(moment, started + rollout_seconds)
        reason, message = "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.'
        progressing = _condition("Progressing", True, reason, message, finished)
    elif moment > deadline:
        message = f'ReplicaSet "{rs_name}" has timed out progressing.'
        progressing = _condition("Progressing", False, "ProgressDeadlineExceeded", message, deadline)
    else:
        message = f'ReplicaSet "{rs_name}" is progressing.'
        progressing = _condition("Progressing", True, "ReplicaSetUpdated", message, started)
    if available >= replicas - _max_unavailable(deployment, replicas):
        availability = _condition(
            "Available", True, "MinimumReplicasAvailable", "Deployment has minimum availability.", started
        )
    else:
        message = "Deployment does not have minimum availability."
        availability = _condition("Available", False, "MinimumReplicasUnavailable", message, started)
    status: dict[str, Any] = {
        "observedGeneration": int(deployment["metadata"].get("generation", 1)),
        "replicas": total,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "conditions": [availability, progressing],
    }
    return {key: value for key, value in status.items() if value != 0 or key == "observedGeneration"}


# --- simulated pods ---------------------------------------------------------------------------


def _container_status(
    container: Mapping[str, Any], ready: bool, failure: list[str] | None, pod: str, moment: float
) -> dict[str, Any]:
    name, image = str(container.get("name")), str(container.get("image", ""))
    status: dict[str, Any] = {"name": name, "image": image, "imageID": "", "ready": ready, "restartCount": 0}
    if ready:
        status.update(started=True, state={"running": {"startedAt": now_rfc3339(moment)}})
        status["imageID"] = f"sandbox://{image}"
        status["containerID"] = f"containerd://{_safe_hash(pod + name, 24)}"
    elif failure:
        reason, _, explicit = failure
        message = ImageFailure("", reason, explicit or None).describe(image, name, pod)
        status.update(started=False, state={"waiting": {"reason": reason, "message": message}})
        if reason == "CrashLoopBackOff":
            status["restartCount"] = 5
            status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    else:
        status.update(started=False, state={"waiting": {"reason": "ContainerCreating"}})
    return status


def _pod(
    deployment: Mapping[str, Any], record: Mapping[str, Any], rs_hash: str, index: int, ready: bool, moment: float
) -> dict[str, Any]:
    template = record["templates"][rs_hash]
    meta = deployment["metadata"]
    suffix = _safe_hash(f"{meta['uid']}/{rs_hash}/{index}", 5)
    name = f"{meta['name']}-{rs_hash}-{suffix}"
    failures = record["failures"] if rs_hash == record["current"] else {}
    containers = (template.get("spec") or {}).get("containers") or []
    statuses = []
    for container in containers:
        failure = failures.get(str(container.get("name")))
        running = ready or (bool(failures) and failure is None)  # in a failing pod the others still start
        statuses.append(_container_status(container, running, failure, name, moment))
    running = all("running" in s["state"] or s["state"]["waiting"]["reason"] == "CrashLoopBackOff" for s in statuses)
    condition = "True" if ready else "False"
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": rs_hash}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": _uuid_like(name + meta["uid"]),
            "labels": labels,
            "creationTimestamp": now_rfc3339(float(record["started"])),
            "resourceVersion": meta["resourceVersion"],
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{meta['name']}-{rs_hash}",
                    "uid": _uuid_like(rs_hash),
                    "controller": True,
                }
            ],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
        "status": {
            "phase": "Running" if running else "Pending",
            "conditions": [{"type": "Ready", "status": condition}, {"type": "ContainersReady", "status": condition}],
            "containerStatuses": statuses,
        },
    }


def _uuid_like(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def simulated_pods(
    deployment: Mapping[str, Any], record: Mapping[str, Any], moment: float, rollout_seconds: float
) -> list[dict[str, Any]]:
    """The Deployment's pods at `moment`: every pod of the new ReplicaSet, the ready ones of the old."""
    counts = ready_pods(deployment, record, moment, rollout_seconds)
    pods = [
        _pod(deployment, record, record["current"], i, i < counts[record["current"]], moment)
        for i in range(_replicas(deployment))
    ]
    for rs_hash, count in counts.items():
        if rs_hash != record["current"]:
            pods.extend(_pod(deployment, record, rs_hash, i, True, moment) for i in range(count))
    return pods
