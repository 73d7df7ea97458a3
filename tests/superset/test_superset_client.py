"""The Superset client: auth, CSRF, errors and retries against httpx.MockTransport, then against a real Superset.

The MockTransport answers copy what Superset 6.1.0 was seen to send (the real-server tests at the
end pin those same behaviours, so the fakes cannot drift from the real thing unnoticed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
import yaml

from reconciler.clients.http import RetryPolicy
from reconciler.sandbox.superset import SECRET_KEY
from reconciler.systems.superset.client import (
    SupersetAuthError,
    SupersetClient,
    SupersetError,
    SupersetNotFoundError,
    SupersetResponseError,
    rison,
)
from reconciler.systems.superset.rules.bundle import DatabaseTarget, build_import_zip, read_bundle, rewrite_databases
from tests.superset.conftest import SupersetPair
from tests.testbeds.superset_bed import as_dashboard_zip
from tests.testbeds.superset_fixtures import FixtureIds, QaBaseline

BASE = "http://superset.test"
LOGIN_PAGE = "<!doctype html><html><head><title>Superset</title></head><body>Sign in</body></html>"


@dataclass
class FakeSuperset:
    """Just enough of Superset's auth and CSRF behaviour; `routes` answer everything else."""

    routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    access_tokens: list[str] = field(default_factory=lambda: ["access-1", "access-2", "access-3"])
    valid_access: set[str] = field(default_factory=set)
    csrf_tokens: list[str] = field(default_factory=lambda: ["csrf-1", "csrf-2"])
    valid_csrf: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    logins: int = 0
    intercept: Callable[[httpx.Request], httpx.Response | None] = lambda _request: None

    def issue_access(self) -> str:
        token = self.access_tokens.pop(0)
        self.valid_access.add(token)
        return token

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.seen.append(f"{method} {path}")
        intercepted = self.intercept(request)
        if intercepted is not None:
            return intercepted
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if path == "/api/v1/security/login":
            self.logins += 1
            body = json.loads(request.content)
            if (body["username"], body["password"], body["provider"], body["refresh"]) != ("admin", "pw", "db", True):
                return httpx.Response(401, json={"message": "Not authorized"})
            return httpx.Response(200, json={"access_token": self.issue_access(), "refresh_token": "refresh-1"})
        if path == "/api/v1/security/refresh":
            if bearer != "refresh-1":
                return httpx.Response(401, json={"msg": "Token has expired"})
            return httpx.Response(200, json={"access_token": self.issue_access()})
        if bearer not in self.valid_access:
            return httpx.Response(401, json={"msg": "Token has expired"})
        if path == "/api/v1/security/csrf_token/":
            token = self.csrf_tokens.pop(0)
            self.valid_csrf.add(token)
            return httpx.Response(200, json={"result": token}, headers={"set-cookie": f"session=s-{token}; Path=/"})
        if method != "GET":
            token = request.headers.get("x-csrftoken")
            cookie = request.headers.get("cookie", "")
            if token not in self.valid_csrf or f"session=s-{token}" not in cookie or not request.headers.get("referer"):
                if request.headers.get("content-type", "").startswith("multipart/"):
                    return httpx.Response(302, headers={"location": f"/login/?next={path}"}, text=LOGIN_PAGE)
                return httpx.Response(
                    400, json={"errors": [{"message": "400 Bad Request: The CSRF token is missing."}]}
                )
        handler = self.routes.get((method, path))
        if handler is None:
            return httpx.Response(404, json={"message": "Not found"})
        return handler(request)


def make_client(fake: FakeSuperset, **kwargs: Any) -> SupersetClient:
    options: dict[str, Any] = {"username": "admin", "password": "pw"} | kwargs
    return SupersetClient(
        BASE, transport=httpx.MockTransport(fake), retry=RetryPolicy(attempts=3, sleep=lambda _s: None), **options
    )


def ok(payload: dict[str, Any], status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json=payload)


# ---- MockTransport ------------------------------------------------------------------------------


def test_rison_encodes_the_q_parameters_superset_reads() -> None:
    assert rison({"page": 0, "page_size": 100}) == "(page:0,page_size:100)"
    assert rison([1, 2, 3]) == "!(1,2,3)"
    assert (
        rison({"columns": ["id", "dashboards.id"], "x": True, "y": None}) == "(columns:!(id,dashboards.id),x:!t,y:!n)"
    )
    assert rison("two words") == "'two words'"
    assert rison("it's!") == "'it!'s!!'"
    assert rison("") == "''"


def test_an_html_page_with_status_200_is_an_error_not_a_success() -> None:
    fake = FakeSuperset()
    fake.routes[("POST", "/api/v1/assets/import/")] = lambda _r: httpx.Response(
        200, text=LOGIN_PAGE, headers={"content-type": "text/html; charset=utf-8"}
    )
    with pytest.raises(SupersetResponseError) as caught:
        make_client(fake).import_assets(b"PK-not-really", {})
    message = str(caught.value)
    assert "POST /api/v1/assets/import/" in message
    assert "HTTP 200 text/html" in message
    assert "<!doctype html>" in message
    assert caught.value.status == 200


def test_json_that_is_not_the_ok_message_is_an_error_for_an_import() -> None:
    fake = FakeSuperset()
    fake.routes[("POST", "/api/v1/assets/import/")] = ok({"message": "something else"})
    with pytest.raises(SupersetResponseError, match="import answered"):
        make_client(fake).import_assets(b"PK", {})


def test_writes_carry_the_csrf_token_its_session_cookie_and_a_referer_fetched_once() -> None:
    fake = FakeSuperset()
    fake.routes[("POST", "/api/v1/dashboard/")] = ok({"id": 7, "result": {}}, status=201)
    client = make_client(fake)
    assert client.create_dashboard({"dashboard_title": "a"}) == 7
    assert client.create_dashboard({"dashboard_title": "b"}) == 7
    assert fake.seen.count("GET /api/v1/security/csrf_token/") == 1
    assert client.writes_made == 2
    assert client.requests_made == 4  # login, CSRF token, two writes


def test_a_refused_csrf_token_is_fetched_again_once_for_json_and_for_multipart_writes() -> None:
    fake = FakeSuperset()
    fake.routes[("POST", "/api/v1/dashboard/")] = ok({"id": 7}, status=201)
    fake.routes[("POST", "/api/v1/assets/import/")] = ok({"message": "OK"})
    client = make_client(fake)
    client.create_dashboard({"dashboard_title": "a"})
    fake.valid_csrf.clear()  # e.g. the server's session expired
    client.create_dashboard({"dashboard_title": "b"})
    assert fake.seen.count("GET /api/v1/security/csrf_token/") == 2

    fake.valid_csrf.clear()
    fake.csrf_tokens.append("csrf-3")
    client.import_assets(b"PK", {})
    assert fake.seen.count("GET /api/v1/security/csrf_token/") == 3


def test_a_csrf_refusal_that_survives_a_fresh_token_is_reported() -> None:
    redirect = httpx.Response(302, headers={"location": "/login/?next=/api/v1/dashboard/import/"}, text=LOGIN_PAGE)
    fake = FakeSuperset(intercept=lambda r: redirect if r.url.path == "/api/v1/dashboard/import/" else None)
    with pytest.raises(SupersetResponseError, match=r"HTTP 302 redirect to /login/.*CSRF"):
        make_client(fake).import_dashboards(b"PK", {})
    assert fake.seen.count("POST /api/v1/dashboard/import/") == 2
    assert fake.seen.count("GET /api/v1/security/csrf_token/") == 2


def test_an_expired_access_token_is_renewed_with_the_refresh_token() -> None:
    fake = FakeSuperset()
    fake.routes[("GET", "/api/v1/dashboard/")] = ok({"count": 0, "result": []})
    client = make_client(fake)
    client.list_dashboards()
    fake.valid_access.clear()  # 15 minutes later
    client.list_dashboards()
    assert fake.logins == 1
    assert fake.seen.count("POST /api/v1/security/refresh") == 1


def test_when_the_refresh_token_is_refused_too_the_client_signs_in_again() -> None:
    fake = FakeSuperset()
    fake.routes[("GET", "/api/v1/dashboard/")] = ok({"count": 0, "result": []})
    client = make_client(fake)
    client.list_dashboards()
    fake.valid_access.clear()
    client._refresh_token = "revoked"
    client.list_dashboards()
    assert fake.logins == 2


def test_a_pre_issued_access_token_is_used_as_is_and_a_refusal_is_an_auth_error() -> None:
    fake = FakeSuperset()
    fake.valid_access.add("from-the-idp")
    fake.routes[("GET", "/api/v1/dashboard/")] = ok({"count": 0, "result": []})
    client = make_client(fake, username=None, password=None, access_token="from-the-idp")
    assert client.list_dashboards() == []
    assert fake.logins == 0
    fake.valid_access.clear()
    with pytest.raises(SupersetAuthError, match="no username/password"):
        client.list_dashboards()


def test_a_malformed_token_answered_with_jwt_422_is_renewed_like_a_401() -> None:
    fake = FakeSuperset()
    fake.routes[("GET", "/api/v1/dashboard/")] = ok({"count": 0, "result": []})
    client = make_client(fake)
    client.list_dashboards()
    answered: list[int] = []

    def signature_fails_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/v1/dashboard/" and not answered:
            answered.append(422)
            return httpx.Response(422, json={"msg": "Signature verification failed"})
        return None

    fake.intercept = signature_fails_once
    assert client.list_dashboards() == []
    assert fake.seen.count("POST /api/v1/security/refresh") == 1


def test_a_wrong_password_is_an_auth_error_naming_the_answer() -> None:
    with pytest.raises(SupersetAuthError, match="sign-in failed: HTTP 401: Not authorized"):
        make_client(FakeSuperset(), password="wrong").list_dashboards()


def test_gets_are_retried_on_503_and_lost_connections_but_writes_are_not() -> None:
    fake = FakeSuperset()
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, json={"count": 0, "result": []})])
    fake.routes[("GET", "/api/v1/chart/")] = lambda _r: next(answers)
    posts: list[int] = []

    def refuse_post(_request: httpx.Request) -> httpx.Response:
        posts.append(1)
        return httpx.Response(503, text="busy")

    fake.routes[("POST", "/api/v1/chart/")] = refuse_post
    fake.routes[("GET", "/api/v1/database/")] = ok({"count": 0, "result": []})
    client = make_client(fake)
    assert client.list_charts() == []
    with pytest.raises(SupersetError, match="HTTP 503"):
        client.create_chart({"slice_name": "x"})
    assert len(posts) == 1

    drops = iter([True, False])

    def drop_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/v1/database/" and next(drops):
            raise httpx.ConnectError("connection refused")
        return None

    fake.intercept = drop_once
    assert client.list_databases() == []
    assert client.counter.retries == 2


@pytest.mark.parametrize(
    ("failure", "unknown"),
    [
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
        (httpx.ReadTimeout("timed out"), True),
        (httpx.ReadError("connection reset by peer"), True),
        (httpx.ConnectError("connection refused"), False),
        (httpx.ConnectTimeout("timed out"), False),
    ],
)
def test_a_write_whose_answer_is_lost_has_an_unknown_outcome_and_is_not_sent_again(
    failure: httpx.TransportError, unknown: bool
) -> None:
    fake = FakeSuperset()
    imports: list[int] = []

    def lose(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/v1/assets/import/":
            imports.append(1)
            raise failure
        return None

    fake.intercept = lose
    with pytest.raises(SupersetError) as raised:
        make_client(fake).import_assets(b"zip", {})
    assert raised.value.outcome_unknown is unknown
    assert raised.value.retryable
    assert ("answer was lost" in str(raised.value)) is unknown
    assert len(imports) == 1


def test_lists_page_with_rison_until_count_rows_are_seen() -> None:
    rows = [{"id": i, "uuid": f"u{i}", "slug": f"s{i}", "dashboard_title": f"D{i}"} for i in range(230)]
    pages: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params["q"]
        pages.append(q)
        page = int(q.split("page:")[1].split(",")[0])
        return httpx.Response(200, json={"count": 230, "result": rows[page * 100 : page * 100 + 100]})

    fake = FakeSuperset()
    fake.routes[("GET", "/api/v1/dashboard/")] = handler
    listed = make_client(fake).list_dashboards()
    assert [d.id for d in listed] == list(range(230))
    columns = "id,uuid,slug,dashboard_title,tags.name,owners.email,owners.first_name,owners.last_name"
    assert pages[0] == f"(columns:!({columns}),page:0,page_size:100)"
    assert len(pages) == 3


def test_errors_carry_status_method_path_and_superset_message() -> None:
    fake = FakeSuperset()
    fake.routes[("PUT", "/api/v1/chart/9")] = ok({"message": {"params": ["Not valid JSON"]}}, status=422)
    client = make_client(fake)
    with pytest.raises(SupersetError) as caught:
        client.update_chart(9, {"params": "{"})
    assert caught.value.status == 422
    assert (caught.value.method, caught.value.path) == ("PUT", "/api/v1/chart/9")
    assert "Not valid JSON" in str(caught.value)
    with pytest.raises(SupersetNotFoundError):
        client.get_chart(12345)


def test_an_export_that_is_not_a_zip_is_an_error() -> None:
    fake = FakeSuperset()
    fake.routes[("GET", "/api/v1/dashboard/export/")] = ok({"result": []})
    with pytest.raises(SupersetResponseError, match="expected a ZIP"):
        make_client(fake).export_dashboards([1])


# ---- against a real Superset ----------------------------------------------------------------------


def expired_token_like(token: str) -> str:
    """A copy of a real access token, expired an hour ago, signed with the test bed's key."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header, payload, _signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = int(time.time()) - 3600
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(SECRET_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_real_superset_answers_a_multipart_write_without_csrf_with_a_login_redirect(
    superset_pair: SupersetPair,
) -> None:
    """The trap the client guards against, as Superset 6.1.0 really behaves."""
    login = {"username": "admin", "password": "admin", "provider": "db", "refresh": True}
    token = httpx.post(f"{superset_pair.prod.url}/api/v1/security/login", json=login).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    files = {"bundle": ("bundle.zip", build_import_zip(read_bundle(empty_zip())), "application/zip")}
    url = f"{superset_pair.prod.url}/api/v1/assets/import/"
    answer = httpx.post(url, headers=headers, files=files, follow_redirects=True)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    json_write = httpx.post(f"{superset_pair.prod.url}/api/v1/dashboard/", headers=headers, json={})
    assert json_write.status_code == 400
    assert "CSRF token is missing" in json_write.text


def empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("export/metadata.yaml", yaml.safe_dump({"version": "1.0.0", "type": "assets"}))
    return buffer.getvalue()


def test_real_superset_expired_token_and_stale_csrf_token_are_recovered(superset_pair: SupersetPair) -> None:
    client = SupersetClient(superset_pair.prod.url, username="admin", password="admin")
    dashboard_id = client.create_dashboard({"dashboard_title": "Client recovery", "slug": "client-recovery"})
    client._access_token = expired_token_like(str(client._access_token))
    client._csrf_token = "stale-token"
    client.update_dashboard(dashboard_id, {"dashboard_title": "Client recovery (renamed)"})
    assert client.get_dashboard(dashboard_id)["dashboard_title"] == "Client recovery (renamed)"
    client.delete_dashboard(dashboard_id)
    with pytest.raises(SupersetNotFoundError):
        client.get_dashboard(dashboard_id)
    # Superset checks the CSRF token before the JWT: the update went out twice (stale CSRF token,
    # then fine: fetching a new CSRF token renewed the expired access token on the way).
    assert client.writes_made == 4


def test_real_superset_lists_and_runs_the_fixture_charts(
    prod_client: SupersetClient, prod_fixtures: FixtureIds
) -> None:
    slugs = {d.slug for d in prod_client.list_dashboards()}
    assert {"sales-overview", "customer-health", "executive-summary"} <= slugs
    charts = {c.name: c for c in prod_client.list_charts()}
    assert charts["Total sales"].dashboard_ids == tuple(
        sorted((prod_fixtures.dashboard_ids["sales-overview"], prod_fixtures.dashboard_ids["executive-summary"]))
    )
    datasets = {d.table_name: d for d in prod_client.list_datasets()}
    assert datasets["customers_by_country"].sql is not None
    assert datasets["sales"].database_name == "warehouse"
    databases = prod_client.list_databases()
    assert [(d.name, d.backend, d.uuid) for d in databases] == [("warehouse", "sqlite", prod_fixtures.database_uuid)]

    answer = prod_client.chart_data(prod_fixtures.chart_ids["Sales by region"])
    rows = answer["result"][0]["data"]
    assert {row["region"] for row in rows} == {"EMEA", "AMER", "APAC"}
    saved = json.loads(prod_client.get_chart(prod_fixtures.chart_ids["Total sales"])["query_context"])
    writes = prod_client.writes_made
    posted = prod_client.query_chart_data(saved)
    assert (
        posted["result"][0]["data"]
        == prod_client.chart_data(prod_fixtures.chart_ids["Total sales"])["result"][0]["data"]
    )
    assert prod_client.writes_made == writes  # running a query is not a write


def test_real_superset_roles_permissions_are_replaced_as_a_whole(prod_client: SupersetClient) -> None:
    role_id = prod_client.create_role("reconciler-test-analyst")
    try:
        pvms = {(p.permission, p.view_menu): p for p in prod_client.list_permission_view_menus()}
        assert len(pvms) > 100  # more than one page
        read_dashboards = pvms[("can_read", "Dashboard")]
        read_charts = pvms[("can_read", "Chart")]
        prod_client.set_role_permissions(role_id, [read_dashboards.id, read_charts.id])
        assert {p.id for p in prod_client.role_permissions(role_id)} == {read_dashboards.id, read_charts.id}
        prod_client.set_role_permissions(role_id, [read_charts.id])
        assert [p.view_menu for p in prod_client.role_permissions(role_id)] == ["Chart"]
        assert "reconciler-test-analyst" in {r.name for r in prod_client.list_roles()}
    finally:
        prod_client.delete_role(role_id)
    assert "reconciler-test-analyst" not in {r.name for r in prod_client.list_roles()}


def test_real_superset_dashboard_import_keeps_edited_charts_but_assets_import_overwrites_them(
    prod_client: SupersetClient, qa_client: SupersetClient, prod_fixtures: FixtureIds, qa_baseline: QaBaseline
) -> None:
    """The overwrite trap: why replication goes through `import_assets`."""
    exported = read_bundle(prod_client.export_dashboards([prod_fixtures.dashboard_ids["customer-health"]]))
    target = DatabaseTarget(uuid=qa_baseline.database_uuid, name="warehouse", sqlalchemy_uri=None)
    bundle = rewrite_databases(exported, {prod_fixtures.database_uuid: target})
    qa_client.import_assets(build_import_zip(bundle), {})
    chart_uuid = next(a.uuid for a in bundle.of("charts") if a.name == "Customer count")

    def qa_chart_name() -> str:
        return next(c.name for c in qa_client.list_charts() if c.uuid == chart_uuid)

    chart = bundle.assets["charts"][chart_uuid]
    bundle.assets["charts"][chart_uuid] = replace(
        chart, content=chart.content | {"slice_name": "Customer count (edited)"}
    )
    as_dashboard_bundle = as_dashboard_zip(build_import_zip(bundle))
    qa_client.import_dashboards(as_dashboard_bundle, {}, overwrite=True)
    assert qa_chart_name() == "Customer count"
    qa_client.import_assets(build_import_zip(bundle), {})
    assert qa_chart_name() == "Customer count (edited)"
