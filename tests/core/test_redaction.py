"""URL credentials are redacted from every error text, whatever the scheme."""

from __future__ import annotations

from reconciler.clients.kube.client import KubeError
from reconciler.errors import ApiError, redact_credentials
from reconciler.spec.secrets import has_url_password
from reconciler.systems.superset.client import SupersetError
from reconciler.systems.workloads.dagster import DagsterError


def test_userinfo_of_any_url_is_hidden_and_the_rest_kept() -> None:
    text = "GET http://u:p%40ss@h:80/x?y=1 and postgresql://reporter:pw@db/analytics, https://tok@git/x"
    assert redact_credentials(text) == (
        "GET http://u:***@h:80/x?y=1 and postgresql://reporter:***@db/analytics, https://***@git/x"
    )
    assert (
        redact_credentials("mail admin@example.com at http://host/a@b") == "mail admin@example.com at http://host/a@b"
    )


def test_a_password_holding_an_at_sign_is_hidden_whole() -> None:
    text = "GET postgresql://bob:p@ss@db:5432/x failed; see http://u:p@h/x?y=a@b"
    assert redact_credentials(text) == "GET postgresql://bob:***@db:5432/x failed; see http://u:***@h/x?y=a@b"
    assert has_url_password("dsn: mysql://bob:p@ss@db/x")


def test_every_error_tree_redacts_its_message() -> None:
    for error in (
        ApiError("airbyte", "cannot reach http://a:b@h"),
        KubeError("http://a:b@h"),
        DagsterError("http://a:b@h"),
    ):
        assert "a:***@h" in str(error) and ":b@" not in repr(error)


def test_a_superset_errors_own_message_is_redacted_too() -> None:
    error = SupersetError("(psycopg2) cannot connect to postgresql://reporter:pw@warehouse/analytics", status=400)
    assert error.message == "(psycopg2) cannot connect to postgresql://reporter:***@warehouse/analytics"


def test_a_password_holding_a_slash_is_hidden_and_paths_with_an_at_sign_are_not_taken_for_one() -> None:
    text = "GET postgresql://u:pa/ss@h/db failed; so did mysql://bob:a/b@c@db:3306/x"
    assert redact_credentials(text) == "GET postgresql://u:***@h/db failed; so did mysql://bob:***@db:3306/x"
    assert has_url_password('dsn: "postgresql://u:pa/ss@h/db"')
    for plain in ("https://host/a/b@c", "https://host:8443/a/b@c", "http://h:80?to=a:b@c", "https://h/p?u=x:y@z"):
        assert redact_credentials(plain) == plain and not has_url_password(plain)
