"""Spec models of workload images: dbt and each Dagster code location, and where each image is carried.

`specs/workloads.yaml` says once where a component's image lives in Kubernetes (a container
of a Deployment, an environment variable that tells Dagster which dbt image to launch, or a
ConfigMap key). Each environment file pins the version of each component (`images:`), so a
dbt release changes only what carries the dbt image and a Dagster release only its location.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reconciler.spec.environment import ClusterSettings

COMPONENT_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_DOMAIN = re.compile(
    r"^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*"
    r"(?::[0-9]+)?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
MOVING_TAG = "latest"
"""A tag that names no version: a pin on it is warned about (`reconcile validate`)."""


def repository_problem(repository: str) -> str | None:
    """Why `repository` is not an image repository as Docker's reference grammar reads it (None when it is).

    A registry host (`ghcr.io`, `registry:5000`, `localhost`) may come first; the path is lower case
    components separated by `/`. The tag and digest are pinned per environment, never here.
    """
    if not repository or repository != repository.strip() or any(c.isspace() for c in repository):
        return f"image repository {repository!r} must not be empty or contain spaces"
    if "://" in repository:
        return f"image repository {repository!r} has a URL scheme: write it as {repository.split('://', 1)[1]!r}"
    if "@" in repository:
        return f"image repository {repository!r} holds a digest: pin it in the environment file (workloads.images)"
    first, slash, rest = repository.partition("/")
    has_domain = bool(slash) and ("." in first or ":" in first or first == "localhost")
    domain, path = (first, rest) if has_domain else ("", repository)
    if ":" in path:
        return (
            f"image repository {repository!r} holds a tag ({path.rsplit(':', 1)[1]!r}): pin the tag in the environment "
            "file (workloads.images)"
        )
    if path != path.lower():
        return f"image repository {repository!r} must be lower case (Docker refuses {path!r})"
    if domain and not _DOMAIN.fullmatch(domain):
        return f"image repository {repository!r}: {domain!r} is not a registry host"
    bad = next((part for part in path.split("/") if not _PATH_COMPONENT.fullmatch(part)), None)
    if bad is not None:
        return (
            f"image repository {repository!r}: {bad!r} is not a valid path component (lower case letters, digits, "
            "and `.`, `_`, `__` or `-` between them)"
        )
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ContainerImage(_Strict):
    """The image of one container of a Deployment (e.g. a Dagster user-code server)."""

    kind: Literal["containerImage"]
    namespace: str | None = None
    deployment: str
    container: str

    @property
    def place(self) -> str:
        """Where in its object the image sits (one image slot: two components may not share it)."""
        return f"deployment/{self.deployment}/{self.container}"


class ContainerEnv(_Strict):
    """An environment variable of a container whose value is an image reference."""

    kind: Literal["containerEnv"]
    namespace: str | None = None
    deployment: str
    container: str
    env: str

    @property
    def place(self) -> str:
        return f"deployment/{self.deployment}/{self.container}/env/{self.env}"


class ConfigMapKey(_Strict):
    """A ConfigMap key whose value is an image reference."""

    kind: Literal["configMapKey"]
    namespace: str | None = None
    config_map: str = Field(alias="configMap")
    key: str

    @property
    def place(self) -> str:
        return f"configmap/{self.config_map}/{self.key}"


Carrier = Annotated[ContainerImage | ContainerEnv | ConfigMapKey, Field(discriminator="kind")]


class ComponentSpec(_Strict):
    """A separately released image: dbt, or one Dagster code location."""

    repository: str = Field(min_length=1, description="Image repository, e.g. ghcr.io/acme/dbt (no tag, no digest)")
    dagster_location: str | None = Field(
        default=None, alias="dagsterLocation", description="Code location to health-check after a rollout"
    )
    carriers: list[Carrier] = Field(min_length=1)

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        problem = repository_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class WorkloadsFile(_Strict):
    """`specs/workloads.yaml`."""

    components: dict[Annotated[str, Field(pattern=COMPONENT_NAME)], ComponentSpec]


class ImageVersion(_Strict):
    """A pinned version: a tag, a digest, or a tag and the digest it must resolve to."""

    tag: str | None = None
    digest: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> ImageVersion:
        if self.tag is None and self.digest is None:
            raise ValueError("pin a tag, a digest or both")
        if self.tag is not None and not _TAG.fullmatch(self.tag):
            raise ValueError(f"tag {self.tag!r} is not a valid image tag")
        if self.digest is not None and not _DIGEST.fullmatch(self.digest):
            raise ValueError("digest must look like sha256:<64 hex characters>")
        return self

    def reference(self, repository: str) -> str:
        return repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def label(self) -> str:
        """The version for one-line messages: `1.9.1`, `1.9.1@sha256:0123456789ab…` or `@sha256:0123456789ab…`."""
        return (self.tag or "") + (f"@{self.digest[:19]}…" if self.digest else "")


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
