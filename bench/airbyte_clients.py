"""Baseline clients for the Airbyte benchmark, each run as its own process so its whole cost is measured.

    floor      list-only: every page of sources, destinations and connections, nothing else
               (the least any plan can do)
    refresh    one GET per resource named in a reconciler state file, one at a time
    refresh10  the same, 10 at a time on threads (Terraform's default refresh parallelism)
    create10   the POSTs a reconciler apply made (a JSON file of {collection, body, answer}) sent again,
               10 at a time: sources and destinations, then connections naming the new ids

    python bench/airbyte_clients.py floor|refresh|refresh10 URL CLIENT_SECRET STATE_FILE
    python bench/airbyte_clients.py create10 URL CLIENT_SECRET POSTS_FILE

Plain httpx and json only (no reconciler import), so the baselines pay no start-up cost of ours.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

COLLECTIONS = {"source": "sources", "destination": "destinations", "connection": "connections"}
ID_FIELDS = {"sources": "sourceId", "destinations": "destinationId", "connections": "connectionId"}
PAGE = 100


def token(client: httpx.Client, secret: str) -> str:
    answer = client.post(
        "/applications/token",
        json={"client_id": "reconciler", "client_secret": secret, "grant-type": "client_credentials"},
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def floor(client: httpx.Client) -> int:
    listed = 0
    for collection in COLLECTIONS.values():
        offset = 0
        while True:
            answer = client.get(f"/{collection}", params={"limit": PAGE, "offset": offset})
            answer.raise_for_status()
            data: list[Any] = answer.json()["data"]
            if not data:
                break
            listed += len(data)
            offset += PAGE
    return listed


def targets(state_file: str) -> list[str]:
    with open(state_file, encoding="utf-8") as stream:
        resources = json.load(stream)["resources"]
    paths = []
    for key, entry in resources.items():
        kind = key.partition("/")[0].partition(".")[2]
        paths.append(f"/{COLLECTIONS[kind]}/{entry['id']}")
    return paths


def refresh(client: httpx.Client, paths: list[str]) -> int:
    for path in paths:
        client.get(path).raise_for_status()
    return len(paths)


def refresh_parallel(url: str, headers: dict[str, str], paths: list[str], workers: int) -> int:
    local = threading.local()

    def get(path: str) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, headers=headers, timeout=60)
        local.client.get(path).raise_for_status()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(get, paths))
    return len(paths)


def create_parallel(url: str, headers: dict[str, str], posts_file: str, workers: int) -> int:
    with open(posts_file, encoding="utf-8") as stream:
        posts: list[dict[str, Any]] = json.load(stream)
    local = threading.local()
    new_ids: dict[str, str] = {}

    def post(entry: dict[str, Any]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, headers=headers, timeout=60)
        collection, body = entry["collection"], dict(entry["body"])
        for field in ("sourceId", "destinationId"):
            if collection == "connections":
                body[field] = new_ids[body[field]]
        answer = local.client.post(f"/{collection}", json=body)
        answer.raise_for_status()
        id_field = ID_FIELDS[collection]
        new_ids[entry["answer"][id_field]] = answer.json()[id_field]

    actors = [entry for entry in posts if entry["collection"] != "connections"]
    connections = [entry for entry in posts if entry["collection"] == "connections"]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(post, actors))
        list(pool.map(post, connections))
    return len(posts)


def main() -> None:
    mode, url, secret, state_file = sys.argv[1:5]
    with httpx.Client(base_url=url, timeout=60) as client:
        client.headers["Authorization"] = f"Bearer {token(client, secret)}"
        if mode == "floor":
            count = floor(client)
        elif mode == "refresh":
            count = refresh(client, targets(state_file))
        elif mode == "refresh10":
            count = refresh_parallel(url, dict(client.headers), targets(state_file), 10)
        elif mode == "create10":
            count = create_parallel(url, dict(client.headers), state_file, 10)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    print(count)


if __name__ == "__main__":
    main()
