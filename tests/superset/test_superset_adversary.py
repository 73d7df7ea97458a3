"""Superset specs a hostile hand wrote, offline: secrets where SQLAlchemy still finds them, built-in role look-alikes.

Each case is what a careless or hostile user can write in the specs, checked at `reconcile validate`
(exit 1, file:line, never the secret) and at the pure rule that decides it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.systems.superset.rules.connection_secrets import mask_uri_secrets, strip_uri_secrets, uri_secrets
from tests.helpers import copy_example
from tests.superset.test_superset_spec_trust import ENV_URI, PROD, SECRET, assert_refused, edit, validate

AFTER_A_HASH = f"postgresql://reporter@warehouse:5432/analytics?sslmode=require#&password={SECRET}"
"""SQLAlchemy's URL reads everything after `?` as the query (`make_url(...).query` is
`{'sslmode': 'require#', 'password': SECRET}`): there is no fragment in a database URI."""


def test_a_password_after_a_hash_in_the_query_is_found_masked_and_stripped() -> None:
    assert uri_secrets(AFTER_A_HASH) == ["password="]
    assert SECRET not in mask_uri_secrets(AFTER_A_HASH)
    stripped, found = strip_uri_secrets(AFTER_A_HASH)
    assert SECRET not in stripped and found == ["password="]


def test_a_password_after_a_hash_in_the_uri_is_refused_at_its_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    line = edit(root, PROD, ENV_URI, f'"{AFTER_A_HASH}"')
    assert_refused(
        validate(root), f"{PROD}:{line}: superset.databases.warehouse.sqlalchemyUri:", "password or secret"
    )


@pytest.mark.parametrize(
    "uri",
    [
        f"postgresql://reporter:{SECRET.replace('-', '%2D')}@warehouse/analytics",  # percent-encoded password
        f"postgresql://reporter@warehouse/analytics?pass%77ord={SECRET}",  # percent-encoded name
        f"postgresql://reporter@warehouse/analytics#?password={SECRET}",  # '#' in the database name
    ],
)
def test_encoded_or_odd_secrets_in_the_uri_are_refused(uri: str, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    line = edit(root, PROD, ENV_URI, f'"{uri}"')
    assert_refused(validate(root), f"{PROD}:{line}: superset.databases.warehouse.sqlalchemyUri:")
