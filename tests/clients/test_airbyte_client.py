"""The Airbyte client against httpx.MockTransport: paging, auth refresh, retries, safe creates, errors."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reconciler.clients.http import RetryPolicy
from reconciler.errors import ApiError
from reconciler.systems.airbyte.client import AirbyteClient

BASE = "http://airbyte.test/api/public/v1"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: object) -> AirbyteClient:
    return AirbyteClient(
        BASE,
        client_id="id",
        client_secret="secret",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=4, sleep=lambda _s: None),
        **kwargs,  # type: ignore[arg-type]
    )


def token_or(handler: Handler) -> Handler:
    def wrapped(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/applications/token"):
            return httpx.Response(200, json={"access_token": "t1", "token_type": "Bearer", "expires_in": 900})
        return handler(request)

    return wrapped


def test_paging_follows_offsets_and_stops_on_the_first_empty_page() -> None:
    items = [{"sourceId": str(i), "name": f"s{i}"} for i in range(230)]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        seen.append(f"{offset}+{limit}")
        page = items[offset : offset + limit]
        return httpx.Response(200, json={"data": page, "next": f"{BASE}/sources?offset={offset + limit}"})

    listed = client(token_or(handler)).list_all("sources")
    assert len(listed) == 230
    assert seen == ["0+100", "100+100", "200+100", "230+100"]


def test_each_listed_page_is_freed_once_decoded_without_the_cyclic_collector() -> None:
    """The collector is paused while the specs load, and a plan lists then: no page may wait for it."""
    items = [{"sourceId": str(i), "name": f"s{i}"} for i in range(230)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"data": items[offset : offset + limit]})

    airbyte = client(token_or(handler))
    gc.collect()
    gc.disable()
    try:
        assert len(airbyte.list_all("sources")) == 230
        kept = [obj for obj in gc.get_objects() if isinstance(obj, httpx.Response)]
    finally:
        gc.enable()
    assert kept == []


def test_an_expired_token_is_refreshed_once_on_401() -> None:
    tokens = iter(["t1", "t2"])
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/applications/token"):
            body = json.loads(request.content)
            assert body == {"client_id": "id", "client_secret": "secret", "grant-type": "client_credentials"}
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 900})
        calls.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer t1":
            return httpx.Response(401, json={"message": "Unauthorized"})
        return httpx.Response(200, json={"sourceId": "s1"})

    assert client(handler).get("sources", "s1") == {"sourceId": "s1"}
    assert calls == ["Bearer t1", "Bearer t2"]


def test_rate_limits_and_server_errors_are_retried_with_backoff() -> None:
    answers = iter([429, 500, 200])
    pauses: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status != 200:
            return httpx.Response(status, json={"title": "You are being rate limited.", "status": status})
        return httpx.Response(200, json={"sourceId": "s1"})

    c = AirbyteClient(
        BASE,
        token="static",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=4, base_seconds=0.5, sleep=pauses.append),
    )
    assert c.get("sources", "s1")["sourceId"] == "s1"
    assert pauses == [0.5, 1.0] and c.counter.retries == 2


def test_a_429_is_retried_no_sooner_than_its_retry_after_for_reads_and_creates() -> None:
    pauses: list[float] = []
    posts: list[int] = []
    limited = iter([True, False, True, False])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(1)
        if next(limited):
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"title": "rate limited", "status": 429})
        return httpx.Response(200, json={"sourceId": "s1", "name": "db"})

    c = AirbyteClient(
        BASE,
        token="static",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=4, base_seconds=0.5, sleep=pauses.append),
    )
    assert c.get("sources", "s1")["sourceId"] == "s1"
    assert c.create("sources", {"name": "db"}, find_existing=lambda: None)["sourceId"] == "s1"
    assert pauses == [7.0, 7.0] and len(posts) == 2  # a 429 was not carried out: posting again is safe


def test_a_create_whose_answer_was_lost_is_found_by_name_not_created_twice() -> None:
    posts: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request.content)
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"data": []})

    found = {"sourceId": "s-created", "name": "pg"}
    result = client(token_or(handler)).create("sources", {"name": "pg"}, find_existing=lambda: found)
    assert result == found and len(posts) == 1


def test_problem_details_become_a_clear_error_without_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        problem = {
            "type": "https://reference.airbyte.com/reference/errors#bad-request",
            "title": "bad-request",
            "status": 400,
            "detail": "The body of the request contains an invalid connector configuration.",
        }
        return httpx.Response(400, json=problem, headers={"content-type": "application/problem+json"})

    with pytest.raises(ApiError) as info:
        client(token_or(handler)).patch("sources", "s1", {"name": "x"})
    assert info.value.status == 400
    assert "invalid connector configuration" in str(info.value) and str(info.value).startswith("airbyte: PATCH")


def test_giving_up_after_the_retry_budget_says_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(ApiError, match="gave up after 4 attempts"):
        client(token_or(handler)).get("sources", "s1")


def test_wrong_credentials_fail_with_the_servers_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": "Unauthorized"})

    with pytest.raises(ApiError, match="sign-in failed: HTTP 401 Unauthorized"):
        client(handler).get("sources", "s1")


def test_no_httpx_exception_leaks_out_of_the_client() -> None:
    bad_url = AirbyteClient("htp://nowhere/api", token="t", retry=RetryPolicy(attempts=1, sleep=lambda _s: None))
    with pytest.raises(ApiError, match="htp://nowhere"):
        bad_url.get("sources", "s1")

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy login</html>")

    with pytest.raises(ApiError, match="expected JSON, got '<html>proxy login</html>'"):
        client(token_or(html)).get("sources", "s1")


class FakeTime:
    """A clock that only the client's own sleeps move."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def client(self, handler: Handler) -> AirbyteClient:
        """A client (30 s request timeout) whose retries and settling wait on this clock."""
        return AirbyteClient(
            BASE,
            client_id="id",
            client_secret="secret",
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(attempts=4, sleep=self.sleep),
            clock=self.clock,
            timeout=30.0,
        )


def timing_out_then(lands_after_lookups: int | None) -> tuple[Handler, list[str], Callable[[], dict[str, str] | None]]:
    """A server whose first POST times out on the client yet lands after `lands_after_lookups` lookups (None:
    never); a second POST is answered at once."""
    posts: list[str] = []
    lookups: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request.method)
        if len(posts) == 1:
            raise httpx.ReadTimeout("timed out")
        return httpx.Response(200, json={"sourceId": "s-second", "name": "pg"})

    def find_existing() -> dict[str, str] | None:
        lookups.append(1)
        landed = lands_after_lookups is not None and len(lookups) > lands_after_lookups
        return {"sourceId": "s-first", "name": "pg"} if landed else None

    return token_or(handler), posts, find_existing


def test_a_create_that_timed_out_is_looked_up_until_it_lands_never_sent_twice() -> None:
    handler, posts, find_existing = timing_out_then(lands_after_lookups=3)  # it lands some seconds later
    time = FakeTime()
    c = time.client(handler)
    assert c.create("sources", {"name": "pg"}, find_existing=find_existing)["sourceId"] == "s-first"
    assert posts == ["POST"]  # the early lookups missed it; it was not sent again


def test_a_create_that_timed_out_and_never_lands_is_sent_again_only_after_it_settled() -> None:
    handler, posts, find_existing = timing_out_then(lands_after_lookups=None)
    time = FakeTime()
    c = time.client(handler)
    assert c.create("sources", {"name": "pg"}, find_existing=find_existing)["sourceId"] == "s-second"
    assert posts == ["POST", "POST"] and time.now >= c.create_settle_seconds == 60.0


def test_a_connect_timeout_is_sent_again_without_waiting() -> None:
    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request.method)
        if len(posts) == 1:
            raise httpx.ConnectTimeout("no connection")  # the request never left
        return httpx.Response(200, json={"sourceId": "s1", "name": "pg"})

    time = FakeTime()
    c = time.client(token_or(handler))
    assert c.create("sources", {"name": "pg"}, find_existing=lambda: None)["sourceId"] == "s1"
    assert time.now < 1.0  # one backoff pause, no settling


def test_threads_listing_at_once_sign_in_once() -> None:
    """Observe lists sources, destinations and connections on three threads: one token for them all."""
    tokens: list[str] = []
    start = threading.Barrier(3)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/applications/token"):
            tokens.append("t")
            time.sleep(0.2)  # the others ask for the header meanwhile (a window, not a timed assertion)
            return httpx.Response(200, json={"access_token": "t1", "expires_in": 900})
        assert request.headers["Authorization"] == "Bearer t1"
        return httpx.Response(200, json={"data": []})

    airbyte = client(handler)

    def listing(resource: str) -> list[dict[str, object]]:
        start.wait()
        return airbyte.list_all(resource, workspace_id="w1")

    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(listing, ["sources", "destinations", "connections"]))
    assert answers == [[], [], []]
    assert tokens == ["t"]


def test_an_http_servers_client_loads_no_ca_bundle_and_trusts_no_certificate() -> None:
    """An http:// server never uses TLS: its client skips loading the CA bundle, and any https URL it might be
    sent to fails verification (closed); an https:// server's client trusts the CA bundle, verifying hostnames."""
    import ssl

    from reconciler.systems.airbyte.client import tls_context

    plain = tls_context("http://airbyte-server:8001/api/public/v1")
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    secure = tls_context("HTTPS://airbyte.example.com/api/public/v1")
    assert secure.verify_mode == ssl.CERT_REQUIRED and secure.check_hostname
    assert secure.cert_store_stats()["x509_ca"] > 0
