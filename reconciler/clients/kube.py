"""Kubernetes client, under the workloads provider and the controller: a thin typed wrapper on the official client.

The only module in reconciler that imports `kubernetes`. It reads objects as plain dicts, writes
one field at a time (a strategic-merge or merge patch that names only that field and carries the
resourceVersion it was computed from, so it never overwrites a concurrent change; on 409 it
re-reads and retries a bounded number of times), waits for Deployment rollouts like
`kubectl rollout status` and says why one failed (ProgressDeadlineExceeded and the pods' waiting
reasons), keeps Leases for leader election and ConfigMaps as a JSON state store. Every failure
leaves as KubeError (KubeNotFound, KubeConflict): no kubernetes, urllib3 or pydantic exception
escapes.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException, OpenApiException
from kubernetes.config.config_exception import ConfigException

FIELD_MANAGER = "reconciler"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"
_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
T = TypeVar("T")


class KubeError(Exception):
    """A Kubernetes call failed; the message says which call and what the API server answered."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class KubeNotFound(KubeError):
    """The object does not exist (404)."""


class KubeConflict(KubeError):
    """Someone else wrote first (409): re-read and try again."""


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


def _condition(deployment: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
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


def _status_message(error: ApiException) -> tuple[str, str | None]:
    """The API server's Status message and reason, else the HTTP reason phrase."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]), body.get("reason")
    return str(error.reason or "no response body"), None


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class KubeClient:
    """Typed calls to one cluster. Construct with from_kubeconfig / in_cluster / from_environment."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        field_manager: str = FIELD_MANAGER,
        conflict_retries: int = 5,
        backoff_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.field_manager = field_manager
        self.conflict_retries = conflict_retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._now = now

    # --- construction ---

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubeClient:
        try:
            return cls(config.new_client_from_config(config_file=path, context=context))  # type: ignore[no-untyped-call]
        except (ConfigException, OSError, ValueError, TypeError) as error:
            raise KubeError(f"cannot load kubeconfig {path or '(default)'}: {error}") from error

    @classmethod
    def in_cluster(cls) -> KubeClient:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as error:
            raise KubeError(f"cannot load in-cluster configuration: {error}") from error
        return cls(client.ApiClient(configuration))

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """In-cluster when running in a pod and no kubeconfig is given, else the kubeconfig."""
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return cls.in_cluster()
        return cls.from_kubeconfig(kubeconfig, context)

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    # --- plumbing ---

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one API call; every failure becomes a KubeError naming `what`."""
        try:
            return call()
        except ApiException as error:
            message, reason = _status_message(error)
            status = int(error.status) if error.status else None
            kind = KubeNotFound if status == 404 else KubeConflict if status == 409 else KubeError
            raise kind(f"{what}: {message} (HTTP {status})", status=status, reason=reason) from None
        except (OpenApiException, urllib3.exceptions.HTTPError, pydantic.ValidationError, OSError, ValueError) as error:
            raise KubeError(f"{what}: {type(error).__name__}: {error}") from None

    def _dict(self, model: Any) -> dict[str, Any]:
        result = self.api_client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return dict(result) if isinstance(result, dict) else {}

    def _with_conflict_retry(self, what: str, attempt: Callable[[], bool]) -> bool:
        """Re-read and retry `attempt` on 409, a bounded number of times with a short backoff."""
        for tries in range(1, self.conflict_retries + 1):
            try:
                return attempt()
            except KubeConflict as conflict:
                if tries == self.conflict_retries:
                    raise KubeConflict(f"{what}: still conflicting after {tries} attempts: {conflict}") from None
                self._sleep(self.backoff_s * 2 ** (tries - 1))
        raise AssertionError("unreachable")

    # --- reads ---

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        what = f"read deployment {namespace}/{name}"
        return self._dict(self._call(what, lambda: self.apps.read_namespaced_deployment(name, namespace)))

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any]:
        what = f"read configmap {namespace}/{name}"
        return self._dict(self._call(what, lambda: self.core.read_namespaced_config_map(name, namespace)))

    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded (UTF-8)."""
        what = f"read secret {namespace}/{name}"
        secret = self._dict(self._call(what, lambda: self.core.read_namespaced_secret(name, namespace)))
        data = secret.get("data") or {}
        if key not in data:
            raise KubeNotFound(f"{what}: no key {key!r} (keys: {', '.join(sorted(data)) or 'none'})", status=404)
        try:
            return base64.b64decode(data[key], validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as error:
            raise KubeError(f"{what}: key {key!r} is not base64-encoded UTF-8 text") from error

    def list_pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        what = f"list pods in {namespace} ({label_selector or 'all'})"
        pods = self._call(what, lambda: self.core.list_namespaced_pod(namespace, label_selector=label_selector))
        return [self._dict(pod) for pod in pods.items or []]

    # --- writes of one field ---

    def _container(self, deployment: dict[str, Any], container: str) -> dict[str, Any]:
        containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        found = next((c for c in containers if c.get("name") == container), None)
        if found is None:
            meta = deployment.get("metadata") or {}
            names = ", ".join(str(c.get("name")) for c in containers) or "none"
            where = f"deployment {meta.get('namespace')}/{meta.get('name')}"
            raise KubeNotFound(f"{where} has no container {container!r} (containers: {names})", status=404)
        return dict(found)

    def _patch_container(self, namespace: str, name: str, resource_version: str, patch: dict[str, Any]) -> None:
        body = {
            "metadata": {"resourceVersion": resource_version},
            "spec": {"template": {"spec": {"containers": [patch]}}},
        }
        self._call(
            f"patch deployment {namespace}/{name}",
            lambda: self.apps.patch_namespaced_deployment(
                name, namespace, body, field_manager=self.field_manager, _content_type=STRATEGIC_MERGE
            ),
        )

    def set_container_image(self, namespace: str, deployment: str, container: str, image: str) -> bool:
        """Set one container's image; False when it already was. Touches only that field."""

        def attempt() -> bool:
            live = self.get_deployment(namespace, deployment)
            if self._container(live, container).get("image") == image:
                return False
            rv = str(live["metadata"]["resourceVersion"])
            self._patch_container(namespace, deployment, rv, {"name": container, "image": image})
            return True

        return self._with_conflict_retry(f"set image of {namespace}/{deployment}/{container}", attempt)

    def set_container_env(self, namespace: str, deployment: str, container: str, env_name: str, value: str) -> bool:
        """Set one env var of one container (a literal value replaces a valueFrom); False when it already was."""

        def attempt() -> bool:
            live = self.get_deployment(namespace, deployment)
            env = self._container(live, container).get("env") or []
            current = next((e for e in env if e.get("name") == env_name), None)
            if current is not None and current.get("value") == value and not current.get("valueFrom"):
                return False
            item: dict[str, Any] = {"name": env_name, "value": value}
            if current is not None and current.get("valueFrom"):
                item["valueFrom"] = None
            rv = str(live["metadata"]["resourceVersion"])
            self._patch_container(namespace, deployment, rv, {"name": container, "env": [item]})
            return True

        return self._with_conflict_retry(f"set env {env_name} of {namespace}/{deployment}/{container}", attempt)

    def set_config_map_key(self, namespace: str, name: str, key: str, value: str) -> bool:
        """Set one key of a ConfigMap's data; False when it already held that value."""

        def attempt() -> bool:
            live = self.get_config_map(namespace, name)
            if (live.get("data") or {}).get(key) == value:
                return False
            body = {"metadata": {"resourceVersion": str(live["metadata"]["resourceVersion"])}, "data": {key: value}}
            self._call(
                f"patch configmap {namespace}/{name}",
                lambda: self.core.patch_namespaced_config_map(
                    name, namespace, body, field_manager=self.field_manager, _content_type=MERGE_PATCH
                ),
            )
            return True

        return self._with_conflict_retry(f"set key {key} of configmap {namespace}/{name}", attempt)

    # --- rollouts ---

    def wait_for_rollout(
        self,
        namespace: str,
        name: str,
        timeout_s: float,
        poll_s: float = 1.0,
        on_progress: Callable[[RolloutProgress], None] | None = None,
    ) -> RolloutResult:
        """Poll until the rollout completes, its progress deadline is exceeded, or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        last: RolloutProgress | None = None
        while True:
            deployment = self.get_deployment(namespace, name)
            progress = rollout_progress(deployment)
            if on_progress is not None and progress != last:
                on_progress(progress)
            last = progress
            if rollout_complete(progress):
                return RolloutResult(ready=True, progress=progress)
            exceeded = progress.observed_generation >= progress.generation and (
                _condition(deployment, "Progressing").get("reason") == "ProgressDeadlineExceeded"
            )
            if exceeded or time.monotonic() >= deadline:
                return self._failed_rollout(deployment, progress, timeout_s, exceeded=exceeded)
            time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))

    def _failed_rollout(
        self, deployment: dict[str, Any], progress: RolloutProgress, timeout_s: float, *, exceeded: bool
    ) -> RolloutResult:
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        problems = pod_problems(self.list_pods(progress.namespace, selector)) if selector else ()
        if exceeded:
            condition = _condition(deployment, "Progressing")
            why = (
                f"ProgressDeadlineExceeded: {condition.get('message') or 'the rollout exceeded its progress deadline'}"
            )
        else:
            why = f"not complete after {timeout_s:g} s"
        reason = f"rollout of deployment {progress.namespace}/{progress.name} failed: {why} ({progress})"
        if problems:
            reason += "; pods: " + "; ".join(sorted({str(p) for p in problems}))
        return RolloutResult(False, progress, reason, problems, deadline_exceeded=exceeded)

    # --- leases (leader election) ---

    def _read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            what = f"read lease {namespace}/{name}"
            return self._dict(self._call(what, lambda: self.coordination.read_namespaced_lease(name, namespace)))
        except KubeNotFound:
            return None

    def _micro_time(self) -> str:
        return self._now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def acquire_or_renew_lease(self, namespace: str, name: str, holder: str, duration_s: float) -> bool:
        """True when `holder` holds the lease afterwards: created, renewed, or taken over after expiry."""
        stamp, seconds = self._micro_time(), max(1, math.ceil(duration_s))
        lease = self._read_lease(namespace, name)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": seconds,
                    "acquireTime": stamp,
                    "renewTime": stamp,
                    "leaseTransitions": 0,
                },
            }
            create = client.V1Lease.model_validate(body)
            try:
                self._call(
                    f"create lease {namespace}/{name}",
                    lambda: self.coordination.create_namespaced_lease(namespace, create),
                )
            except KubeConflict:
                return False  # someone else created it first
            return True
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != holder:
            if not self._lease_expired(spec):
                return False
            spec.update(holderIdentity=holder, acquireTime=stamp)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(renewTime=stamp, leaseDurationSeconds=seconds)
        return self._replace_lease(namespace, name, {**lease, "spec": spec})

    def _lease_expired(self, spec: Mapping[str, Any]) -> bool:
        if not spec.get("holderIdentity") or not spec.get("renewTime"):
            return True
        renewed = datetime.datetime.fromisoformat(str(spec["renewTime"]).replace("Z", "+00:00"))
        expires = renewed + datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))
        return self._now() >= expires

    def _replace_lease(self, namespace: str, name: str, lease: dict[str, Any]) -> bool:
        body = client.V1Lease.model_validate(lease)
        try:
            self._call(
                f"update lease {namespace}/{name}",
                lambda: self.coordination.replace_namespaced_lease(
                    name, namespace, body, field_manager=self.field_manager
                ),
            )
        except KubeConflict:
            return False  # someone else renewed or took it between our read and write
        return True

    def release_lease(self, namespace: str, name: str, holder: str) -> bool:
        """Give the lease up if `holder` holds it (as client-go does: empty holder, 1 s duration)."""
        lease = self._read_lease(namespace, name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != holder:
            return False
        spec = {**(lease.get("spec") or {}), "holderIdentity": None, "leaseDurationSeconds": 1}
        spec["renewTime"] = self._micro_time()
        return self._replace_lease(namespace, name, {**lease, "spec": spec})

    # --- a ConfigMap as a JSON state store ---

    def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data, or None when it does not exist."""
        versioned = self.read_config_map_versioned(namespace, name)
        return None if versioned is None else versioned[0]

    def read_config_map_versioned(self, namespace: str, name: str) -> tuple[dict[str, str], str] | None:
        """(data, resourceVersion) of a ConfigMap, for a later write_config_map_data; None when it does not exist."""
        try:
            live = self.get_config_map(namespace, name)
        except KubeNotFound:
            return None
        return {str(k): str(v) for k, v in (live.get("data") or {}).items()}, str(live["metadata"]["resourceVersion"])

    def write_config_map_data(
        self, namespace: str, name: str, data: Mapping[str, str], resource_version: str | None
    ) -> str:
        """Create (resource_version None) or replace the ConfigMap's data only if unchanged since
        `resource_version`; returns the new resourceVersion. KubeConflict when someone wrote first."""
        body = client.V1ConfigMap.model_validate(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
                "data": dict(data),
            }
        )
        if resource_version is None:
            what = f"create configmap {namespace}/{name}"
            call: Callable[[], Any] = lambda: self.core.create_namespaced_config_map(  # noqa: E731
                namespace, body, field_manager=self.field_manager
            )
        else:
            what = f"replace configmap {namespace}/{name}"
            call = lambda: self.core.replace_namespaced_config_map(  # noqa: E731
                name, namespace, body, field_manager=self.field_manager
            )
        written = self._dict(self._call(what, call))
        return str(written["metadata"]["resourceVersion"])
