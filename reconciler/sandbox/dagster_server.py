"""Local stand-in for Dagster's GraphQL health answers, for the demo and `reconcile sandbox` only.

It answers the two operations reconciler's health gate sends (`workspaceOrError` and
`reloadRepositoryLocation`) in Dagster's shapes, deriving each code location's health from the
image its user-code Deployment runs in the Kubernetes stand-in: an image whose tag contains
"broken" fails to load with a `PythonError`, while `loadStatus` still says LOADED (as the real
Dagster does). Each entry's `displayMetadata` names the image, as a code server started with
DAGSTER_CURRENT_IMAGE (Dagster's Helm chart sets it) reports it; `loading` holds locations that
answer LOADING. The test suite checks the health gate against a real dagster-webserver too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.http_util import JsonHttpServer, Request, Response, json_response
from reconciler.sandbox.kube_server import KubeStandIn

BROKEN_MARKER = "broken"


@dataclass(frozen=True)
class UserCode:
    """Where a code location's image runs: namespace, Deployment and container."""

    namespace: str
    deployment: str
    container: str


class DagsterStandIn:
    """Serves /graphql on host:port for the given code locations."""

    def __init__(self, kube: KubeStandIn, locations: Mapping[str, UserCode], host: str = "127.0.0.1", port: int = 0):
        self._kube = kube
        self._locations = dict(locations)
        self.loading: set[str] = set()
        """Locations that answer LOADING (still importing their code) until removed."""
        self._server = JsonHttpServer(self._handle, host, port)

    def start(self) -> DagsterStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> DagsterStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{self._server.origin}/graphql"

    def _image(self, code: UserCode) -> str:
        path = f"/apis/apps/v1/namespaces/{code.namespace}/deployments/{code.deployment}"
        deployment = self._kube.get_object(path)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        container = next(c for c in containers if c["name"] == code.container)
        # a code server reports its DAGSTER_CURRENT_IMAGE variable (which Dagster's Helm chart sets to the image
        # it deploys), whatever image the container runs; without the variable, the container's image
        current = next(
            (e.get("value") for e in container.get("env") or [] if e["name"] == "DAGSTER_CURRENT_IMAGE"), None
        )
        return str(current or container["image"])

    def _entry(self, name: str) -> dict[str, Any]:
        image = self._image(self._locations[name])
        tag = image.rsplit(":", 1)[-1]
        metadata = [{"key": "image", "value": image}]
        if name in self.loading:
            entry = {"__typename": "WorkspaceLocationEntry", "name": name, "loadStatus": "LOADING"}
            return entry | {"locationOrLoadError": None, "displayMetadata": metadata}
        if BROKEN_MARKER in tag:
            error = {
                "__typename": "PythonError",
                "message": f"dagster._core.errors.DagsterImportError: Encountered ImportError: `No module named "
                f"'{name}_models'` while importing module {name}.definitions ({image})",
            }
        else:
            error = {"__typename": "RepositoryLocation", "name": name}
        return {
            "__typename": "WorkspaceLocationEntry",
            "name": name,
            "loadStatus": "LOADED",
            "locationOrLoadError": error,
            "displayMetadata": metadata,
        }

    def _handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path.rstrip("/") != "/graphql":
            return json_response(404, {"message": "not found"})
        body = request.json() or {}
        query = str(body.get("query", ""))
        if "reloadRepositoryLocation" in query:
            name = str((body.get("variables") or {}).get("name", ""))
            if name not in self._locations:
                answer = {"__typename": "RepositoryLocationNotFound", "message": f"Location {name} does not exist"}
                return json_response(200, {"data": {"reloadRepositoryLocation": answer}})
            return json_response(200, {"data": {"reloadRepositoryLocation": self._entry(name)}})
        entries = [self._entry(name) for name in sorted(self._locations)]
        workspace = {"__typename": "Workspace", "locationEntries": entries}
        return json_response(200, {"data": {"workspaceOrError": workspace}})
