"""Airbyte stand-in, error answers: the RFC 9457 problems its handlers raise and the server renders.

Under every handler module (airbyte_actors.py, airbyte_connections.py, ...) and airbyte_server.py,
which turns a raised Problem into its response. Problems follow api-problems.yaml: type, title and
detail are constants per problem kind; only `data` says what went wrong. A self-hosted 401 is not a
problem at all but Micronaut's own shape (`unauthorized`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.sandbox.http_util import Response, json_response

PROBLEM_JSON = "application/problem+json"
ERRORS_URL = "https://reference.airbyte.com/reference/errors"


class Problem(Exception):
    """An error a handler raises; `response()` renders it as application/problem+json."""

    def __init__(self, status: int, type_: str, title: str, detail: str, data: Mapping[str, Any] | None = None):
        super().__init__(f"{status} {title}: {data or detail}")
        self.status, self.type, self.title, self.detail, self.data = status, type_, title, detail, data

    def response(self) -> Response:
        body = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "documentationUrl": None,
            "data": dict(self.data) if self.data is not None else None,
        }
        return json_response(self.status, body, PROBLEM_JSON)


def bad_request(message: str) -> Problem:
    detail = "The request could not be understood by the server due to malformed syntax."
    return Problem(400, f"{ERRORS_URL}#bad-request", "bad-request", detail, {"message": message})


def unprocessable(message: str = "The body of the request was not understood") -> Problem:
    detail = "The body of the request was not understood"
    return Problem(422, f"{ERRORS_URL}#unprocessable-entity", "unprocessable-entity", detail, {"message": message})


def unknown_value(value: str) -> Problem:
    return Problem(400, ERRORS_URL, "value-not-found", "The submitted value could not be found.", {"value": value})


def not_found(resource_type: str, resource_id: str) -> Problem:
    detail = "The requested resource could not be found."
    data = {"resourceType": resource_type, "resourceId": resource_id}
    return Problem(404, f"{ERRORS_URL}#resource-not-found", "resource-not-found", detail, data)


def method_not_allowed(method: str, path: str) -> Problem:
    detail = "The requested method is not allowed for this resource."
    return Problem(405, ERRORS_URL, "method-not-allowed", detail, {"message": f"{method} {path} is not supported."})


def rate_limited() -> Problem:
    return Problem(429, ERRORS_URL, "rate-limited", "You are being rate limited.")


def unexpected(message: str = "") -> Problem:
    detail = (
        "An unexpected problem has occurred. If this is an error that needs to be addressed, "
        "please submit a pull request or github issue."
    )
    return Problem(500, ERRORS_URL, "unexpected-problem", detail, {"message": message} if message else None)


def unauthorized(path: str) -> Response:
    """Self-hosted 401s come from Micronaut security, not from the problems library."""
    body = {
        "message": "Unauthorized",
        "_links": {"self": {"href": path, "templated": False}},
        "_embedded": {"errors": [{"message": "Unauthorized"}]},
    }
    return json_response(401, body)
