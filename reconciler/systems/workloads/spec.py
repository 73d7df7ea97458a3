"""Spec models of workload images: dbt and each Dagster code location, and where each image is carried.

`specs/workloads.yaml` says once where a component's image lives in Kubernetes (a container
of a Deployment, an environment variable that tells Dagster which dbt image to launch, or a
ConfigMap key). Each environment file pins the version of each component (`images:`), so a
dbt release changes only what carries the dbt image and a Dagster release only its location.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reconciler.spec.environment import ClusterSettings

COMPONENT_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ContainerImage(_Strict):
    """The image of one container of a Deployment (e.g. a Dagster user-code server)."""

    kind: Literal["containerImage"]
    namespace: str | None = None
    deployment: str
    container: str


class ContainerEnv(_Strict):
    """An environment variable of a container whose value is an image reference."""

    kind: Literal["containerEnv"]
    namespace: str | None = None
    deployment: str
    container: str
    env: str


class ConfigMapKey(_Strict):
    """A ConfigMap key whose value is an image reference."""

    kind: Literal["configMapKey"]
    namespace: str | None = None
    config_map: str = Field(alias="configMap")
    key: str


Carrier = Annotated[ContainerImage | ContainerEnv | ConfigMapKey, Field(discriminator="kind")]


class ComponentSpec(_Strict):
    """A separately released image: dbt, or one Dagster code location."""

    repository: str = Field(min_length=1, description="Image repository, e.g. ghcr.io/acme/dbt")
    dagster_location: str | None = Field(
        default=None, alias="dagsterLocation", description="Code location to health-check after a rollout"
    )
    carriers: list[Carrier] = Field(min_length=1)


class WorkloadsFile(_Strict):
    """`specs/workloads.yaml`."""

    components: dict[Annotated[str, Field(pattern=COMPONENT_NAME)], ComponentSpec]


class ImageVersion(_Strict):
    """A pinned version: a tag, and optionally the digest it must resolve to."""

    tag: str
    digest: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> ImageVersion:
        if not _TAG.match(self.tag):
            raise ValueError(f"tag {self.tag!r} is not a valid image tag")
        if self.digest is not None and not _DIGEST.match(self.digest):
            raise ValueError("digest must look like sha256:<64 hex characters>")
        return self

    def reference(self, repository: str) -> str:
        return f"{repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class KubernetesSettings(ClusterSettings):
    """How to reach the environment's cluster: a kubeconfig (and context), or in-cluster config."""

    namespace: str = "default"


class RolloutSettings(_Strict):
    timeout_seconds: float = Field(default=300.0, gt=0, alias="timeoutSeconds")
    poll_seconds: float = Field(default=2.0, gt=0, alias="pollSeconds")
    rollback_on_failure: bool = Field(default=True, alias="rollbackOnFailure")


class DagsterSettings(_Strict):
    url: str
    timeout_seconds: float = Field(default=120.0, gt=0, alias="timeoutSeconds")


class WorkloadsEnvironment(_Strict):
    """The `workloads:` section of an environment file."""

    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    dagster: DagsterSettings | None = None
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    images: dict[str, ImageVersion] = Field(default_factory=dict)
