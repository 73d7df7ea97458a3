"""Airbyte's problem details read for their cause (`data`), and creates never retried blindly."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import structlog

from reconciler.errors import ApiError
from tests.clients.test_airbyte_client import client, token_or

ERRORS = "https://reference.airbyte.com/reference/errors"


def problem(status: int, title: str, detail: str, data: Any) -> httpx.Response:
    body = {"type": f"{ERRORS}#{title}", "title": title, "status": status, "detail": detail, "data": data}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        (
            problem(400, "bad-request", "The request could not be understood.", {"message": "sourceId is missing."}),
            "HTTP 400 bad-request: sourceId is missing.",
        ),
        (
            problem(
                422, "unprocessable-entity", "Not understood", {"message": "$.port: string found, integer expected"}
            ),
            "HTTP 422 unprocessable-entity: $.port: string found, integer expected",
        ),
        (
            problem(
                400, "invalid-cron", "Invalid cron.", {"cronExpression": "0 0", "validationErrorMessage": "6 parts"}
            ),
            "HTTP 400 invalid-cron: 6 parts (cronExpression=0 0)",
        ),
        (
            problem(404, "resource-not-found", "Not found.", {"resourceType": "source", "resourceId": "s9"}),
            "HTTP 404 resource-not-found: Not found. (resourceType=source, resourceId=s9)",
        ),
        (
            problem(400, "mapper-errors", "Bad mappers.", {"errors": [{"stream": "users", "error": "no field x"}]}),
            "HTTP 400 mapper-errors: users: no field x",
        ),
        (
            problem(400, "bad-request", "The request could not be understood.", "oops"),
            "HTTP 400 bad-request: oops",
        ),
        (
            httpx.Response(
                400,
                json={
                    "message": "Bad Request",
                    "_embedded": {"errors": [{"message": "Failed to convert argument", "path": "/body/schedule"}]},
                },
            ),
            "HTTP 400 Bad Request: /body/schedule: Failed to convert argument",
        ),
    ],
)
def test_the_cause_of_a_refusal_is_shown_not_only_its_constant_title(answer: httpx.Response, shown: str) -> None:
    with pytest.raises(ApiError) as info:
        client(token_or(lambda request: answer)).patch("connections", "c1", {"name": "x"})
    assert str(info.value) == f"airbyte: PATCH /connections/c1: {shown}"


def test_a_create_answered_500_is_looked_up_by_name_and_not_posted_again() -> None:
    posts: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(json.loads(request.content))
        return problem(500, "unexpected-problem", "An unexpected problem has occurred.", {"message": "invalid stream"})

    lookups: list[str] = []

    def find_existing() -> dict[str, Any] | None:
        lookups.append("looked up")
        return None

    with pytest.raises(ApiError) as info:
        client(token_or(handler)).create("connections", {"name": "c"}, find_existing=find_existing)
    assert len(posts) == 1 and lookups == ["looked up"]
    assert info.value.status == 500 and "invalid stream" in str(info.value) and "gave up" not in str(info.value)

    stored = {"connectionId": "c-1", "name": "c"}
    found = client(token_or(handler)).create("connections", {"name": "c"}, find_existing=lambda: stored)
    assert found == stored and len(posts) == 2


def test_a_cause_quoting_a_url_with_credentials_is_redacted_in_retry_logs_and_errors() -> None:
    cause = {"message": "cannot reach jdbc:postgresql://reader:Canary-Db-1@db:5432/app"}
    answers = iter([problem(503, "unexpected-problem", "Unexpected.", cause)] * 4)

    with structlog.testing.capture_logs() as logs, pytest.raises(ApiError) as info:
        client(token_or(lambda request: next(answers))).get("sources", "s1")
    assert logs and all("Canary-Db-1" not in str(entry) for entry in logs)
    assert "postgresql://reader:***@db:5432/app" in str(info.value) and "Canary-Db-1" not in str(info.value)
