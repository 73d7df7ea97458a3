"""Local stand-in for the Kubernetes API server, under the tests, the demo and `reconcile sandbox`.

No API server binaries run here, so this serves the slice of the real API that reconciler uses,
on the real paths, so the official `kubernetes` Python client works against it unchanged:
ConfigMaps, Secrets, Deployments (+ /status), Leases, Pods (read-only, simulated from the
Deployments), and enough discovery (/api, /apis, /version). Every error is a `Status` object
worded like the real server's. A bearer token is required.

Layers: this module does HTTP, auth, discovery and routing (kube_requests.py resolves paths);
kube_verbs.py does the verbs (GET, LIST with labelSelector, POST, PUT, PATCH in four formats,
DELETE); kube_store.py holds objects, kube_patch.py the patch formats, kube_fields.py field
ownership (their docstrings list the simplifications); kube_rollout.py plays the Deployment
controller. Test hooks: `fail_images` (pods that never become ready), `force_conflicts` (someone
else wrote first), `disrupt` (a resource type answering slowly or with an error), `edit` (a hand
edit, like `kubectl edit`), `seed`, and request `stats`. Sizes are refused as the real server
does: a body over 3 MiB gets 413, ConfigMap/Secret data over 1 MiB and annotations over 256 KiB 422.
Watches, field selectors, set-based label selectors and other resource types are not served.
"""

from __future__ import annotations

import collections
import copy
import pathlib
import time
from collections.abc import Callable
from typing import Any

import yaml

from reconciler.sandbox import kube_rollout as rollout
from reconciler.sandbox import kube_store as ks
from reconciler.sandbox.http_util import JsonHttpServer, Request, RequestStats, Response, json_response
from reconciler.sandbox.kube_requests import field_manager, object_body, resolve_path
from reconciler.sandbox.kube_store import ApiStatusError, KubeStore, ResourceType
from reconciler.sandbox.kube_verbs import Faults, KubeVerbs

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_REQUEST_BYTES = 3 * 1024 * 1024
"""The API server's limit on a write's body (`maxRequestBodyBytes`): larger gets 413 before anything is decoded."""
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


def rbac_verb(method: str, named: bool) -> str:
    """The RBAC verb an API server authorises a request as (`GET` of a collection is `list`)."""
    verbs = {"GET": "get" if named else "list", "POST": "create", "PUT": "update", "PATCH": "patch"}
    return verbs.get(method, "delete" if named else "deletecollection") if method != "HEAD" else "get"


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (wall-clock seconds) drives rollouts and deadlines: a test may move it instead of sleeping."""
        self.token = token
        self.store = KubeStore(state_file)
        self.stats = RequestStats()
        self.audit: list[tuple[str, str, str, str]] = []
        """Every authenticated resource request as RBAC sees it: (verb, API group, resource, namespace)."""
        self.audit_by_agent: dict[str, list[tuple[str, str, str, str]]] = collections.defaultdict(list)
        """The same, by the User-Agent that sent it (one replica among several)."""
        self._server = JsonHttpServer(self._handle, host, port)
        self._faults = Faults()
        self._verbs = KubeVerbs(self.store, self._faults, rollout_seconds, clock)

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

    @property
    def rollout_seconds(self) -> float:
        """How long a simulated rollout takes to make every new pod ready."""
        return self._verbs.rollout_seconds

    @rollout_seconds.setter
    def rollout_seconds(self, seconds: float) -> None:
        self._verbs.rollout_seconds = seconds

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
        with self._faults.lock:
            self._faults.failures.extend(rollout.ImageFailure(pattern, reason, message) for pattern in patterns)

    def clear_failed_images(self) -> None:
        with self._faults.lock:
            self._faults.failures = []

    def force_conflicts(self, n: int) -> None:
        """The next `n` writes that carry a resourceVersion answer 409, as if someone else wrote first."""
        with self._faults.lock:
            self._faults.forced_conflicts = max(0, n)

    def disrupt(
        self, plural: str, *, status: int | None = 503, delay_s: float = 0.0, user_agent: str | None = None
    ) -> None:
        """Requests for `plural` (e.g. "leases") wait `delay_s`, then answer `status` (None: served normally)
        until `restore()`; an API server under strain, or a network path that drops them. With `user_agent`,
        only the requests of the client sending that User-Agent (one replica among several)."""
        with self._faults.lock:
            self._faults.disrupted[(plural, user_agent)] = (status, delay_s)

    def restore(self) -> None:
        with self._faults.lock:
            self._faults.disrupted.clear()

    def seed(self, obj: dict[str, Any], *, settled: bool = False) -> dict[str, Any]:
        """Create an object directly (fixtures, demo); returns the stored object. With `settled`, a Deployment's
        first rollout is long over (a cluster that has been running), instead of starting now."""
        rt = ks.BY_KIND.get(str(obj.get("kind")))
        if rt is None:
            raise ValueError(f"cannot seed kind {obj.get('kind')!r}; expected one of {sorted(ks.BY_KIND)}")
        namespace = str((obj.get("metadata") or {}).get("namespace") or "default")
        with self.store.lock:
            created = self._verbs.create(rt, namespace, copy.deepcopy(obj), "reconciler-sandbox-seed")
            if settled and rt is ks.DEPLOYMENTS:
                self._verbs.settle_first_rollout(namespace, str(created["metadata"]["name"]))
                created = copy.deepcopy(self._verbs.existing(rt, namespace, str(created["metadata"]["name"])))
            return created

    def edit(self, api_path: str, mutate: Callable[[dict[str, Any]], None]) -> None:
        """A hand edit (`kubectl edit`): bumps resourceVersion/generation like any write, not counted in stats."""
        rt, namespace, name, _ = resolve_path(api_path)
        with self.store.lock:
            old = self._verbs.existing(rt, namespace, name)
            new = copy.deepcopy(old)
            mutate(new)
            self._verbs.commit(rt, old, new, "kubectl-edit")

    def get_object(self, api_path: str) -> dict[str, Any]:
        rt, namespace, name, _ = resolve_path(api_path)
        with self.store.lock:
            return copy.deepcopy(self._verbs.existing(rt, namespace, name))

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
            rt, namespace, name, sub = resolve_path(path)
            route = f"{request.method} {rt.plural}" + ("/{name}" if name else "") + (f"/{sub}" if sub else "")
            audited = (rbac_verb(request.method, bool(name)), rt.group, rt.plural, namespace or "")
            self.audit.append(audited)
            self.audit_by_agent[request.headers.get("user-agent") or ""].append(audited)
            self.stats.record(route, write=request.method in WRITE_METHODS)
            if len(request.body) > MAX_REQUEST_BYTES:
                message = f"Request entity too large: limit is {MAX_REQUEST_BYTES}"
                raise ApiStatusError(413, "RequestEntityTooLarge", message)
            self._disruption(rt.plural, request.headers.get("user-agent"))
            with self.store.lock:
                status, body = self._dispatch(request, rt, namespace, name, sub)
            return json_response(status, body)
        except ApiStatusError as error:
            return json_response(error.code, error.status())
        except Exception as error:  # a request the stand-in cannot handle still gets a Status, as on a real server
            internal = ApiStatusError(500, "InternalError", f"Internal error occurred: {type(error).__name__}: {error}")
            return json_response(500, internal.status())

    def _disruption(self, plural: str, user_agent: str | None) -> None:
        with self._faults.lock:
            disrupted = self._faults.disrupted
            status, delay_s = disrupted.get((plural, user_agent)) or disrupted.get((plural, None)) or (None, 0.0)
        if delay_s > 0:
            time.sleep(delay_s)  # outside the store lock: other requests go on
        if status is not None:
            raise ApiStatusError(status, "ServiceUnavailable", "the server is currently unable to handle the request")

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
        verbs = self._verbs
        if name is None:
            if method == "GET":
                return 200, verbs.list_objects(rt, namespace, request.first("labelSelector") or "")
            if method == "POST":
                return 201, verbs.create(rt, namespace, object_body(request), field_manager(request))
        elif method == "GET":
            return 200, copy.deepcopy(verbs.existing(rt, namespace, name))
        elif method == "PUT":
            return 200, verbs.replace(rt, namespace, name, object_body(request), field_manager(request))
        elif method == "PATCH":
            return 200, verbs.patch(rt, namespace, name, request)
        elif method == "DELETE":
            return 200, verbs.delete(rt, namespace, name)
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
