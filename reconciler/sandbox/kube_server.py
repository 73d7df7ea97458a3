"""Local stand-in for the Kubernetes API server, under the tests, the demo and `reconcile sandbox`.

No API server binaries run here, so this serves the slice of the real API that reconciler uses,
on the real paths, so the official `kubernetes` Python client works against it unchanged:
ConfigMaps, Secrets, Deployments (+ /status), Leases, Pods (read-only, simulated from the
Deployments), and enough discovery (/api, /apis, /version). Every error is a `Status` object
worded like the real server's. A bearer token is required.

Layers: this module does HTTP, auth, routing and the verbs (GET, LIST with labelSelector, POST,
PUT, PATCH in four formats, DELETE); kube_store.py holds objects, kube_patch.py the patch
formats, kube_fields.py field ownership (their docstrings list the simplifications);
kube_rollout.py plays the Deployment controller. Test hooks: `fail_images` (pods that never
become ready), `force_conflicts` (someone else wrote first), `edit` (a hand edit, like
`kubectl edit`), `seed`, and request `stats`.
Watches, field selectors, set-based label selectors and other resource types are not served.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import secrets as token_bytes
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml

from reconciler.sandbox import kube_fields, kube_patch
from reconciler.sandbox import kube_rollout as rollout
from reconciler.sandbox import kube_store as ks
from reconciler.sandbox.http_util import JsonHttpServer, Request, RequestStats, Response, json_response
from reconciler.sandbox.kube_store import ApiStatusError, KubeStore, ResourceType

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_PATCH)
ANONYMOUS_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-reconciler-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_CORE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>configmaps|secrets|pods)(?:/(?P<name>[^/]+))?$")
_GROUPED = re.compile(
    r"^/apis/(?P<group>apps|coordination\.k8s\.io)/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>deployments|leases)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$"
)
_GROUP_OF = {"deployments": "apps", "leases": "coordination.k8s.io"}


def _route(path: str) -> tuple[ResourceType, str, str | None, str | None]:
    """(resource type, namespace, name, subresource) of an object path; 404 Status otherwise."""
    match = _CORE.match(path) or _GROUPED.match(path)
    groups = match.groupdict() if match else {}
    plural = groups.get("plural")
    if not match or plural is None or groups.get("group", _GROUP_OF.get(plural)) != _GROUP_OF.get(plural):
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource", {})
    rt = ks.PODS if plural == "pods" else ks.STORED[plural]
    return rt, groups["ns"], groups.get("name"), groups.get("sub")


def _resource_list(group_version: str, *resources: tuple[str, str, bool]) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "kind": kind,
                "verbs": verbs if writable else ["get", "list"],
            }
            for name, kind, writable in resources
        ],
    }


def _group(name: str) -> dict[str, Any]:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


DISCOVERY: dict[str, dict[str, Any]] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group("apps"), _group("coordination.k8s.io")]},
    "/api/v1": _resource_list(
        "v1", ("configmaps", "ConfigMap", True), ("secrets", "Secret", True), ("pods", "Pod", False)
    ),
    "/apis/apps/v1": _resource_list(
        "apps/v1", ("deployments", "Deployment", True), ("deployments/status", "Deployment", False)
    ),
    "/apis/coordination.k8s.io/v1": _resource_list("coordination.k8s.io/v1", ("leases", "Lease", True)),
    "/version": SERVER_VERSION,
}


def parse_selector(text: str) -> list[tuple[str, str, str | None]]:
    """`a=b,c!=d,e,!f` -> [(op, key, value)]; set-based selectors are refused."""
    terms: list[tuple[str, str, str | None]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        if " in " in raw or " notin " in raw or "(" in raw:
            raise ks.bad_request(f"unable to parse requirement: set-based selector {raw!r} is not supported here")
        for op in ("!=", "==", "="):
            if op in raw:
                key, value = raw.split(op, 1)
                terms.append(("!=" if op == "!=" else "=", key.strip(), value.strip()))
                break
        else:
            terms.append(("!", raw[1:].strip(), None) if raw.startswith("!") else ("exists", raw, None))
    return terms


def selects(terms: list[tuple[str, str, str | None]], labels: dict[str, str]) -> bool:
    for op, key, value in terms:
        if (
            (op == "=" and labels.get(key) != value)
            or (op == "!=" and labels.get(key) == value)
            or (op == "exists" and key not in labels)
            or (op == "!" and key in labels)
        ):
            return False
    return True


class KubeStandIn:
    """A Kubernetes API server stand-in on host:port (0 picks a free port).

    `stats.by_route` keys read like `PATCH deployments/{name}`, `GET pods`, `GET /version`. The
    Python-side hooks (`seed`, `edit`, `get_object`) take the store lock like a request does and
    raise ApiStatusError (e.g. 404) the way the HTTP side would answer.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str = "sandbox-token",
        rollout_seconds: float = 0.5,
        state_file: pathlib.Path | None = None,
    ) -> None:
        self.token = token
        self.rollout_seconds = rollout_seconds
        self.store = KubeStore(state_file)
        self.stats = RequestStats()
        self._server = JsonHttpServer(self._handle, host, port)
        self._failures: list[rollout.ImageFailure] = []
        self._forced_conflicts = 0
        self._faults_lock = threading.Lock()

    # --- lifecycle ---

    def start(self) -> KubeStandIn:
        self.store.load()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> KubeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.origin

    def write_kubeconfig(self, path: pathlib.Path, namespace: str = "default") -> pathlib.Path:
        """A kubeconfig for this server (context `reconciler-sandbox`), for load_kube_config(config_file=...)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "reconciler-sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "reconciler-sandbox", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "reconciler-sandbox",
                    "context": {"cluster": "reconciler-sandbox", "user": "reconciler-sandbox", "namespace": namespace},
                }
            ],
            "current-context": "reconciler-sandbox",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    # --- test hooks ---

    def fail_images(self, *patterns: str, reason: str = "ImagePullBackOff", message: str | None = None) -> None:
        """Pods of images matching these fnmatch patterns (in rollouts started from now on) never become ready."""
        with self._faults_lock:
            self._failures.extend(rollout.ImageFailure(pattern, reason, message) for pattern in patterns)

    def clear_failed_images(self) -> None:
        with self._faults_lock:
            self._failures = []

    def force_conflicts(self, n: int) -> None:
        """The next `n` writes that carry a resourceVersion answer 409, as if someone else wrote first."""
        with self._faults_lock:
            self._forced_conflicts = max(0, n)

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object directly (fixtures, demo); returns the stored object."""
        rt = ks.BY_KIND.get(str(obj.get("kind")))
        if rt is None:
            raise ValueError(f"cannot seed kind {obj.get('kind')!r}; expected one of {sorted(ks.BY_KIND)}")
        namespace = str((obj.get("metadata") or {}).get("namespace") or "default")
        with self.store.lock:
            return self._create(rt, namespace, copy.deepcopy(obj), "reconciler-sandbox-seed")

    def edit(self, api_path: str, mutate: Callable[[dict[str, Any]], None]) -> None:
        """A hand edit (`kubectl edit`): bumps resourceVersion/generation like any write, not counted in stats."""
        rt, namespace, name, _ = _route(api_path)
        with self.store.lock:
            old = self._existing(rt, namespace, name)
            new = copy.deepcopy(old)
            mutate(new)
            self._commit(rt, old, new, "kubectl-edit")

    def get_object(self, api_path: str) -> dict[str, Any]:
        rt, namespace, name, _ = _route(api_path)
        with self.store.lock:
            return copy.deepcopy(self._existing(rt, namespace, name))

    # --- HTTP ---

    def _handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        route = f"{request.method} {path}"
        try:
            if path not in ANONYMOUS_PATHS and request.headers.get("authorization") != f"Bearer {self.token}":
                self.stats.record(route, write=request.method in WRITE_METHODS)
                raise ApiStatusError(401, "Unauthorized", "Unauthorized")
            if path in DISCOVERY:
                self.stats.record(route, write=False)
                return json_response(200, DISCOVERY[path])
            rt, namespace, name, sub = _route(path)
            route = f"{request.method} {rt.plural}" + ("/{name}" if name else "") + (f"/{sub}" if sub else "")
            self.stats.record(route, write=request.method in WRITE_METHODS)
            with self.store.lock:
                status, body = self._dispatch(request, rt, namespace, name, sub)
            return json_response(status, body)
        except ApiStatusError as error:
            return json_response(error.code, error.status())
        except Exception as error:  # a request the stand-in cannot handle still gets a Status, as on a real server
            internal = ApiStatusError(500, "InternalError", f"Internal error occurred: {type(error).__name__}: {error}")
            return json_response(500, internal.status())

    def _dispatch(
        self, request: Request, rt: ResourceType, namespace: str, name: str | None, sub: str | None
    ) -> tuple[int, dict[str, Any]]:
        method = request.method
        read_only = rt is ks.PODS or sub is not None
        if read_only and method != "GET":
            raise ApiStatusError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        if request.first("watch") in ("true", "1"):
            raise ks.bad_request("watch is not supported by this stand-in")
        if name is None:
            if method == "GET":
                return 200, self._list(rt, namespace, request.first("labelSelector") or "")
            if method == "POST":
                return 201, self._create(rt, namespace, _body(request), _manager(request))
        elif method == "GET":
            return 200, copy.deepcopy(self._existing(rt, namespace, name))
        elif method == "PUT":
            return 200, self._replace(rt, namespace, name, _body(request), _manager(request))
        elif method == "PATCH":
            return 200, self._patch(rt, namespace, name, request)
        elif method == "DELETE":
            return 200, self._delete(rt, namespace, name)
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # --- verbs ---

    def _existing(self, rt: ResourceType, namespace: str, name: str | None) -> dict[str, Any]:
        obj = self.store.objects.get((rt.plural, namespace, str(name)))
        if obj is None:
            raise ks.not_found(rt, str(name))
        self._settle(rt, obj)
        return obj

    def _list(self, rt: ResourceType, namespace: str, selector: str) -> dict[str, Any]:
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

    def _create(self, rt: ResourceType, namespace: str, body: dict[str, Any], manager: str) -> dict[str, Any]:
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
        return copy.deepcopy(self._commit(rt, None, body, manager))

    def _replace(
        self, rt: ResourceType, namespace: str, name: str, body: dict[str, Any], manager: str
    ) -> dict[str, Any]:
        old = self._existing(rt, namespace, name)
        self._check_version(rt, old, body)
        return copy.deepcopy(self._commit(rt, old, body, manager))

    def _patch(self, rt: ResourceType, namespace: str, name: str, request: Request) -> dict[str, Any]:
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            accepted = ", ".join(PATCH_TYPES)
            message = f"the body of the request was in an unknown format - accepted media types include: {accepted}"
            raise ApiStatusError(415, "UnsupportedMediaType", message)
        if content_type == APPLY_PATCH:
            return self._apply(rt, namespace, name, request)
        old = self._existing(rt, namespace, name)
        patch = _json(request.body)
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
        return copy.deepcopy(self._commit(rt, old, patched, _manager(request)))

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
            created = self._commit(rt, None, copy.deepcopy(config), manager, apply=(config, set()))
            return copy.deepcopy(created)
        old = self._existing(rt, namespace, name)
        self._check_version(rt, old, config, carries=bool(meta.get("resourceVersion")))
        conflicts = kube_fields.apply_conflicts(old, config, manager)
        if conflicts and request.first("force") != "true":
            raise kube_fields.apply_conflict_error(rt, name, conflicts)
        merged = kube_patch.strategic_merge(copy.deepcopy(old), {k: v for k, v in config.items() if k != "metadata"})
        merged["metadata"] = kube_patch.strategic_merge(
            old["metadata"], {k: v for k, v in meta.items() if k != "resourceVersion"}
        )
        return copy.deepcopy(self._commit(rt, old, merged, manager, apply=(config, set(conflicts))))

    def _delete(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        old = self._existing(rt, namespace, name)
        key = (rt.plural, namespace, name)
        del self.store.objects[key]
        self.store.controller.pop(key, None)
        self.store.next_resource_version()
        self.store.save()
        details = {**ks.status_details(rt, name), "uid": old["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    # --- shared write path ---

    def _check_version(
        self, rt: ResourceType, old: dict[str, Any], body: dict[str, Any], *, carries: bool | None = None
    ) -> None:
        """409 when the body's resourceVersion is stale, or when a forced conflict is queued."""
        wanted = str((body.get("metadata") or {}).get("resourceVersion") or "")
        if carries is None:
            carries = bool(wanted)
        if carries:
            with self._faults_lock:
                forced = self._forced_conflicts > 0
                self._forced_conflicts -= int(forced)
            if forced:
                old["metadata"]["resourceVersion"] = self.store.next_resource_version()
                self.store.save()
                raise ks.modified_conflict(rt, str(old["metadata"]["name"]))
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ks.modified_conflict(rt, str(old["metadata"]["name"]))

    def _commit(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        manager: str,
        *,
        apply: tuple[dict[str, Any], set[kube_fields.Path]] | None = None,
    ) -> dict[str, Any]:
        """Validate, stamp and store a write; the Deployment controller reacts to template changes."""
        moment = time.time()
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
        with self._faults_lock:
            failures = list(self._failures)
        record = rollout.start_rollout(
            deployment, self.store.controller.get(key), failures, moment, self.rollout_seconds
        )
        self.store.controller[key] = record
        annotations = deployment["metadata"].setdefault("annotations", {})
        annotations[rollout.REVISION_ANNOTATION] = str(record["revision"])
        deployment["status"] = rollout.deployment_status(deployment, record, moment, self.rollout_seconds)

    def _settle(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Bring a Deployment's status up to now, as the controller would (its status write bumps resourceVersion)."""
        if rt is not ks.DEPLOYMENTS:
            return
        key = (rt.plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
        record = self.store.controller.get(key)
        if record is None:
            self._observe(key, obj, time.time())
            record = self.store.controller[key]
        status = rollout.deployment_status(obj, record, time.time(), self.rollout_seconds)
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
                rollout.simulated_pods(deployment, self.store.controller[key], time.time(), self.rollout_seconds)
            )
        return pods


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise ks.bad_request(f"error decoding request body: {error}") from error


def _body(request: Request) -> dict[str, Any]:
    body = _json(request.body)
    if not isinstance(body, dict):
        raise ks.bad_request("the request body must be a JSON object")
    return body


def _manager(request: Request) -> str:
    """fieldManager, else the User-Agent's first word, as the API server names an Update's manager."""
    return request.first("fieldManager") or (request.headers.get("user-agent") or "unknown").split("/")[0]
