"""Core: the secrets a Superset connection carries besides its password field, found, masked and cut (pure)."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.systems.superset.rules.bundle_model import PASSWORD_MASK
from reconciler.systems.superset.rules.connection_secrets import (
    extra_secrets,
    mask_extra_secrets,
    mask_uri_secrets,
    strip_extra_secrets,
    strip_uri_secrets,
    uri_secrets,
)

NAMES = ["password", "PASSWORD", "Pwd", "passwd", "client_secret", "access_token", "api_key", "private_key_passphrase"]
SECRET = st.text(st.characters(whitelist_categories=("L", "N"), max_codepoint=0x2FFF), max_size=20).map(
    lambda text: f"S3cr3t{text}"  # never a word of the URI around it
)


@pytest.mark.parametrize(
    ("uri", "found", "stripped"),
    [
        ("postgresql://u@h/db?sslmode=require", [], "postgresql://u@h/db?sslmode=require"),
        ("postgresql://u:XXXXXXXXXX@h/db", [], "postgresql://u:XXXXXXXXXX@h/db"),
        ("postgresql://u:pa/ss@h/db", ["user:password@"], "postgresql://u@h/db"),
        ("postgresql://h:5432/db?x=a@b", [], "postgresql://h:5432/db?x=a@b"),
        ("postgresql://u@h/db?a=1&password=s&b=2", ["password="], "postgresql://u@h/db?a=1&b=2"),
        ("trino://u@h/c?access_token=s#top", ["access_token="], "trino://u@h/c"),  # SQLAlchemy: token 's#top'
        ("trino://u@h/c?a=1#&access_token=s", ["access_token="], "trino://u@h/c?a=1#"),
        (
            "mssql+pyodbc:///?odbc_connect=DRIVER={x};PWD=s;UID=u",
            ["PWD="],
            "mssql+pyodbc:///?odbc_connect=DRIVER={x};UID=u",
        ),
        ("bigquery://p?credentials_path=/k.json", [], "bigquery://p?credentials_path=/k.json"),
    ],
)
def test_uri_secrets_are_found_and_cut_where_they_are(uri: str, found: list[str], stripped: str) -> None:
    assert uri_secrets(uri) == found
    assert strip_uri_secrets(uri) == (stripped, found)


@given(name=st.sampled_from(NAMES), secret=SECRET, encoded=st.booleans(), before=st.booleans())
def test_a_masked_or_stripped_uri_never_holds_the_secret(name: str, secret: str, encoded: bool, before: bool) -> None:
    if encoded:  # inside an ODBC connection string, percent-encoded as SQLAlchemy wants it
        odbc = f"DRIVER={{ODBC Driver 18}};SERVER=h;{name}={secret};UID=u" if before else f"SERVER=h;{name}={secret}"
        uri = f"mssql+pyodbc:///?odbc_connect={quote_plus(odbc)}"
    else:
        uri = f"postgresql://u@h/db?{'sslmode=require&' if before else ''}{name}={quote_plus(secret)}"
    assert uri_secrets(uri) == [f"{name}="]
    masked = mask_uri_secrets(uri)
    assert quote_plus(secret) not in masked and secret not in masked
    assert uri_secrets(masked) == []
    assert mask_uri_secrets(masked) == masked
    stripped, _ = strip_uri_secrets(uri)
    assert quote_plus(secret) not in stripped and secret not in stripped
    assert uri_secrets(stripped) == []


def test_extra_secrets_at_any_depth_as_a_mapping_or_a_json_string() -> None:
    extra = {"engine_params": {"connect_args": {"password": "s3", "sslmode": "require"}}, "metadata_params": {}}
    assert extra_secrets(extra) == [("engine_params", "connect_args", "password")]
    assert mask_extra_secrets(extra)["engine_params"]["connect_args"] == {
        "password": PASSWORD_MASK,
        "sslmode": "require",
    }
    assert strip_extra_secrets(extra)[0]["engine_params"]["connect_args"] == {"sslmode": "require"}
    assert extra["engine_params"]["connect_args"]["password"] == "s3"  # the input is left as it was
    text = '{"engine_params": {"connect_args": {"PWD": "s3"}}}'
    assert extra_secrets(text) == [("engine_params", "connect_args", "PWD")]
    assert "s3" not in mask_extra_secrets(text) and "s3" not in strip_extra_secrets(text)[0]
    assert extra_secrets({"engine_params": {"connect_args": {"password": PASSWORD_MASK}}}) == []
