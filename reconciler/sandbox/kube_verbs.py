"""Kubernetes stand-in, the verbs: what GET, LIST, POST, PUT, PATCH (four formats) and DELETE do to stored objects.

Under kube_server.py, which authenticates and routes a request, takes the store lock and calls one
verb here. Every write goes through `commit`: it validates and stamps the object (kube_store.py),
records field ownership (kube_fields.py) and lets the Deployment controller (kube_rollout.py)
start a rollout; reads settle a Deployment's status up to now first. The faults the test hooks
inject (images that never become ready, writes that conflict) are read here.
"""

from __future__ import annotations

import copy
import secrets as token_bytes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.sandbox import kube_fields, kube_patch
from reconciler.sandbox import kube_rollout as rollout
from reconciler.sandbox import kube_store as ks
from reconciler.sandbox.http_util import Request
from reconciler.sandbox.kube_requests import field_manager, json_body, parse_selector, selects
from reconciler.sandbox.kube_store import ApiStatusError, KubeStore, ResourceType

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_PATCH)


@dataclass
class Faults:
    """What the stand-in's test hooks ask the verbs to get wrong. Hold `lock` to read or change it."""

    failures: list[rollout.ImageFailure] = field(default_factory=list)
    forced_conflicts: int = 0
    disrupted: dict[tuple[str, str | None], tuple[int | None, float]] = field(default_factory=dict)
    """(resource type plural, User-Agent or None for all) -> (status answered or None, seconds each request waits)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class KubeVerbs:
    """The verbs on one store's objects. Callers hold `store.lock`; errors are ApiStatusError."""

    def __init__(
        self, store: KubeStore, faults: Faults, rollout_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self.store = store
        self.rollout_seconds = rollout_seconds
        self._faults = faults

    # --- verbs ---

    def existing(self, rt: ResourceType, namespace: str, name: str | None) -> dict[str, Any]:
        obj = self.store.objects.get((rt.plural, namespace, str(name)))
        if obj is None:
            raise ks.not_found(rt, str(name))
        self._settle(rt, obj)
        return obj

    def list_objects(self, rt: ResourceType, namespace: str, selector: str) -> dict[str, Any]:
        terms = parse_selector(selector)
        if rt is ks.PODS:
            candidates = self._pods(namespace)
        else:
            candidates = self.store.listed(rt, namespace)
            for obj in candidates:
                self._settle(rt, obj)
        items = [
            {k: v for k, v in copy.deepcopy(obj).items() if k not in ("apiVersion", "kind")}
            for obj in candidates
            if selects(terms, obj["metadata"].get("labels") or {})
        ]
        metadata = {"resourceVersion": self.store.resource_version}
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}

    def create(self, rt: ResourceType, namespace: str, body: dict[str, Any], manager: str) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            raise ks.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{token_bytes.token_hex(3)[:5]}"
        if not meta.get("name"):
            raise ks.invalid(rt, "", [("metadata.name", "Required value: name or generateName is required")])
        meta["namespace"] = namespace
        for system_field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            meta.pop(system_field, None)
        if (rt.plural, namespace, meta["name"]) in self.store.objects:
            raise ks.already_exists(rt, str(meta["name"]))
        return copy.deepcopy(self.commit(rt, None, body, manager))

    def replace(
        self, rt: ResourceType, namespace: str, name: str, body: dict[str, Any], manager: str
    ) -> dict[str, Any]:
        old = self.existing(rt, namespace, name)
        self._check_version(rt, old, body)
        return copy.deepcopy(self.commit(rt, old, body, manager))

    def patch(self, rt: ResourceType, namespace: str, name: str, request: Request) -> dict[str, Any]:
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            accepted = ", ".join(PATCH_TYPES)
            message = f"the body of the request was in an unknown format - accepted media types include: {accepted}"
            raise ApiStatusError(415, "UnsupportedMediaType", message)
        if content_type == APPLY_PATCH:
            return self._apply(rt, namespace, name, request)
        old = self.existing(rt, namespace, name)
        patch = json_body(request.body)
        if content_type == JSON_PATCH:
            carries = isinstance(patch, list) and any(
                isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in patch
            )
            patched = kube_patch.json_patch(old, patch)
        else:
            if not isinstance(patch, dict):
                raise ks.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
            carries = bool((patch.get("metadata") or {}).get("resourceVersion"))
            merge = kube_patch.merge_patch if content_type == MERGE_PATCH else kube_patch.strategic_merge
            patched = merge(copy.deepcopy(old), patch)
        if not isinstance(patched, dict):
            raise ks.bad_request("the patch did not produce an object")
        self._check_version(rt, old, patched, carries=carries)
        return copy.deepcopy(self.commit(rt, old, patched, field_manager(request)))

    def _apply(self, rt: ResourceType, namespace: str, name: str, request: Request) -> dict[str, Any]:
        manager = request.first("fieldManager")
        if not manager:
            message = (
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
            )
            raise ApiStatusError(422, "Invalid", message, {"group": "meta.k8s.io", "kind": "PatchOptions"})
        try:
            config = yaml.safe_load(request.body.decode("utf-8") or "{}")
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ks.bad_request(f"error decoding YAML: {error}") from error
        if not isinstance(config, dict) or config.get("kind") != rt.kind:
            raise ks.bad_request(f"the body of an apply request must be a {rt.kind} ({rt.api_version})")
        meta = config.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ks.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        meta.update(name=name, namespace=namespace)
        config.pop("status", None)
        existing = self.store.objects.get((rt.plural, namespace, name))
        if existing is None:
            created = self.commit(rt, None, copy.deepcopy(config), manager, apply=(config, set()))
            return copy.deepcopy(created)
        old = self.existing(rt, namespace, name)
        self._check_version(rt, old, config, carries=bool(meta.get("resourceVersion")))
        conflicts = kube_fields.apply_conflicts(old, config, manager)
        if conflicts and request.first("force") != "true":
            raise kube_fields.apply_conflict_error(rt, name, conflicts)
        merged = kube_patch.strategic_merge(copy.deepcopy(old), {k: v for k, v in config.items() if k != "metadata"})
        merged["metadata"] = kube_patch.strategic_merge(
            old["metadata"], {k: v for k, v in meta.items() if k != "resourceVersion"}
        )
        return copy.deepcopy(self.commit(rt, old, merged, manager, apply=(config, set(conflicts))))

    def delete(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        old = self.existing(rt, namespace, name)
        key = (rt.plural, namespace, name)
        del self.store.objects[key]
        self.store.controller.pop(key, None)
        self.store.next_resource_version()
        self.store.save()
        details = {**ks.status_details(rt, name), "uid": old["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    # --- the write path every verb shares ---

    def _check_version(
        self, rt: ResourceType, old: dict[str, Any], body: dict[str, Any], *, carries: bool | None = None
    ) -> None:
        """409 when the body's resourceVersion is stale, or when a forced conflict is queued."""
        wanted = str((body.get("metadata") or {}).get("resourceVersion") or "")
        if carries is None:
            carries = bool(wanted)
        if carries:
            with self._faults.lock:
                forced = self._faults.forced_conflicts > 0
                self._faults.forced_conflicts -= int(forced)
            if forced:
                old["metadata"]["resourceVersion"] = self.store.next_resource_version()
                self.store.save()
                raise ks.modified_conflict(rt, str(old["metadata"]["name"]))
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ks.modified_conflict(rt, str(old["metadata"]["name"]))

    def commit(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        manager: str,
        *,
        apply: tuple[dict[str, Any], set[kube_fields.Path]] | None = None,
    ) -> dict[str, Any]:
        """Validate, stamp and store a write; the Deployment controller reacts to template changes."""
        moment = self._clock()
        meta = new.setdefault("metadata", {})
        name = str(meta.get("name") or (old or {}).get("metadata", {}).get("name") or "")
        if old is not None and meta.get("name", name) != old["metadata"]["name"]:
            url_name = old["metadata"]["name"]
            raise ks.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({url_name})"
            )
        namespace = str(old["metadata"]["namespace"] if old else meta["namespace"])
        meta.update(name=name, namespace=namespace)
        meta.pop("managedFields", None)
        if rt is ks.SECRETS:
            ks.fold_secret(new)
        if rt is ks.DEPLOYMENTS:
            ks.default_deployment(new)
            new.pop("status", None)
            if old is not None and "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        ks.validate(rt, new)
        self.store.stamp_write(rt, old, new, moment)
        stamp = ks.now_rfc3339(moment)
        if apply is None:
            kube_fields.record_update(old, new, manager, rt, stamp)
        else:
            if old is not None:
                new["metadata"]["managedFields"] = old["metadata"].get("managedFields") or []
            kube_fields.record_apply(new, apply[0], manager, apply[1], rt, stamp)
        key = (rt.plural, namespace, name)
        self.store.objects[key] = new
        if rt is ks.DEPLOYMENTS:
            self._observe(key, new, moment)
        self.store.save()
        return new

    def _observe(self, key: ks.Key, deployment: dict[str, Any], moment: float) -> None:
        with self._faults.lock:
            failures = list(self._faults.failures)
        record = rollout.start_rollout(
            deployment, self.store.controller.get(key), failures, moment, self.rollout_seconds
        )
        self.store.controller[key] = record
        annotations = deployment["metadata"].setdefault("annotations", {})
        annotations[rollout.REVISION_ANNOTATION] = str(record["revision"])
        deployment["status"] = rollout.deployment_status(deployment, record, moment, self.rollout_seconds)

    def settle_first_rollout(self, namespace: str, name: str) -> None:
        """A just-created Deployment as if its first rollout had ended long ago (seeding a running cluster)."""
        record = self.store.controller.get((ks.DEPLOYMENTS.plural, namespace, name))
        if record is not None and record["revision"] == 1:
            record["started"] = 0.0

    def _settle(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Bring a Deployment's status up to now, as the controller would (its status write bumps resourceVersion)."""
        if rt is not ks.DEPLOYMENTS:
            return
        key = (rt.plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
        record = self.store.controller.get(key)
        if record is None:
            self._observe(key, obj, self._clock())
            record = self.store.controller[key]
        status = rollout.deployment_status(obj, record, self._clock(), self.rollout_seconds)
        if status != obj.get("status"):
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self.store.next_resource_version()
            self.store.save()

    def _pods(self, namespace: str) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = []
        for deployment in self.store.listed(ks.DEPLOYMENTS, namespace):
            self._settle(ks.DEPLOYMENTS, deployment)
            key = (ks.DEPLOYMENTS.plural, namespace, deployment["metadata"]["name"])
            pods.extend(
                rollout.simulated_pods(deployment, self.store.controller[key], self._clock(), self.rollout_seconds)
            )
        return pods
