"""Apply-time secret resolution: a `SecretRef` -> its value, from env, a file or a Kubernetes Secret.

Values live only in memory for the duration of a command; only fingerprints (see
`core.fingerprint`) are written anywhere. Messages name the reference, never the value.
"""

from __future__ import annotations

import os
import secrets as stdlib_secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from reconciler.core.fingerprint import fingerprint
from reconciler.errors import SecretError
from reconciler.spec.secrets import SecretRef

KubeSecretReader = Callable[[str, str, str], str]
FINGERPRINT_KEY_VARIABLE = "RECONCILER_FINGERPRINT_KEY"
MIN_KEY_FILE_BYTES = 32
"""A created key has 64 hex characters; a file with fewer than this was damaged or hand-made too weak."""


class SecretResolver:
    """Resolves references once each and remembers the values for the command's lifetime."""

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        base_dir: Path,
        kube_reader: KubeSecretReader | None = None,
        kube_namespace: str = "default",
    ) -> None:
        self._environ = environ
        self._base_dir = base_dir
        self._kube_reader = kube_reader
        self._kube_namespace = kube_namespace
        self._cache: dict[SecretRef, str] = {}

    def value(self, ref: SecretRef) -> str:
        if ref not in self._cache:
            self._cache[ref] = self._read(ref)
        return self._cache[ref]

    def _read(self, ref: SecretRef) -> str:
        if ref.env is not None:
            value = self._environ.get(ref.env)
            if value is None or value == "":
                raise SecretError(f"secret {ref.describe()}: environment variable {ref.env} is not set")
            return value
        if ref.file is not None:
            path = Path(ref.file) if Path(ref.file).is_absolute() else self._base_dir / ref.file
            try:
                return path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise SecretError(f"secret {ref.describe()}: cannot read {path}: {exc.strerror}") from exc
        assert ref.kubernetes is not None
        if self._kube_reader is None:
            raise SecretError(f"secret {ref.describe()}: no Kubernetes access configured for this environment")
        target = ref.kubernetes
        try:
            return self._kube_reader(target.namespace or self._kube_namespace, target.name, target.key)
        except Exception as exc:  # the reader's own errors carry no secret values
            raise SecretError(f"secret {ref.describe()}: {exc}") from exc

    def labels(self) -> dict[str, str]:
        """Reference label -> value, for providers that address secrets by label."""
        return {ref.describe(): value for ref, value in self._cache.items()}


class Fingerprinter:
    """Fingerprints references with the environment's key (resolving them first)."""

    def __init__(self, resolver: SecretResolver, key: bytes) -> None:
        self._resolver = resolver
        self._key = key

    def __call__(self, ref: SecretRef) -> str:
        return fingerprint(self._key, self._resolver.value(ref))


def load_fingerprint_key(environ: Mapping[str, str], key_file: Path) -> bytes:
    """The HMAC key: from RECONCILER_FINGERPRINT_KEY, else a file created once with mode 0600.

    A key file that exists but holds no usable key (emptied, truncated) is refused: a new key
    would silently make every secret look rotated, and a short one makes fingerprints guessable.
    """
    configured = environ.get(FINGERPRINT_KEY_VARIABLE)
    if configured is not None and configured.strip():
        return configured.encode()
    if configured is not None:  # set but empty (a CI secret that is missing): not "use the key file"
        found = "holds only whitespace" if configured else "is empty"
        raise SecretError(f"{FINGERPRINT_KEY_VARIABLE} is set but {found}; give it the key, or unset it")
    if key_file.exists():
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            raise SecretError(f"cannot read the fingerprint key {key_file}: {exc.strerror}") from exc
        if len(key) < MIN_KEY_FILE_BYTES:
            found = "is empty" if not key else f"holds {len(key)} characters (at least {MIN_KEY_FILE_BYTES} needed)"
            raise SecretError(
                f"the fingerprint key {key_file} {found}; restore it from a backup, or delete it to "
                "create a new one (every applied secret then shows as changed once)"
            )
        return key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    token = stdlib_secrets.token_hex(32).encode()
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(token)
    return token
