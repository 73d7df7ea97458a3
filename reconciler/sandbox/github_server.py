"""Local stand-in for the GitHub REST API's issue comments, under the tests of `reconcile github comment`.

Serves, on the real paths (optionally under GitHub Enterprise Server's `/api/v3` prefix):

    GET   /repos/{owner}/{repo}/issues/{number}/comments?per_page=&page=   paged, `Link` header (next/last/...)
    POST  /repos/{owner}/{repo}/issues/{number}/comments                   201, the comment
    PATCH /repos/{owner}/{repo}/issues/comments/{id}                       200, the comment

as GitHub answers them: 401 `Bad credentials` without a known token (`Bearer` or `token`), 403 `Resource
not accessible by integration` when a read-only token writes, 404 `Not Found` for an unknown repository,
pull request or comment, 422 `Validation Failed` for a missing body, one over 65,536 characters or over
262,144 UTF-8 bytes; `per_page` defaults to 30 and is capped at 100. Faults: `lose_create_answers`
(created, then no answer), `rate_limit` (the next N writes refused with a secondary rate limit: 403 and
`Retry-After`, nothing done), `delete_before_update` (the next N edits find their comment deleted first: 404).
Only what the plan comment uses; no reactions, no timeline.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from reconciler.sandbox.http_util import DropConnection, JsonHttpServer, Request, RequestStats, Response, json_response

MAX_BODY = 65_536
MAX_BODY_BYTES = 262_144
"""What github.com stores at most, measured (262,144 UTF-8 bytes; its message still says 65,536 characters)."""
DOCS = "https://docs.github.com/rest"
COMMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
COMMENT = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")
NUMBER = re.compile(r"/\d+")


@dataclass(frozen=True)
class Token:
    login: str
    write: bool = True


@dataclass
class StoredComment:
    id: int
    number: int
    body: str
    login: str
    repository: str

    def json(self, origin: str) -> dict[str, Any]:
        owner_repo = self.repository
        return {
            "id": self.id,
            "node_id": f"IC_{self.id}",
            "body": self.body,
            "user": {"login": self.login, "type": "Bot" if self.login.endswith("[bot]") else "User"},
            "html_url": f"{origin}/{owner_repo}/pull/{self.number}#issuecomment-{self.id}",
            "issue_url": f"{origin}/repos/{owner_repo}/issues/{self.number}",
            "author_association": "NONE",
        }


@dataclass
class GitHubStandIn:
    """Issue comments of seeded pull requests; `tokens` maps a token to who it is and whether it may write."""

    host: str = "127.0.0.1"
    port: int = 0
    prefix: str = ""
    """`/api/v3` for a GitHub Enterprise Server-like API URL."""
    tokens: dict[str, Token] = field(default_factory=lambda: {"ghs_standin": Token("github-actions[bot]")})
    stats: RequestStats = field(default_factory=RequestStats)
    lose_create_answers: int = 0
    """Fault: this many creates are carried out and then their connection is dropped, unanswered."""
    rate_limit: int = 0
    """Fault: this many writes are refused, undone, as GitHub's secondary rate limit does (403, `Retry-After`)."""
    rate_limit_status: int = 403
    retry_after: int = 7
    delete_before_update: int = 0
    """Fault: this many edits find their comment deleted (by a person) between the find and the edit."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1_000_001)
        self._pulls: dict[str, set[int]] = {}
        self._comments: dict[int, StoredComment] = {}
        self._server = JsonHttpServer(self._handle, self.host, self.port)

    def start(self) -> GitHubStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return self._server.origin + self.prefix

    # --- test hooks ---

    def seed_pull_request(self, repository: str, number: int) -> None:
        with self._lock:
            self._pulls.setdefault(repository, set()).add(number)

    def add_comment(self, repository: str, number: int, body: str, login: str = "someone") -> int:
        with self._lock:
            comment = StoredComment(next(self._ids), number, body, login, repository)
            self._comments[comment.id] = comment
            return comment.id

    def comments(self, repository: str, number: int) -> list[StoredComment]:
        with self._lock:
            return [c for c in self._comments.values() if (c.repository, c.number) == (repository, number)]

    # --- HTTP ---

    def _handle(self, request: Request) -> Response:
        path = request.path.removeprefix(self.prefix) if request.path.startswith(self.prefix + "/") else None
        write = request.method not in ("GET", "HEAD")
        route = NUMBER.sub("/{n}", path or request.path)
        self.stats.record(f"{request.method} {route}", write=write)
        if path is None:
            return _error(404, "Not Found")
        token = self._token(request)
        if token is None:
            return _error(401, "Bad credentials")
        if write and not token.write:
            return _error(403, "Resource not accessible by integration")
        if write and self._rate_limited():
            message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            response = _error(self.rate_limit_status, message)
            response.headers["Retry-After"] = str(self.retry_after)
            return response
        if match := COMMENTS.match(path):
            repository, number = match.group(1), int(match.group(2))
            with self._lock:
                if number not in self._pulls.get(repository, set()):
                    return _error(404, "Not Found")
            if request.method == "GET":
                return self._list(request, repository, number)
            if request.method == "POST":
                return self._create(request, repository, number, token)
        elif match := COMMENT.match(path):
            if request.method == "PATCH":
                return self._update(request, match.group(1), int(match.group(2)))
        else:
            return _error(404, "Not Found")
        return _error(404, "Not Found")

    def _rate_limited(self) -> bool:
        with self._lock:
            if self.rate_limit <= 0:
                return False
            self.rate_limit -= 1
            return True

    def _token(self, request: Request) -> Token | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self.tokens.get(value.strip())

    def _list(self, request: Request, repository: str, number: int) -> Response:
        try:
            per_page = min(100, max(1, int(request.first("per_page") or 30)))
            page = max(1, int(request.first("page") or 1))
        except ValueError:
            return _error(422, "Invalid request")
        everything = sorted(self.comments(repository, number), key=lambda c: c.id)
        origin = self._server.origin
        items = [c.json(origin) for c in everything[(page - 1) * per_page : page * per_page]]
        last = max(1, -(-len(everything) // per_page))
        base = f"{self.api_url}/repos/{repository}/issues/{number}/comments?per_page={per_page}&page="
        links = []
        if page < last:
            links += [f'<{base}{page + 1}>; rel="next"', f'<{base}{last}>; rel="last"']
        if page > 1:
            links += [f'<{base}1>; rel="first"', f'<{base}{page - 1}>; rel="prev"']
        response = json_response(200, items)
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    def _body(self, request: Request) -> str | Response:
        try:
            payload = request.json()
        except ValueError:
            return _error(400, "Problems parsing JSON")
        body = payload.get("body") if isinstance(payload, dict) else None
        if not isinstance(body, str) or not body:
            return _invalid("body", "missing_field", "body wasn't supplied.")
        if len(body) > MAX_BODY or len(body.encode("utf-8")) > MAX_BODY_BYTES:
            return _invalid("body", "custom", f"body is too long (maximum is {MAX_BODY} characters)")
        return body

    def _create(self, request: Request, repository: str, number: int, token: Token) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        comment_id = self.add_comment(repository, number, body, token.login)
        with self._lock:
            if self.lose_create_answers > 0:
                self.lose_create_answers -= 1
                raise DropConnection()
            return json_response(201, self._comments[comment_id].json(self._server.origin))

    def _update(self, request: Request, repository: str, comment_id: int) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        with self._lock:
            if self.delete_before_update > 0:
                self.delete_before_update -= 1
                self._comments.pop(comment_id, None)
            comment = self._comments.get(comment_id)
            if comment is None or comment.repository != repository:
                return _error(404, "Not Found")
            comment.body = body
            return json_response(200, comment.json(self._server.origin))


def _error(status: int, message: str) -> Response:
    return json_response(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


def _invalid(field_name: str, code: str, message: str) -> Response:
    error = {"resource": "IssueComment", "code": code, "field": field_name, "message": message}
    return json_response(422, {"message": "Validation Failed", "errors": [error], "documentation_url": DOCS})
