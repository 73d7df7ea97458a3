"""Spec model of secret references: where a secret lives, never what it is.

A secret in a spec is written `{secretRef: {env: NAME}}`, `{secretRef: {file: PATH}}` or
`{secretRef: {kubernetes: {name, key, namespace?}}}`. The reference travels through plans and
state; only the apply step resolves it (`reconciler.secrets`), and only fingerprints leave it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reconciler.errors import URL_USERINFO

SECRET_KEY_PATTERN = re.compile(
    r"""
      pass(word|wd|phrase)$         # password, tunnel_user_password, client_key_password
    | ^pwd$                         # an ODBC connection string's PWD=
    | secret                        # client_secret, secret_access_key, hmac_key_secret
    | tokens?$                      # access_token, refresh_token
    | apikey                        # mailchimp's apikey
    | (^|_)keys?$ | _key_id$        # api_key, client_key, api_keys, access_key_id, trello's key
    | access_id$                    # hmac_key_access_id
    | ^ssh                          # ssh_key, ssh_password (inside tunnel_method)
    | credentials                   # credentials_json, service_account_credentials
    | private_?key                  # private_key, private_key_password
    | certificate$                  # ca_certificate, client_certificate: Airbyte masks them too
    | service_account_(info|json)$  # Google connectors' service account JSON
    | jaas_config$                  # Kafka's sasl_jaas_config holds the password
    """,
    re.IGNORECASE | re.VERBOSE,
)
"""Configuration key names (snake_case, or camelCase folded to it) whose values are secrets."""

NOT_SECRET_KEYS = frozenset(
    {"primary_key", "partition_key", "sort_key", "cursor_key", "shard_key", "sharding_key", "distribution_key"}
    | {"credentials_title", "token_expiry_date"}
)
"""Names the rules above would catch that connectors use for plain settings."""

PRIVATE_KEY_TEXT = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
"""A PEM private key is a secret wherever it is written."""

PARAMETER = re.compile(r"(?:^|[?&;\s])(?P<name>[A-Za-z][A-Za-z0-9_.-]*)=(?P<value>[^&;#\s]+)")
"""A `name=value` parameter (`jdbc_url_params: password=...`, `https://host/api?api_key=...`)."""

PAIR_NAME_KEYS = ("name", "key", "header")
"""The key naming a `{name: Authorization, value: ...}` pair (a header list's item); its sibling is `value`."""

SECRET_HEADER = re.compile(r"authori[sz]ation|cookie|token|secret|passw(or)?d|api_?key", re.IGNORECASE)
"""Header names whose values are secrets (Authorization, Cookie, X-Api-Key, X-Auth-Token, X-Client-Secret...)."""

AUTH_SCHEME_TEXT = re.compile(r"(?:Bearer|Basic)\s+\S", re.IGNORECASE)
"""A `value` starting `Bearer ...` or `Basic ...` is credentials, whatever the header it goes with."""


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


@functools.lru_cache(maxsize=1024)
def _plain_secret_ref(items: tuple[tuple[str, str], ...]) -> SecretRef:
    return SecretRef.model_validate(dict(items))


def secret_ref(raw: Any) -> SecretRef:
    """`SecretRef.model_validate(raw)`, each distinct reference written in plain strings (`{env: NAME}`,
    `{file: PATH}`) validated once per process: a fleet's 5,000 sources name a few, and both the loader's
    check and the rules read each. A frozen model, so sharing it is safe; a bad one raises each time."""
    if type(raw) is not str and _is_mapping(raw) and all(type(v) is str and type(k) is str for k, v in raw.items()):
        return _plain_secret_ref(tuple(raw.items()))
    return SecretRef.model_validate(raw)


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


_NOT_MAPPINGS = (str, int, float, list, type(None))


_SCALARS = frozenset({str, int, bool, type(None)})
"""The plain scalars of a spec tree, skipped where met by the walks below (no reference or mapping under them)."""


def _is_mapping(value: Any) -> bool:
    """`isinstance(value, Mapping)`, answered without the ABC check for the dicts and scalars of a spec tree."""
    return isinstance(value, dict) or (not isinstance(value, _NOT_MAPPINGS) and isinstance(value, Mapping))


def is_secret_ref(value: Any) -> bool:
    """True for the `{secretRef: {...}}` form."""
    return _is_mapping(value) and len(value) == 1 and "secretRef" in value


def iter_secret_refs(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every `(path, raw reference)` in a configuration tree."""
    if is_secret_ref(tree):
        yield prefix, tree["secretRef"]
    elif _is_mapping(tree):
        for key, value in tree.items():
            yield from iter_secret_refs(value, (*prefix, str(key)))


def iter_refs_in_lists(tree: Any, prefix: tuple[str | int, ...] = (), in_list: bool = False) -> Iterator[str]:
    """Dotted paths of `{secretRef}`s inside lists: apply resolves references in mappings only."""
    found: list[str] = []
    _refs_in_lists(tree, prefix, in_list, found)
    yield from found


def _refs_in_lists(tree: Any, prefix: tuple[str | int, ...], in_list: bool, found: list[str]) -> None:
    """`iter_refs_in_lists` as one recursive call per mapping or list (scalars are skipped where met: a
    connector's configuration of 5,000 is validated with this walk, most of its values strings)."""
    if _is_mapping(tree):
        if len(tree) == 1 and "secretRef" in tree:
            if in_list:
                found.append(".".join(str(step) for step in prefix))
            return
        for key, value in tree.items():
            if type(value) not in _SCALARS:
                _refs_in_lists(value, (*prefix, str(key)), in_list, found)
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            _refs_in_lists(item, (*prefix, index), True, found)


@functools.lru_cache(maxsize=4096)  # a spec of 5,000 resources asks about the same few keys 100,000 times
def is_secret_name(name: str) -> bool:
    """True for a configuration key whose value is a secret (`password`, `ssh_key`, `clientSecret`...)."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return snake not in NOT_SECRET_KEYS and SECRET_KEY_PATTERN.search(snake) is not None


def has_url_password(text: str) -> bool:
    """True when a URL in `text` carries a password (`scheme://user:password@`; a masked `***` is none)."""
    if "@" not in text:  # what the pattern needs, checked first: most values are no URL with userinfo
        return False
    for match in URL_USERINFO.finditer(text):
        _, colon, password = match.group("userinfo").partition(":")
        if colon and password.strip("*"):
            return True
    return False


def has_secret_parameter(text: str) -> bool:
    """True when `text` holds a `name=value` parameter under a secret name (`password=...`; `***` is none)."""
    if "=" not in text:
        return False
    return any(
        is_secret_name(match.group("name")) and match.group("value").strip("*") for match in PARAMETER.finditer(text)
    )


def is_secret_header(name: str) -> bool:
    """True for an HTTP header name whose value is a secret (`Authorization`, `X-Api-Key`, `Cookie`...)."""
    return SECRET_HEADER.search(name) is not None or is_secret_name(name.replace("-", "_"))


def _pair_name_key(mapping: Mapping[Any, Any]) -> str | None:
    """`name`, `key` or `header` when `mapping` is a `{name: HEADER, value: ...}` pair, else None."""
    if "value" not in mapping:
        return None
    return next((key for key in PAIR_NAME_KEYS if isinstance(mapping.get(key), str)), None)


def _is_value(value: Any) -> bool:
    """A scalar that could be a secret: a non-empty string or a number (not a flag, not null)."""
    return (isinstance(value, str) and value != "") or (isinstance(value, int | float) and not isinstance(value, bool))


def iter_inline_secrets(tree: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of secrets written as values (a spec error): under a secret name, in lists too, a PEM
    private key or a URL with a password under any name, and the `value` of a header pair whose name
    is a secret header or whose text is `Bearer ...`/`Basic ...` (`{name: Authorization, value: ...}`)."""
    inline: list[tuple[str | int, ...]] = []
    _scan(tree, prefix, False, inline, [])
    yield from inline


def scan_secrets(tree: Any) -> tuple[list[tuple[str | int, ...]], list[tuple[tuple[str, ...], Any]]]:
    """`[*iter_inline_secrets(tree)]` and `[*iter_secret_refs(tree)]` in one walk of the tree (a spec
    loader asks both of every configuration: some 120,000 nodes at 5,000 connectors)."""
    inline: list[tuple[str | int, ...]] = []
    refs: list[tuple[tuple[str, ...], Any]] = []
    _scan(tree, (), True, inline, refs)
    return inline, refs


def _scan(tree: Any, prefix: tuple[Any, ...], mapped: bool, inline: list[Any], refs: list[Any]) -> None:
    """Appends the inline secrets under `tree` to `inline` and, while `mapped` (the path went through
    mappings only, where `iter_secret_refs` looks), its `(path, raw reference)`s to `refs`."""
    if _is_mapping(tree):
        if len(tree) == 1 and "secretRef" in tree:
            if mapped:
                refs.append((prefix, tree["secretRef"]))
            return
        pair = _pair_name_key(tree)
        for key, value in tree.items():
            path = (*prefix, str(key))
            if pair is None:
                secret = is_secret_name(str(key))
            elif key == "value":
                credentials = isinstance(value, str) and AUTH_SCHEME_TEXT.match(value) is not None
                secret = credentials or is_secret_header(tree[pair])
            else:  # the pair's `key: X-Api-Key` names the header; it is no secret itself
                secret = key != pair and is_secret_name(str(key))
            if secret and _is_value(value):
                inline.append(path)
            elif secret and isinstance(value, list):
                _inline_in_list(value, path, inline)
            elif type(value) in _SCALARS:
                if type(value) is str and _is_secret_text(value):
                    inline.append(path)
            else:
                _scan(value, path, mapped, inline, refs)
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            _scan(item, (*prefix, index), False, inline, refs)
    elif isinstance(tree, str) and _is_secret_text(tree):
        inline.append(prefix)


def _is_secret_text(text: str) -> bool:
    """A PEM private key, a URL with a password or a secret `name=value` parameter, under any name."""
    return bool(
        ("PRIVATE KEY" in text and PRIVATE_KEY_TEXT.search(text))
        or has_url_password(text)
        or has_secret_parameter(text)
    )


def _inline_in_list(items: list[Any], prefix: tuple[str | int, ...], inline: list[Any]) -> None:
    """Under a secret name every scalar item of a list is a secret (`api_keys: [...]`)."""
    for index, item in enumerate(items):
        if _is_value(item):
            inline.append((*prefix, index))
        else:
            _scan(item, (*prefix, index), False, inline, [])
