"""Superset specs a hostile hand wrote, offline: secrets where SQLAlchemy still finds them, built-in role look-alikes.

Each case is what a careless or hostile user can write in the specs, checked at `reconcile validate`
(exit 1, file:line, never the secret) and at the pure rule that decides it.
"""

from __future__ import annotations

import re
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
    assert_refused(validate(root), f"{PROD}:{line}: superset.databases.warehouse.sqlalchemyUri:", "password or secret")


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


# ---- built-in roles by a name that reads as one -----------------------------------------------------

ROLES = "specs/superset/roles.yaml"
LOOKALIKES = {
    "Cyrillic A": "\u0410dmin",
    "full-width": "\uff21\uff44\uff4d\uff49\uff4e",
    "zero-width space": "Admin\u200b",
    "accent": "\u00c1dmin",
    "soft hyphen": "Pub\u00adlic",
    "Cyrillic a in Gamma": "G\u0430mma",
    "full-width low line": "sql\uff3flab",
}


@pytest.mark.parametrize("case", sorted(LOOKALIKES))
def test_a_role_whose_name_reads_as_a_built_in_is_refused(case: str, tmp_path: Path) -> None:
    """A MySQL-backed Superset (utf8mb4 `_ci` collations ignore accents, width and invisible characters) finds the
    built-in itself by such a name; everywhere else it shows in the UI as the built-in."""
    name = LOOKALIKES[case]
    root = copy_example(tmp_path)
    text = (root / ROLES).read_text(encoding="utf-8")
    (root / ROLES).write_text(text + f'  - name: "{name}"\n    permissions: [[can_read, Dashboard]]\n', "utf-8")
    line = len(text.splitlines()) + 1
    result = validate(root)
    assert_refused(result, f"{ROLES}:{line}: roles.2.name:", "is too close to Superset's built-in role")


@pytest.mark.parametrize("name", ["Administrators", "Gamma rays", "Публичный", "sql-lab", "Ωmega"])
def test_roles_that_only_share_letters_with_a_built_in_validate(name: str, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    text = (root / ROLES).read_text(encoding="utf-8")
    (root / ROLES).write_text(text + f'  - name: "{name}"\n    permissions: [[can_read, Dashboard]]\n', "utf-8")
    result = validate(root)
    assert result.exit_code == 0, result.output


# ---- names pull writes: portable to every checkout ---------------------------------------------------

WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10))}


def test_pull_never_writes_a_name_windows_reserves() -> None:
    """A dashboard slugged `CON`, a database `aux`, a table `nul` and a schema `com1`: Windows cannot create
    `con/`, `aux.yaml` or `nul.yaml` (any extension), so a project holding them cannot be checked out there."""
    from reconciler.systems.superset.rules.bundle import read_bundle
    from reconciler.systems.superset.rules.bundle_files import from_files, to_files
    from tests.superset.test_superset_bundle import export_zip, prod_like

    files = prod_like()
    files["dashboards/Overview_1.yaml"]["slug"] = "CON"
    files["databases/analytics.yaml"]["database_name"] = "aux"
    files["datasets/analytics/sales_21.yaml"] |= {"table_name": "nul", "schema": "com1"}
    written = to_files(read_bundle(export_zip(files)))
    parts = {part for path in written for part in path.split("/")}
    assert not {part for part in parts if part.split(".")[0].lower() in WINDOWS_RESERVED}, sorted(written)
    assert to_files(from_files(written)) == written  # the same names every pull


# ---- reconciler never locks itself out of the assets either -----------------------------------------


def test_taking_what_the_asset_calls_need_from_the_users_role_is_lost_access() -> None:
    from reconciler.systems.superset.rules.guards import ASSET_API, SECURITY_API, lost_security_access

    admin = [*SECURITY_API, *ASSET_API, ("can_read", "Log")]
    after = [pair for pair in admin if pair not in {("can_read", "Dashboard"), ("can_read", "Log")}]
    assert lost_security_access({"Admin": admin}, {"Admin": after}) == ["can_read on Dashboard"]
    narrow = [*SECURITY_API, ("can_read", "Dashboard")]  # a service account without export: nothing to lose there
    assert lost_security_access({"reconciler": narrow}, {"reconciler": narrow}) == []


def test_a_list_of_eleven_or_more_secrets_in_extra_is_stripped_whole() -> None:
    """Paths were deleted in reverse *string* order, so index 9 went before 10: IndexError (a pull traceback), or
    with more items after them, a secret left in what pull writes."""
    from reconciler.systems.superset.rules.connection_secrets import mask_extra_secrets, strip_extra_secrets

    tokens = [f"S3cr3t-token-{n}" for n in range(12)]
    extra = {"engine_params": {"connect_args": {"tokens": tokens, "options": [{"password": "S3cr3t-pw"}, "x"]}}}
    stripped, found = strip_extra_secrets(extra)
    assert len(found) == 13
    assert "S3cr3t" not in repr(stripped), stripped
    assert stripped["engine_params"]["connect_args"]["options"] == [{}, "x"]
    assert "S3cr3t" not in repr(mask_extra_secrets(extra))


# ---- pull: one password variable per database -------------------------------------------------------


def test_databases_whose_names_differ_only_in_punctuation_case_or_script_get_their_own_password_variable() -> None:
    """`Warehouse EU` and `warehouse-eu` both became SUPERSET_PROD_WAREHOUSE_EU_PASSWORD (and `仓库`, `倉庫` both
    SUPERSET_PROD__PASSWORD): one value for two databases, one of them sent the other's password."""
    from reconciler.systems.superset.rules.bundle import read_bundle
    from reconciler.systems.superset.rules.pull import connection_entries
    from tests.superset.test_superset_bundle import database, export_zip

    names = ["Warehouse EU", "warehouse-eu", "\u4ed3\u5e93", "\u5009\u5eab", "analytics"]
    files = {
        f"databases/db_{n}.yaml": database()
        | {"database_name": name, "uuid": f"00000000-0000-4000-8000-00000000000{n}"}
        for n, name in enumerate(names)
    }
    entries = connection_entries(read_bundle(export_zip(files)), [], "prod")
    variables = {entry.name: entry.password_variable for entry in entries}
    assert sorted(variables) == sorted(names)
    assert len(set(variables.values())) == len(names), variables
    assert variables["analytics"] == "SUPERSET_PROD_ANALYTICS_PASSWORD"  # no collision, the plain name
    assert all(
        v is not None and re.fullmatch(r"SUPERSET_PROD_[A-Z0-9]+(_[A-Z0-9]+)*_PASSWORD", v) for v in variables.values()
    )
    again = connection_entries(read_bundle(export_zip(files)), ["Warehouse EU"], "prod")  # one declared before
    assert {e.name: e.password_variable for e in again}["warehouse-eu"] == variables["warehouse-eu"]


@pytest.mark.parametrize(
    "name", ["sslpassword", "PGPASSWORD", "dbpassword", "authPassword", "AccountKey", "SharedAccessKey"]
)
def test_secret_parameters_spelled_without_an_underscore_are_refused(name: str, tmp_path: Path) -> None:
    """libpq's `sslpassword` (the client key's passphrase, passed through by SQLAlchemy), Azure's `AccountKey`: the
    names the spec files' own check calls secrets, the URI's check let through."""
    root = copy_example(tmp_path)
    line = edit(root, PROD, ENV_URI, f'"postgresql://reporter@warehouse/analytics?sslmode=require&{name}={SECRET}"')
    assert_refused(validate(root), f"{PROD}:{line}: superset.databases.warehouse.sqlalchemyUri:", f"({name}=)")
    assert SECRET not in mask_uri_secrets(f"postgresql://u@h/db?{name}={SECRET}")
