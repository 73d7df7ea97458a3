"""The pull-request plan: plan each environment, post one comment found again by its marker, edit it after.

`reconcile github comment` (the plan workflow's one step) calls `pull_request_from` (which pull request, from
the options or the workflow's environment and event file), `plan_sections` (the service's plan of each
environment, rendered as Markdown; an environment that cannot be planned shows its error), then
`publish` (find the comment that starts with the marker, paging through all of them, and edit it; create
it the first time). The whole plan goes to the job summary; the comment is cut to fit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.clients.github import DEFAULT_API_URL, Comment, GitHubClient
from reconciler.errors import ApiError, PermanentError, ReconcilerError
from reconciler.render.markdown import render_markdown
from reconciler.render.pull_request import MARKER, Header, Section, outdated_body
from reconciler.service.reconcile import ReconcileService
from reconciler.spec.loader import environment_names

TOKEN_VARIABLE = "GITHUB_TOKEN"
NOT_FOUND = 404


class PullRequestError(PermanentError):
    """The pull request, repository or token to comment with cannot be worked out."""


@dataclass(frozen=True)
class PullRequest:
    """Where the comment goes, and what the comment says about the run."""

    repository: str
    number: int
    api_url: str = DEFAULT_API_URL
    head_sha: str | None = None
    run_url: str | None = None

    @property
    def header(self) -> Header:
        return Header(commit=self.head_sha, run_url=self.run_url)


def _event(path: str) -> dict[str, object]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PullRequestError(
            f"cannot read the event file {path} (GITHUB_EVENT_PATH): {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise PullRequestError(f"the event file {path} (GITHUB_EVENT_PATH) is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PullRequestError(f"the event file {path} (GITHUB_EVENT_PATH) holds no JSON object")
    return data


def pull_request_from(
    environ: Mapping[str, str],
    *,
    repository: str | None = None,
    number: int | None = None,
    api_url: str | None = None,
) -> PullRequest:
    """The options first, then the workflow's variables: GITHUB_REPOSITORY, GITHUB_API_URL and the pull
    request's number and head commit from the event file (GITHUB_EVENT_PATH)."""
    event: dict[str, object] = {}
    if environ.get("GITHUB_EVENT_PATH"):
        event = _event(environ["GITHUB_EVENT_PATH"])
    pull = event.get("pull_request") if isinstance(event.get("pull_request"), dict) else None
    if number is None:
        found = pull.get("number") if isinstance(pull, dict) else event.get("number")
        if not isinstance(found, int) or isinstance(found, bool):
            where = f"the event file {environ['GITHUB_EVENT_PATH']}" if event else "GITHUB_EVENT_PATH (not set)"
            raise PullRequestError(f"no pull request number in {where}: run on a pull_request event, or give --pr N")
        number = found
    repository = repository or environ.get("GITHUB_REPOSITORY")
    if not repository or repository.count("/") != 1 or not all(repository.split("/")):
        raise PullRequestError(f"no repository as OWNER/NAME (--repository or GITHUB_REPOSITORY): {repository!r}")
    head = pull.get("head") if isinstance(pull, dict) else None
    sha = head.get("sha") if isinstance(head, dict) and isinstance(head.get("sha"), str) else None
    run_url = None
    if environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run_url = f"{server}/{repository}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return PullRequest(
        repository, number, api_url or environ.get("GITHUB_API_URL") or DEFAULT_API_URL, head_sha=sha, run_url=run_url
    )


def github_token(environ: Mapping[str, str]) -> str:
    token = environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise PullRequestError(
            f"{TOKEN_VARIABLE} is not set: the comment needs a token allowed `pull-requests: write` (in a workflow: "
            f"`env: {TOKEN_VARIABLE}: ${{{{ secrets.GITHUB_TOKEN }}}}`)"
        )
    return token


def plan_sections(
    service: ReconcileService, environments: Sequence[str] = (), *, systems: Sequence[str] = ()
) -> list[Section]:
    """Each environment's plan as Markdown (every environment of the source when none is named); an environment
    that cannot be planned gets its error instead, and the others are still planned."""
    names = list(environments) or environment_names(service.source.read())
    sections = []
    for name in names:
        try:
            sections.append(Section(name, markdown=render_markdown(service.plan(name, systems=systems))))
        except ReconcilerError as error:
            sections.append(Section(name, error=str(error)))
    return sections


@dataclass(frozen=True)
class Published:
    comment: Comment
    created: bool


def find_comments(client: GitHubClient, number: int, author: str | None = None) -> list[Comment]:
    """The comments whose body starts with the marker (by `author` when given), oldest first, reading every page."""
    return [
        comment
        for comment in client.comments(number)
        if comment.body.lstrip().startswith(MARKER) and (author is None or comment.author == author)
    ]


def find_comment(client: GitHubClient, number: int, author: str | None = None) -> Comment | None:
    """The first comment whose body starts with the marker (by `author` when given), reading every page."""
    found = find_comments(client, number, author)
    return found[0] if found else None


def _retire(client: GitHubClient, stale: list[Comment], current: Comment) -> None:
    """Plan comments beyond the first (left by two runs at once) say they are outdated, and lose the marker."""
    for comment in stale:
        if comment.id != current.id:
            client.update_comment(comment.id, outdated_body(current.url))


def _edit(client: GitHubClient, comment: Comment, body: str) -> Comment:
    return comment if comment.body == body else client.update_comment(comment.id, body)


def publish(client: GitHubClient, number: int, body: str, *, author: str | None = None) -> Published:
    """Edit the plan comment in place, or create it the first time; an unchanged body is not sent again.

    A comment deleted between the find and the edit (404) is created again; marked comments after the first
    (two runs at once) are edited to say they are outdated, pointing at the current one.
    A create is never sent twice: when its answer is lost (a timeout, a dropped connection, a 5xx), the
    comments are read again and a marked one found there is the one just created.
    """
    marked = find_comments(client, number, author)
    if marked:
        try:
            published = Published(_edit(client, marked[0], body), created=False)
        except ApiError as error:
            if error.status != NOT_FOUND:
                raise
            # deleted (by a person) between the find and the edit: post it again
        else:
            _retire(client, marked[1:], published.comment)
            return published
    try:
        return Published(client.create_comment(number, body), created=True)
    except ApiError as error:
        if not error.retryable:
            raise
        landed = find_comment(client, number, author)
        if landed is None:
            raise
        return Published(_edit(client, landed, body), created=True)
