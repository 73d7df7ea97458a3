"""Fixtures: a Kubernetes stand-in per test, the official client pointed at it, and reconciler's KubeClient."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from reconciler.clients.kube.client import KubeClient
from reconciler.sandbox.kube_server import KubeStandIn

NAMESPACE = "data"
_SERIALIZER = client.ApiClient()


def plain(model: object) -> dict[str, Any]:
    """A model the official client deserialized (and validated), as the API's JSON dict."""
    result = _SERIALIZER.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    assert isinstance(result, dict)
    return result


def as_deployment(manifest: dict[str, Any]) -> client.V1Deployment:
    return client.V1Deployment.model_validate(manifest)


class StandInClock:
    """The stand-in's clock: wall time, until a test freezes it and moves it by hand (no race with a busy CPU)."""

    def __init__(self) -> None:
        self.frozen: float | None = None

    def __call__(self) -> float:
        return time.time() if self.frozen is None else self.frozen

    def freeze(self) -> None:
        self.frozen = time.time()

    def advance(self, seconds: float) -> None:
        assert self.frozen is not None, "freeze the clock first"
        self.frozen += seconds


@pytest.fixture
def clock() -> StandInClock:
    return StandInClock()


@pytest.fixture
def standin(clock: StandInClock) -> Iterator[KubeStandIn]:
    with KubeStandIn(rollout_seconds=0.2, clock=clock) as server:
        yield server


@pytest.fixture
def kubeconfig(standin: KubeStandIn, tmp_path: Path) -> Path:
    return standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """The official client, configured the way users do: load_kube_config from the file."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    kube_client = KubeClient.from_kubeconfig(str(kubeconfig))
    yield kube_client
    kube_client.close()


def deployment(
    name: str = "ingestion",
    *,
    image: str = "registry.example/ingestion:1.0",
    replicas: int = 1,
    deadline_s: int = 600,
) -> dict[str, Any]:
    """A Dagster user-code Deployment: the code server container plus a sidecar, with env."""
    labels = {"app": name, "component": "user-code"}
    return copy.deepcopy(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": deadline_s,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "code-server",
                                "image": image,
                                "env": [
                                    {"name": "DAGSTER_HOME", "value": "/opt/dagster"},
                                    {"name": "DBT_IMAGE", "value": "registry.example/dbt:1.0"},
                                ],
                                "ports": [{"containerPort": 3030, "name": "grpc"}],
                            },
                            {"name": "log-shipper", "image": "registry.example/fluent-bit:3.0"},
                        ]
                    },
                },
            },
        }
    )


def dep_path(name: str = "ingestion") -> str:
    return f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"
