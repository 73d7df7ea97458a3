"""Core, Superset databases: the secrets a connection can carry besides its password field, found, masked or cut.

Pure; used on both sides of the flow. Validation refuses them in the specs (`uri_secrets`,
`extra_secrets`), normalisation masks them in live exports so no plan prints one
(`mask_uri_secrets`, `mask_extra_secrets`), and `pull` leaves them out of what it writes
(`strip_uri_secrets`, `strip_extra_secrets`), declaring a password reference instead.

Where they hide: the URI's `user:password@`, a query parameter under a secret name
(`?password=`, `?PWD=`, `passwd`, `secret`, `...token`, `api_key`; case-insensitive; after a `#`
too, which SQLAlchemy reads as part of the query), an ODBC
connection string inside `odbc_connect=` (percent-encoded or not; `PWD=` and the like), and a
database's `extra` (`engine_params.connect_args.password`, any secret-named key at any depth).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from reconciler.errors import URL_USERINFO
from reconciler.spec.secrets import iter_inline_secrets
from reconciler.systems.superset.rules.bundle_model import PASSWORD_MASK

Path = tuple[str | int, ...]

URI_SECRET_PARAMETER = re.compile(
    r"pass(word|wd|phrase)$|(^|_)pass$|(^|_)pwd$|secret|tokens?$|api_?key|private_?key|account_?key$"
    r"|shared_?access_?key|credentials(_json|_info|_base64)?$",
    re.IGNORECASE,
)
"""Query or ODBC parameter names whose value is a secret (`credentials_path`, a file name, is not): a password in
one word too (`sslpassword`, libpq's client key passphrase; `PGPASSWORD`), Azure's `AccountKey` and
`SharedAccessKey`."""

_ODBC_CONNECT = "odbc_connect"


def is_uri_secret_parameter(name: str) -> bool:
    return URI_SECRET_PARAMETER.search(unquote_plus(name).strip().replace("-", "_")) is not None


def _is_value(value: str) -> bool:
    """A value that could be a secret: not empty, not Superset's mask, not a masked `***`."""
    return value.strip() not in ("", PASSWORD_MASK) and value.strip("*") != ""


def _split(text: str, separators: str) -> list[str]:
    """`a=1&b=2` -> [`a=1`, `&`, `b=2`]: pieces and the separators between them, so a rebuild keeps both."""
    return re.split(f"([{re.escape(separators)}])", text)


def _odbc(value: str, change: str | None, found: list[str]) -> str:
    """An ODBC connection string (`DRIVER=...;PWD=...`) with its secret values found and, unless
    `change` is None, replaced by `change` (an empty `change` drops the pair)."""
    pieces = _split(value, ";")
    kept: list[str] = []
    for piece in pieces:
        name, equals, secret = piece.partition("=")
        if equals and is_uri_secret_parameter(name) and _is_value(secret.strip("{}")):
            found.append(f"{name.strip()}=")
            if change == "":
                if kept and kept[-1] == ";":
                    kept.pop()
                continue
            if change is not None:
                piece = f"{name}={change}"
        kept.append(piece)
    return "".join(kept).lstrip(";")


def _query(query: str, change: str | None, found: list[str]) -> str:
    pieces = _split(query, "&;")
    kept: list[str] = []
    for piece in pieces:
        name, equals, value = piece.partition("=")
        if equals and unquote_plus(name).strip().lower() == _ODBC_CONNECT:
            decoded = unquote_plus(value)
            inner = _odbc(decoded, change, found)
            if inner != decoded:
                piece = f"{name}={quote_plus(inner)}"
        elif equals and is_uri_secret_parameter(name) and _is_value(unquote_plus(value)):
            found.append(f"{unquote_plus(name).strip()}=")
            if change == "":
                if kept and kept[-1] in "&;":
                    kept.pop()
                continue
            if change is not None:
                piece = f"{name}={change}"
        kept.append(piece)
    return "".join(kept).lstrip("&;")


def _rewrite_uri(uri: str, change: str | None) -> tuple[str, list[str]]:
    found: list[str] = []
    match = URL_USERINFO.match(uri)  # the userinfo as SQLAlchemy reads it (`u:pa/ss@h` too), never a port
    if match is not None:
        user, colon, password = match.group("userinfo").partition(":")
        if colon and _is_value(password):
            found.append("user:password@")
            if change is not None:
                uri = f"{match.group('scheme')}{user}{':' + change if change else ''}@{uri[match.end() :]}"
    base, question, query = uri.partition("?")
    if question:  # everything after the `?` is the query, `#` included: SQLAlchemy's URLs have no fragment
        query = _query(query, change, found)
        uri = f"{base}{'?' + query if query else ''}"
    return uri, found


def uri_secrets(uri: str) -> list[str]:
    """Where a URI carries a secret: `user:password@`, or a secret parameter's `NAME=` (never the value)."""
    return _rewrite_uri(uri, None)[1]


def mask_uri_secrets(uri: str) -> str:
    """The URI with Superset's mask in place of every secret it carries."""
    return _rewrite_uri(uri, PASSWORD_MASK)[0]


def strip_uri_secrets(uri: str) -> tuple[str, list[str]]:
    """The URI without its secrets (`user:password@` -> `user@`, secret parameters dropped), and where they were."""
    return _rewrite_uri(uri, "")


def _as_tree(extra: Any) -> Any:
    """`extra` as a tree: exports write a mapping, a hand-written file may hold a JSON string."""
    if isinstance(extra, str):
        try:
            return json.loads(extra)
        except ValueError:
            return extra
    return extra


def extra_secrets(extra: Any) -> list[Path]:
    """Paths of secrets written as values in a database's `extra` (Superset's mask is none)."""
    tree = _as_tree(extra)
    return [path for path in iter_inline_secrets(tree) if _is_value(str(_at(tree, path)))]


def _at(tree: Any, path: Path) -> Any:
    for step in path:
        tree = tree[step]
    return tree


def _deepest_and_last_first(path: Path) -> list[tuple[int, int, str]]:
    """A sort key ordering list indexes as numbers (9 before 10), so deleting in reverse never shifts an item
    still to be deleted."""
    return [(0, step, "") if isinstance(step, int) else (1, 0, step) for step in path]


def _rewrite_extra(extra: Any, change: str | None) -> tuple[Any, list[Path]]:
    tree = copy.deepcopy(_as_tree(extra))
    if not isinstance(tree, dict | list):
        return extra, []
    found = extra_secrets(tree)
    for path in sorted(found, key=_deepest_and_last_first, reverse=True):  # a list's later items go first
        parent = _at(tree, path[:-1])
        if change is None:
            del parent[path[-1]]
        else:
            parent[path[-1]] = change
    if not found:
        return extra, []
    return (json.dumps(tree, sort_keys=True) if isinstance(extra, str) else tree), found


def mask_extra_secrets(extra: Any) -> Any:
    """`extra` with Superset's mask in place of every secret value in it."""
    return _rewrite_extra(extra, PASSWORD_MASK)[0]


def strip_extra_secrets(extra: Any) -> tuple[Any, list[Path]]:
    """`extra` without its secret values, and where they were."""
    return _rewrite_extra(extra, None)


def dotted(path: Path) -> str:
    return ".".join(str(step) for step in path)


def iter_database_secrets(content: dict[str, Any]) -> Iterator[tuple[Path, str]]:
    """Every inline secret of a database asset file: (path to the key, what it is), never the value."""
    password = content.get("password")
    if isinstance(password, str | int | float) and not isinstance(password, bool) and _is_value(str(password)):
        yield ("password",), "an inline password"
    uri = content.get("sqlalchemy_uri")
    if isinstance(uri, str):
        for name in uri_secrets(uri):
            yield ("sqlalchemy_uri",), f"the URI carries a secret ({name})"
    for key in ("extra", "encrypted_extra", "masked_encrypted_extra"):
        value = content.get(key)
        for path in extra_secrets(value):
            where: Path = (key, *path) if not isinstance(value, str) else (key,)
            yield where, f"an inline secret in {key} ({dotted(path)})"
