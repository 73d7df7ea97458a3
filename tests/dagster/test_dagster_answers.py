"""Dagster answers of the wrong shape become a DagsterError naming the endpoint, never an AttributeError."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.systems.workloads.dagster import DagsterClient, DagsterError


def answering(data: dict[str, Any]) -> DagsterClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": data}))
    return DagsterClient("http://dagster.test", transport=transport)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workspaceOrError": ["oops"]}, "could not load its workspace"),
        ({"workspaceOrError": {"__typename": "Workspace", "locationEntries": "oops"}}, "not a list of objects"),
        ({"workspaceOrError": {"__typename": "Workspace", "locationEntries": ["oops"]}}, "not a list of objects"),
    ],
)
def test_a_workspace_answer_of_the_wrong_shape(data: dict[str, Any], message: str) -> None:
    with pytest.raises(DagsterError, match=message):
        answering(data).location_statuses()


def test_a_reload_answer_that_is_not_an_object() -> None:
    with pytest.raises(DagsterError, match="the answer is not an object"):
        answering({"reloadRepositoryLocation": "oops"}).reload_location("ingestion")


def test_the_image_a_location_serves_is_read_from_its_display_metadata_and_odd_metadata_is_no_image() -> None:
    image = {"key": "image", "value": "ghcr.io/acme/dagster-ingestion:2026.11.20"}
    entries = [
        {"name": "a", "loadStatus": "LOADED", "displayMetadata": [{"key": "host", "value": "x"}, image]},
        {"name": "b", "loadStatus": "LOADED", "displayMetadata": "oops"},
        {"name": "c", "loadStatus": "LOADED", "displayMetadata": [None, {"key": "image", "value": ""}]},
        {"name": "d", "loadStatus": "LOADING", "locationOrLoadError": None},
    ]
    statuses = answering({"workspaceOrError": {"__typename": "Workspace", "locationEntries": entries}})
    found = {status.name: status for status in statuses.location_statuses()}
    assert [found[name].image for name in "abc"] == ["ghcr.io/acme/dagster-ingestion:2026.11.20", None, None]
    assert found["d"].loading and not found["d"].healthy
