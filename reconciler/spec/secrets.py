"""Spec model of secret references: where a secret lives, never what it is.

A secret in a spec is written `{secretRef: {env: NAME}}`, `{secretRef: {file: PATH}}` or
`{secretRef: {kubernetes: {name, key, namespace?}}}`. The reference travels through plans and
state; only the apply step resolves it (`reconciler.secrets`), and only fingerprints leave it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECRET_KEY_PATTERN = re.compile(
    r"(password|passwd|secret|token|api_?key|apikey|private_?key|credentials_json|access_key_id)$",
    re.IGNORECASE,
)


class KubernetesSecretKey(BaseModel):
    """A key of a Kubernetes Secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key: str
    namespace: str | None = None


class SecretRef(BaseModel):
    """Exactly one place a secret value can be read from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None
    kubernetes: KubernetesSecretKey | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        chosen = [name for name in ("env", "file", "kubernetes") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError("a secretRef names exactly one of env, file or kubernetes")
        return self

    def describe(self) -> str:
        """A human label of the reference (never the value), e.g. `env:PG_PASSWORD`."""
        if self.env is not None:
            return f"env:{self.env}"
        if self.file is not None:
            return f"file:{self.file}"
        assert self.kubernetes is not None
        where = f"{self.kubernetes.namespace}/" if self.kubernetes.namespace else ""
        return f"kubernetes:{where}{self.kubernetes.name}#{self.kubernetes.key}"


class SecretField(BaseModel):
    """A typed field that must be a reference: `{secretRef: {...}}`, never an inline value."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    secret_ref: SecretRef = Field(alias="secretRef")


def parse_secret_label(label: str) -> SecretRef:
    """Inverse of `SecretRef.describe()` (plans carry references as labels)."""
    scheme, _, rest = label.partition(":")
    if scheme == "env":
        return SecretRef(env=rest)
    if scheme == "file":
        return SecretRef(file=rest)
    if scheme == "kubernetes":
        where, _, key = rest.partition("#")
        namespace, _, name = where.rpartition("/")
        return SecretRef(kubernetes=KubernetesSecretKey(name=name, key=key, namespace=namespace or None))
    raise ValueError(f"not a secret reference: {label!r}")


def is_secret_ref(value: Any) -> bool:
    """True for the `{secretRef: {...}}` form."""
    return isinstance(value, Mapping) and set(value) == {"secretRef"}


def iter_secret_refs(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every `(path, raw reference)` in a configuration tree."""
    if is_secret_ref(tree):
        yield prefix, tree["secretRef"]
    elif isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from iter_secret_refs(value, (*prefix, str(key)))


def iter_inline_secrets(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths whose key names a secret but whose value is written inline (a spec error)."""
    if isinstance(tree, Mapping) and not is_secret_ref(tree):
        for key, value in tree.items():
            path = (*prefix, str(key))
            if isinstance(value, str) and value and SECRET_KEY_PATTERN.search(str(key)):
                yield path
            else:
                yield from iter_inline_secrets(value, path)
