"""Superset answers of the wrong shape become an error naming the call, never a KeyError or an endless listing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.clients.http import RetryPolicy
from reconciler.errors import ApiError
from reconciler.systems.superset import client as superset_calls
from reconciler.systems.superset.client import SupersetClient

BASE = "http://superset.test"
LOGIN = "/api/v1/security/login"


def client(answer: Callable[[httpx.Request], Any], login: Any = None) -> SupersetClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == LOGIN:
            return httpx.Response(200, json=login if login is not None else {"access_token": "a"})
        return httpx.Response(200, json=answer(request))

    transport = httpx.MockTransport(handler)
    return SupersetClient(BASE, username="admin", password="pw", transport=transport, retry=RetryPolicy(attempts=1))


def dashboard(ident: int) -> dict[str, Any]:
    return {"id": ident, "uuid": f"u-{ident}", "slug": None, "dashboard_title": f"d{ident}"}


def page(request: httpx.Request) -> int:
    return int(str(request.url.params["q"]).split("page:")[1].split(",")[0])


@pytest.mark.parametrize(
    ("answer", "login", "message"),
    [
        (lambda r: {"result": "oops"}, None, "GET /api/v1/dashboard/: `result` is not a list of objects with an id"),
        (lambda r: {"result": [{"slug": "x"}]}, None, "`result` is not a list of objects with an id"),
        (lambda r: {"result": [dashboard(1)] if page(r) < 20 else []}, None, "page 1 repeats rows already listed"),
        (lambda r: [], None, "GET /api/v1/dashboard/: expected JSON"),
        (
            lambda r: {"result": []},
            {"refresh_token": "r"},
            "POST /api/v1/security/login: the answer has no access_token",
        ),
    ],
)
def test_a_listing_answered_oddly_names_the_call(
    answer: Callable[[httpx.Request], Any], login: Any, message: str
) -> None:
    with pytest.raises(ApiError, match=message.replace("(", r"\(").replace("[", r"\[")) as info:
        client(answer, login).list_dashboards()
    assert "refresh_token" in str(info.value) or "'r'" not in str(info.value)


def test_a_listing_that_never_ends_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(superset_calls, "MAX_ROWS", 250)

    def endless(request: httpx.Request) -> dict[str, Any]:
        start = page(request) * 100  # ends after 1000 rows, so that a regression fails rather than hangs
        return {"result": [dashboard(start + i) for i in range(100)] if start < 1000 else []}

    with pytest.raises(ApiError, match="GET /api/v1/dashboard/: more than 250 rows"):
        client(endless).list_dashboards()


def test_a_listing_of_tiny_pages_is_capped_by_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(superset_calls, "MAX_PAGES", 30)

    def one_a_page(request: httpx.Request) -> dict[str, Any]:
        return {"result": [dashboard(page(request))] if page(request) < 1000 else []}

    with pytest.raises(ApiError, match="GET /api/v1/dashboard/: more than 30 pages"):
        client(one_a_page).list_dashboards()


@pytest.mark.parametrize("answer", [{"result": {"roles": ["Admin"]}}, {"result": "oops"}, {"result": None}, {}])
def test_the_users_own_roles_answered_oddly_name_the_call(answer: Any) -> None:
    with pytest.raises(ApiError, match=r"GET /api/v1/me/roles/: `result\.roles` is not a mapping"):
        client(lambda _request: answer).my_roles()


def test_the_users_own_roles_keep_only_permission_pairs() -> None:
    roles = {"Admin": [["can_get", "Role"], ["odd"], "x"], "Empty": [], "Odd": "x"}
    assert client(lambda _request: {"result": {"roles": roles}}).my_roles() == {
        "Admin": [("can_get", "Role")],
        "Empty": [],
    }
