"""Answers of the wrong shape become an `ApiError` naming the call, never a KeyError or an endless listing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.errors import ApiError
from reconciler.systems.airbyte import client as airbyte
from tests.clients.test_airbyte_client import client, token_or


def answering(payload: Any) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, json=payload))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([{"sourceId": "s1"}], "GET /sources/s1: expected a JSON object, got a list"),
        ({"name": "pg"}, "GET /sources/s1: an object without its sourceId"),
        ("oops", "GET /sources/s1: expected a JSON object, got a string"),
    ],
)
def test_a_get_answered_with_the_wrong_shape(payload: Any, message: str) -> None:
    with pytest.raises(ApiError, match=message):
        client(token_or(lambda request: httpx.Response(200, json=payload))).get("sources", "s1")


def test_a_create_answered_without_the_new_id_says_so() -> None:
    with pytest.raises(ApiError, match="POST /sources: an object without its sourceId"):
        client(token_or(lambda request: httpx.Response(200, json={"name": "pg"}))).create(
            "sources", {"name": "pg"}, find_existing=lambda: None
        )


def test_a_token_answer_with_a_lifetime_that_is_not_a_number() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t", "expires_in": "soon"})

    with pytest.raises(ApiError, match="expires_in is a string, not a number of seconds"):
        client(handler).get("sources", "s1")


def test_a_listing_that_never_ends_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airbyte, "MAX_LISTED", 250)

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"data": [{"jobId": str(offset + i)} for i in range(100)]})

    with pytest.raises(ApiError, match="GET /jobs: more than 250 objects; refusing to list further"):
        client(token_or(handler)).list_all("jobs")


def test_a_listing_of_tiny_pages_is_capped_by_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airbyte, "MAX_PAGES", 30)
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])  # `limit` ignored: one object a page
        pages.append(offset)
        return httpx.Response(200, json={"data": [{"jobId": str(offset)}] if offset < 1000 else []})

    with pytest.raises(ApiError, match="GET /jobs: more than 30 pages; refusing to list further"):
        client(token_or(handler)).list_all("jobs")
    assert len(pages) == 30
