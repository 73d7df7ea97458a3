"""GitHub REST client for the pull-request plan comment: list (paged by `Link`), create and edit issue comments.

Under `reconcile github comment` (service/pull_request.py finds the comment, this module only talks HTTP).
`api_url` is `GITHUB_API_URL` (`https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise
Server). Reads and edits (idempotent) are retried under the shared policy; a create is never sent twice.
A rate limit (403 or 429 with `Retry-After`, or `x-ratelimit-remaining: 0`; GitHub's secondary limits) did
nothing, so any call, a create too, waits it out and tries again, unless the wait is longer than the policy's cap.
Pages are followed only on the API's own origin, so a `Link` header cannot send the token elsewhere.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler.clients.http import TRANSIENT_ERRORS, RetryPolicy, retry_after_seconds
from reconciler.errors import ApiError

SYSTEM = "github"
DEFAULT_API_URL = "https://api.github.com"
PER_PAGE = 100
MAX_PAGES = 1_000
"""At most 100,000 comments read before giving up: a server whose `next` never ends is an error, not a hang."""
API_VERSION = "2022-11-28"
LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";]+)"?')


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str
    url: str


def next_link(header: str | None) -> str | None:
    """The `rel="next"` URL of a `Link` header (RFC 8288), or None on the last page."""
    for url, relations in LINK.findall(header or ""):
        if "next" in relations.split():
            return str(url)
    return None


def rate_limit_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds a rate-limited answer asks to wait (GitHub: 403 or 429 with `Retry-After`, or with
    `x-ratelimit-remaining: 0` until `x-ratelimit-reset`), or None when the answer is no rate limit."""
    if response.status_code not in (403, 429):
        return None
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if wait is not None:
        return wait
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers.get("x-ratelimit-reset", ""))
        except ValueError:
            return 60.0
        return max(0.0, reset - (time.time() if now is None else now))
    return 60.0 if response.status_code == 429 else None


def _comment(data: Any) -> Comment:
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        raise ApiError(SYSTEM, f"answered a comment without an id: {str(data)[:200]}")
    user = data.get("user")
    login = user.get("login") if isinstance(user, dict) else None
    return Comment(
        id=data["id"],
        body=str(data.get("body") or ""),
        author=str(login or ""),
        url=str(data.get("html_url") or ""),
    )


class GitHubClient:
    """Issue comments of one repository (`owner/name`) with a token (`Authorization: Bearer ...`)."""

    def __init__(
        self,
        repository: str,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self._origin = urlsplit(self.api_url)[:2]
        self._retry = retry or RetryPolicy()
        self._token = token
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "reconciler",
        }
        self._http = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, *, json: Any = None, idempotent: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, json=json)
            except TRANSIENT_ERRORS as error:
                if not self._retry.again(attempt, None, idempotent=idempotent):
                    raise ApiError(
                        SYSTEM, f"{method} {url} could not be reached: {type(error).__name__}", transient=True
                    ) from None
                self._retry.pause(attempt)
            except httpx.HTTPError as error:
                raise ApiError(SYSTEM, f"{method} {url} failed: {type(error).__name__}: {error}") from None
            else:
                limited = rate_limit_wait(response)
                if limited is not None:
                    self._rate_limited(method, url, attempt, limited)
                elif response.is_success or not self._retry.again(attempt, response.status_code, idempotent=idempotent):
                    return self._checked(method, url, response)
                else:
                    self._retry.pause(attempt, retry_after_seconds(response.headers.get("Retry-After")))
            attempt += 1

    def _rate_limited(self, method: str, url: str, attempt: int, seconds: float) -> None:
        """Wait out a rate limit (the refused call did nothing, so even a create is sent again), or fail when
        the wait is past the policy's cap or the tries are used up."""
        if seconds > self._retry.retry_after_cap_seconds or attempt + 1 >= self._retry.attempts:
            raise ApiError(
                SYSTEM,
                f"{method} {url} was refused by GitHub's rate limit (retry after {seconds:.0f} s); run the job again "
                "later",
                status=429,
            )
        self._retry.sleep(seconds)

    def _checked(self, method: str, url: str, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = None
        message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else self._text(response)
        details = body.get("errors") if isinstance(body, dict) else None
        if isinstance(details, list):
            message += "".join(f"; {d.get('message', d) if isinstance(d, dict) else d}" for d in details)
        hint = {
            401: " (is GITHUB_TOKEN valid?)",
            404: f" (no repository {self.repository}, no such pull request, or the token cannot see it)",
        }.get(response.status_code, "")
        if response.status_code == 403 and "not accessible" in message:  # a 403 may also be a locked conversation
            hint = " (the token needs `pull-requests: write`)"
        if self._token:  # a server that echoes the request (a proxy's debug page) never shows the token
            message = message.replace(self._token, "***")
        raise ApiError(
            SYSTEM, f"{method} {url} answered HTTP {response.status_code}: {message}{hint}", status=response.status_code
        )

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(SYSTEM, f"{response.request.url} answered non-JSON: {self._text(response, 200)!r}") from None

    def _text(self, response: httpx.Response, limit: int = 300) -> str:
        """The start of an answer's text, the token masked first (a server may echo the request's headers)."""
        text = response.text.replace(self._token, "***") if self._token else response.text
        return text[:limit]

    def comments(self, number: int) -> Iterator[Comment]:
        """Every comment of issue or pull request `number`, oldest first, page by page."""
        url: str | None = f"{self.api_url}/repos/{self.repository}/issues/{number}/comments?per_page={PER_PAGE}"
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise ApiError(SYSTEM, f"listing the comments of #{number} does not end (page {url} again)")
            seen.add(url)
            response = self._send("GET", url, idempotent=True)
            page = self._json(response)
            if not isinstance(page, list):
                raise ApiError(SYSTEM, f"GET {url} answered {type(page).__name__}, not a list of comments")
            yield from (_comment(item) for item in page)
            url = next_link(response.headers.get("Link"))
            if url is not None and urlsplit(url)[:2] != self._origin:
                raise ApiError(SYSTEM, f"the next page of comments is on another server ({url}): not followed")

    def create_comment(self, number: int, body: str) -> Comment:
        url = f"{self.api_url}/repos/{self.repository}/issues/{number}/comments"
        return _comment(self._json(self._send("POST", url, json={"body": body}, idempotent=False)))

    def update_comment(self, comment_id: int, body: str) -> Comment:
        url = f"{self.api_url}/repos/{self.repository}/issues/comments/{comment_id}"
        return _comment(self._json(self._send("PATCH", url, json={"body": body}, idempotent=True)))
