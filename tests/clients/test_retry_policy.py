"""One retry policy for every HTTP client: which answers are worth another try, and for which calls."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.clients.http import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from reconciler.systems.superset.client import SupersetError
from reconciler.systems.workloads.dagster import DagsterClient, DagsterError
from tests.superset.test_superset_client import FakeSuperset, make_client

NO_WAIT = RetryPolicy(attempts=3, sleep=lambda _s: None)


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUS))
def test_a_transient_answer_is_retried_only_for_an_idempotent_call(status: int) -> None:
    assert NO_WAIT.again(0, status, idempotent=True) and NO_WAIT.again(0, None, idempotent=True)
    assert not NO_WAIT.again(0, status, idempotent=False)  # a create is never retried blindly
    assert not NO_WAIT.again(2, status, idempotent=True)  # the third try was the last


def test_a_client_error_is_never_retried() -> None:
    assert not any(NO_WAIT.again(0, status, idempotent=True) for status in (400, 401, 403, 404, 409, 422))


def test_superset_retries_a_get_answered_500_but_not_a_write() -> None:
    fake = FakeSuperset()
    answers = iter(
        [httpx.Response(500, text="worker restarting"), httpx.Response(200, json={"count": 0, "result": []})]
    )
    fake.routes[("GET", "/api/v1/chart/")] = lambda _r: next(answers)
    posts: list[int] = []

    def fail_post(_request: httpx.Request) -> httpx.Response:
        posts.append(1)
        return httpx.Response(500, text="boom")

    fake.routes[("POST", "/api/v1/chart/")] = fail_post
    client = make_client(fake)
    assert client.list_charts() == []
    with pytest.raises(SupersetError, match="HTTP 500"):
        client.create_chart({"slice_name": "x"})
    assert len(posts) == 1


def test_dagster_retries_its_status_query_but_never_the_reload_mutation() -> None:
    answers: Iterator[httpx.Response] = iter(
        [
            httpx.Response(503, text="busy"),
            httpx.Response(
                200, json={"data": {"workspaceOrError": {"__typename": "Workspace", "locationEntries": []}}}
            ),
        ]
    )
    mutations: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if b"reloadRepositoryLocation" in request.content:
            mutations.append(1)
            return httpx.Response(503, text="busy")
        return next(answers)

    client = DagsterClient("http://dagster.test", transport=httpx.MockTransport(handler), retry=NO_WAIT)
    assert client.location_statuses() == []
    with pytest.raises(DagsterError, match="HTTP 503"):
        client.reload_location("etl")
    assert len(mutations) == 1


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412490.0) == 0.0  # already past
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("nan") is None


def test_a_pause_is_never_shorter_than_retry_after_and_retry_after_is_capped() -> None:
    pauses: list[float] = []
    policy = RetryPolicy(base_seconds=0.2, sleep=pauses.append, retry_after_cap_seconds=60.0)
    policy.pause(0, 3.0)
    policy.pause(0, 0.05)  # a shorter Retry-After than the backoff: the backoff
    policy.pause(0, 3600.0)  # a server asking for an hour: a minute
    policy.pause(1)
    assert pauses == [3.0, 0.2, 60.0, 0.4]
