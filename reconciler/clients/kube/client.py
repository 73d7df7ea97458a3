"""Kubernetes client, under the workloads provider and the controller: a thin typed wrapper on the official client.

Only reconciler/clients/kube*.py import `kubernetes`. KubeClient reads objects as plain dicts,
writes one field at a time (a strategic-merge or merge patch that names only that field and
carries the resourceVersion it was computed from, so it never overwrites a concurrent change; on
409 it re-reads and retries a bounded number of times), waits for Deployment rollouts like
`kubectl rollout status` and says why one failed (ProgressDeadlineExceeded and the pods' waiting
reasons, from kube_rollout.py), keeps Leases for leader election (kube_leases.py) and ConfigMaps
as a JSON state store. Every failure leaves as KubeError (KubeNotFound, KubeConflict; see
kube_calls.py): no kubernetes, urllib3 or pydantic exception escapes.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from reconciler.cancellation import Cancellation
from reconciler.clients.kube.calls import FIELD_MANAGER, KubeConflict, KubeError, KubeNotFound
from reconciler.clients.kube.configmaps import ConfigMapCalls
from reconciler.clients.kube.leases import LeaseCalls, LeaseRecord
from reconciler.clients.kube.rollout import (
    PodProblem,
    RolloutProgress,
    RolloutResult,
    deployment_condition,
    pod_problems,
    rollout_complete,
    rollout_progress,
)
from reconciler.errors import ApiError
from reconciler.spec.environment import ClusterSettings

__all__ = [
    "FIELD_MANAGER",
    "MERGE_PATCH",
    "STRATEGIC_MERGE",
    "KubeClient",
    "KubeConflict",
    "KubeError",
    "KubeNotFound",
    "LeaseRecord",
    "PodProblem",
    "RolloutProgress",
    "RolloutResult",
    "pod_problems",
    "rollout_complete",
    "rollout_progress",
]

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class KubeClient(LeaseCalls, ConfigMapCalls):
    """Typed calls to one cluster. Construct with from_kubeconfig / in_cluster / from_environment.

    The plumbing every call goes through is KubeCalls (kube_calls.py); the lease calls come from LeaseCalls,
    the whole-ConfigMap calls of the state stores from ConfigMapCalls (configmaps.py).
    """

    # --- construction ---

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubeClient:
        try:
            return cls(config.new_client_from_config(config_file=path, context=context))  # type: ignore[no-untyped-call]
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or "malformed YAML"
            raise KubeError(f"cannot load kubeconfig {path or '(default)'}: not valid YAML{where}: {problem}") from None
        except (ConfigException, OSError, ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
            shape = "a kubeconfig holds clusters, contexts and users"
            raise KubeError(f"cannot load kubeconfig {path or '(default)'}: {error} ({shape})") from error

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

    def set_container_image(
        self, namespace: str, deployment: str, container: str, image: str, *, mirror_env: str | None = None
    ) -> bool:
        """Set one container's image; False when it already was. Touches only that field, and `mirror_env`: an
        env var of the same container that names its image (Dagster's DAGSTER_CURRENT_IMAGE), set to `image` in
        the same patch when the container sets it to a literal value (one rollout, never a pod naming another
        image than it runs)."""

        def attempt() -> bool:
            live = self.get_deployment(namespace, deployment)
            found = self._container(live, container)
            env = found.get("env") or []
            mirrored = [
                item
                for item in env
                if mirror_env is not None
                and item.get("name") == mirror_env
                and not item.get("valueFrom")
                and item.get("value") != image
            ]
            if found.get("image") == image and not mirrored:
                return False
            rv = str(live["metadata"]["resourceVersion"])
            patch: dict[str, Any] = {"name": container, "image": image}
            if mirrored:
                patch["env"] = [{"name": mirror_env, "value": image}]
            self._patch_container(namespace, deployment, rv, patch)
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
        cancellation: Cancellation | None = None,
    ) -> RolloutResult:
        """Poll until the rollout completes, its progress deadline is exceeded, or `timeout_s` passes.

        With a `cancellation`, the wait between polls ends (`CancelledError`) as soon as it is set.
        """
        deadline = time.monotonic() + timeout_s
        last: RolloutProgress | None = None
        pause = time.sleep if cancellation is None else cancellation.wait
        while True:
            if cancellation is not None:
                cancellation.raise_if_cancelled()
            deployment = self.get_deployment(namespace, name)
            progress = rollout_progress(deployment)
            if on_progress is not None and progress != last:
                on_progress(progress)
            last = progress
            if rollout_complete(progress):
                return RolloutResult(ready=True, progress=progress)
            exceeded = progress.observed_generation >= progress.generation and (
                deployment_condition(deployment, "Progressing").get("reason") == "ProgressDeadlineExceeded"
            )
            if exceeded or time.monotonic() >= deadline:
                return self._failed_rollout(deployment, progress, timeout_s, exceeded=exceeded)
            pause(max(0.0, min(poll_s, deadline - time.monotonic())))

    def _failed_rollout(
        self, deployment: dict[str, Any], progress: RolloutProgress, timeout_s: float, *, exceeded: bool
    ) -> RolloutResult:
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        problems = pod_problems(self.list_pods(progress.namespace, selector)) if selector else ()
        if exceeded:
            condition = deployment_condition(deployment, "Progressing")
            why = (
                f"ProgressDeadlineExceeded: {condition.get('message') or 'the rollout exceeded its progress deadline'}"
            )
        else:
            why = f"not complete after {timeout_s:g} s"
        reason = f"rollout of deployment {progress.namespace}/{progress.name} failed: {why} ({progress})"
        if problems:
            reason += "; pods: " + "; ".join(sorted({str(p) for p in problems}))
        return RolloutResult(False, progress, reason, problems, deadline_exceeded=exceeded)

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


IN_CLUSTER = "in-cluster"


def cluster_client(root: Path, settings: ClusterSettings, system: str) -> KubeClient:
    """The cluster `settings` name: its kubeconfig (relative to the project) or in-cluster config."""
    kubeconfig = settings.kubeconfig
    try:
        if kubeconfig == IN_CLUSTER:
            return KubeClient.in_cluster()
        if kubeconfig and not Path(kubeconfig).is_absolute():
            kubeconfig = str(root / kubeconfig)
        return KubeClient.from_environment(kubeconfig or None, settings.context)
    except KubeError as exc:
        raise ApiError(system, f"cannot load Kubernetes configuration: {exc}") from exc
