"""Listings ask for the next pages while one is read, and still list every object once, in order, whatever the
server's paging (a last page exactly full, a server paging by less than asked, an error past the end)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reconciler.errors import ApiError
from reconciler.sandbox.http_util import JsonHttpServer, Request, Response, json_response
from reconciler.systems.airbyte.client import AirbyteClient


def sources(count: int) -> list[dict[str, Any]]:
    return [{"sourceId": f"s{i:05}", "name": f"source-{i}", "configuration": {}} for i in range(count)]


class Server:
    """`/sources` over `objects`, pages of at most `cap` (a server may page by less than `limit`)."""

    def __init__(self, objects: list[dict[str, Any]], cap: int = 100, fail_at: int | None = None) -> None:
        self.objects, self.cap, self.fail_at = objects, cap, fail_at
        self.offsets: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        self.server = JsonHttpServer(self.handle)

    def handle(self, request: Request) -> Response:
        path = request.path.split("/api/public/v1", 1)[-1]
        if path == "/applications/token":
            return json_response(200, {"access_token": "t", "expires_in": 900})
        offset, limit = int(request.first("offset") or 0), int(request.first("limit") or 20)
        with self._lock:
            self.offsets.append(offset)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.01)  # a round trip: pages asked for ahead are in flight together
            if self.fail_at is not None and offset >= self.fail_at:
                return json_response(400, {"status": 400, "title": "bad-request", "detail": f"no offset {offset}"})
            return json_response(200, {"data": self.objects[offset : offset + min(limit, self.cap)]})
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[Server, AirbyteClient]]]:
    started: list[tuple[Server, AirbyteClient]] = []

    def start(objects: list[dict[str, Any]], **options: Any) -> tuple[Server, AirbyteClient]:
        server = Server(objects, **options)
        server.server.start()
        client = AirbyteClient(f"{server.server.origin}/api/public/v1", client_id="c", client_secret="s")
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        client.close()
        server.server.stop()


@pytest.mark.parametrize("count", [0, 1, 99, 100, 101, 250, 300, 1000])
def test_every_object_once_in_order_with_pages_asked_for_ahead(
    serve: Callable[..., tuple[Server, AirbyteClient]], count: int
) -> None:
    server, client = serve(sources(count))
    listed = [item["sourceId"] for item in client.iter_list("sources", ahead=2)]
    assert listed == [item["sourceId"] for item in sources(count)]
    full_pages = count // 100
    assert len(server.offsets) <= full_pages + 1 + 2  # the pages, the empty one, at most two asked past the end
    if count >= 300:
        assert server.most_in_flight >= 2  # the round trips overlapped


def test_a_server_paging_by_less_than_asked_is_read_one_page_after_another(
    serve: Callable[..., tuple[Server, AirbyteClient]],
) -> None:
    server, client = serve(sources(130), cap=20)
    listed = [item["sourceId"] for item in client.iter_list("sources", ahead=2)]
    assert listed == [item["sourceId"] for item in sources(130)]
    assert server.offsets == [0, 20, 40, 60, 80, 100, 120, 130]  # no page asked for where none starts


def test_an_error_past_the_end_is_never_seen_and_one_before_it_is_raised_in_order(
    serve: Callable[..., tuple[Server, AirbyteClient]],
) -> None:
    _, client = serve(sources(200), fail_at=300)  # pages at 200 (the empty one) and 300 asked; 300 fails
    assert len([*client.iter_list("sources", ahead=2)]) == 200
    _, client = serve(sources(500), fail_at=300)
    listed: list[str] = []
    with pytest.raises(ApiError, match="no offset 300"):
        for item in client.iter_list("sources", ahead=2):
            listed.append(item["sourceId"])
    assert len(listed) == 300  # every page before it, in order


def test_a_listing_left_early_leaves_no_thread_behind(serve: Callable[..., tuple[Server, AirbyteClient]]) -> None:
    _, client = serve(sources(1000))

    def page_threads() -> list[str]:
        return [thread.name for thread in threading.enumerate() if thread.name.startswith("airbyte-sources-pages")]

    pages = client.iter_list("sources", ahead=2)
    assert next(pages)["sourceId"] == "s00000"
    assert len(page_threads()) == 2
    pages.close()  # the consumer stops (a plan abandoned for a spec error)
    deadline = time.monotonic() + 5
    while page_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert page_threads() == []
