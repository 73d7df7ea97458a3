"""Spec model of an environment file (`environments/<name>.yaml`): what exists there and how to reach it.

An environment selects resources from the shared specs by name and overrides what differs
(endpoints, bucket names, schedules, credential references). Its string values may use
`${VAR}` or `${VAR:-default}` so one file serves the demo, the tests and a real deployment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from reconciler.spec.secrets import is_secret_name

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SecretKeySettings(BaseModel):
    """One key of a Kubernetes Secret in the state namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    secret: str = Field(pattern=_DNS_SUBDOMAIN, max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class KubernetesStateSettings(BaseModel):
    """State kept in the cluster: ConfigMaps `<name>` (+ `<name>-<n>` shards, `<name>-alerts`) and the
    environment's write lock, Lease `<name>-lock`, all in `namespace`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    namespace: str = Field(pattern=_DNS_LABEL, max_length=63)
    name: str | None = Field(
        default=None,
        pattern=_DNS_SUBDOMAIN,
        max_length=200,
        description="ConfigMap name prefix; default reconciler-state-<env>",
    )
    kubeconfig: str | None = Field(
        default=None, description="A kubeconfig path (relative to the project), or in-cluster"
    )
    context: str | None = None
    fingerprint_key: SecretKeySettings | None = Field(
        default=None,
        alias="fingerprintKey",
        description="The fingerprint key, from a Secret in `namespace` (else RECONCILER_FINGERPRINT_KEY)",
    )
    lock_duration_seconds: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        alias="lockDurationSeconds",
        description="How long a dead holder's lock lasts; a live holder renews it every third of it",
    )

    def cluster(self) -> ClusterSettings:
        return ClusterSettings(kubeconfig=self.kubeconfig, context=self.context)


class StateSettings(BaseModel):
    """Where reconciler keeps its records (ids of what it owns, secret fingerprints)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: str | None = Field(default=None, description="State file; default .reconciler/state/<env>.json")
    kubernetes: KubernetesStateSettings | None = Field(
        default=None, description="Keep the state, alert records and lock in the cluster instead of files"
    )
    mass_delete_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        alias="massDeleteRatio",
        description="Refuse plans deleting more than this share of owned resources",
    )

    @model_validator(mode="after")
    def _one_place(self) -> StateSettings:
        if self.path is not None and self.kubernetes is not None:
            raise ValueError(
                "path and kubernetes are mutually exclusive: the state is kept in a file or in the cluster, not both"
            )
        return self


class ClusterSettings(BaseModel):
    """How to reach a Kubernetes cluster: a kubeconfig (and context), or `in-cluster` config."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kubeconfig: str | None = None
    context: str | None = None


class SecretSettings(BaseModel):
    """Where secret references are read."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kubernetes: ClusterSettings | None = Field(
        default=None,
        description="Cluster that `{secretRef: {kubernetes: ...}}` reads; default: the cluster a system names "
        "(workloads.kubernetes)",
    )


class EnvironmentFile(BaseModel):
    """The whole environment file: these fields, plus one optional section per registered system."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    environment: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    description: str | None = None
    state: StateSettings = Field(default_factory=StateSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)

    def section(self, system: str) -> Any:
        """The validated section of `system` (None when the file has none)."""
        return getattr(self, system, None)


@cache
def environment_model(sections: tuple[tuple[str, type[BaseModel]], ...]) -> type[EnvironmentFile]:
    """The environment file model with each system's section (`(name, model)`, in order) as an optional field."""
    fields: dict[str, Any] = {name: (model | None, None) for name, model in sections}
    return create_model("EnvironmentFile", __base__=EnvironmentFile, **fields)


class UnsetVariable(ValueError):
    """`${VAR}` without a default while VAR is not set."""


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Replace `${VAR}` and `${VAR:-default}` from `variables`."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables and variables[name] != "":
            return variables[name]
        if default is not None:
            return default
        raise UnsetVariable(f"environment variable {name} is not set and has no default")

    return _VARIABLE.sub(substitute, value)


def interpolate_tree(
    tree: Any,
    variables: Mapping[str, str],
    errors: list[tuple[tuple[Any, ...], str]],
    path: tuple[Any, ...] = (),
) -> Any:
    """Interpolate every string in place (keeping locations); collect failures as (path, message).

    A `${VAR}` in a secret position (under a key named like a secret) is refused, not expanded:
    its value would land in plans like an inline secret. It says which `secretRef` to write.
    """
    if isinstance(tree, dict):
        for key in list(tree):
            tree[key] = interpolate_tree(tree[key], variables, errors, (*path, key))
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            tree[index] = interpolate_tree(item, variables, errors, (*path, index))
    elif isinstance(tree, str):
        variable = _VARIABLE.search(tree)
        name = next((step for step in reversed(path) if isinstance(step, str)), "")
        if variable is not None and is_secret_name(name):
            hint = f"{{secretRef: {{env: {variable.group(1)}}}}}"
            errors.append(
                (path, f"a secret cannot come from ${{{variable.group(1)}}} (plans would show it); use {hint}")
            )
            return None
        try:
            return interpolate(tree, variables)
        except UnsetVariable as exc:
            errors.append((path, str(exc)))
    return tree
