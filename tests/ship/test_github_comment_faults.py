"""`reconcile github comment` when GitHub answers oddly: a comment deleted between the find and the edit, a
secondary rate limit (403 or 429 with `Retry-After`), a job summary that cannot be written or would pass 1 MiB."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from reconciler.clients.github import GitHubClient
from reconciler.clients.http import RetryPolicy
from reconciler.errors import ApiError
from reconciler.render.pull_request import MARKER, SUMMARY_LIMIT, Header, Section, comment_body, summary_text
from reconciler.sandbox.github_server import GitHubStandIn
from reconciler.service.pull_request import publish
from tests.ship.test_github_comment import PR, REPOSITORY, TOKEN, comment, github, root, workflow_env

__all__ = ["github", "root"]  # fixtures


def marked(github: GitHubStandIn) -> list[str]:
    return [c.body for c in github.comments(REPOSITORY, PR) if c.body.startswith(MARKER)]


def test_a_comment_deleted_between_find_and_edit_is_created_again(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    env = workflow_env(github, tmp_path)
    assert comment(root, env).exit_code == 0
    (root / "environments" / "qa.yaml").write_text("environment: qa\nnotes:\n  store: live-qa.json\n  notes: {}\n")
    github.delete_before_update = 1  # someone deletes the plan comment while the plan runs
    again = comment(root, env)
    assert again.exit_code == 0, again.output
    assert "Created the plan comment" in again.output
    (body,) = marked(github)
    assert "notes.note/rota" not in body


def recording_policy() -> tuple[RetryPolicy, list[float]]:
    sleeps: list[float] = []
    return RetryPolicy(sleep=sleeps.append), sleeps


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_is_waited_out_and_the_comment_posted_once(github: GitHubStandIn, status: int) -> None:
    github.rate_limit, github.rate_limit_status, github.retry_after = 2, status, 7
    policy, sleeps = recording_policy()
    with GitHubClient(REPOSITORY, TOKEN, api_url=github.api_url, retry=policy) as client:
        first = publish(client, PR, f"{MARKER}\none")
        github.rate_limit = 1
        second = publish(client, PR, f"{MARKER}\ntwo")
    assert first.created and not second.created
    assert marked(github) == [f"{MARKER}\ntwo"]
    assert sleeps == [7.0, 7.0, 7.0]  # Retry-After honoured before each try again, the POST included
    assert github.stats.by_route["POST /repos/acme/data-platform/issues/{n}/comments"] == 3


def test_a_rate_limit_longer_than_the_cap_fails_clearly(github: GitHubStandIn) -> None:
    github.rate_limit, github.retry_after = 10, 3600
    policy, sleeps = recording_policy()
    client = GitHubClient(REPOSITORY, TOKEN, api_url=github.api_url, retry=policy)
    with client, pytest.raises(ApiError, match="rate limit") as raised:
        publish(client, PR, f"{MARKER}\none")
    assert "3600" in str(raised.value) and TOKEN not in str(raised.value)
    assert sleeps == [] and marked(github) == []


def test_the_job_summary_stays_under_one_mebibyte_in_bytes_not_characters() -> None:
    # 825,000 characters of CJK plan: under the 1,000,000-character cut, but 1.3 MB once written as UTF-8
    rows = "".join(f"| `資料.表/{n:05d}` | 旧値 | 新しい値です |\n" for n in range(25_000))
    sections = [Section("qa", markdown=f"### reconcile plan: `qa`\n\n{rows}")]
    assert len(rows) < SUMMARY_LIMIT < len(rows.encode("utf-8"))
    text = summary_text(sections, Header())
    assert len(text.encode("utf-8")) <= 1024 * 1024
    assert "cut: the plan is larger than a job summary holds" in text


def test_an_unwritable_job_summary_still_posts_the_comment(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    notes = "".join(f"    note-{n:04d}: {'x' * 80}\n" for n in range(400))
    (root / "environments" / "qa.yaml").write_text(f"environment: qa\nnotes:\n  store: q.json\n  notes:\n{notes}")
    env = workflow_env(github, tmp_path, GITHUB_STEP_SUMMARY=str(tmp_path / "gone" / "summary.md"))
    result = comment(root, env)
    assert result.exit_code == 0, result.output
    assert "cannot write the job summary" in result.output
    (body,) = marked(github)
    assert "`reconcile plan --env NAME` (no job summary was written)" in body
    assert "job summary](" not in body


@pytest.mark.parametrize("before", [0, 1, 99, 100, 101, 199, 200])
def test_the_comment_is_found_at_every_page_boundary(github: GitHubStandIn, before: int) -> None:
    """Our comment right after `before` others: the last on a full page, the first of a new one."""
    for n in range(before):
        github.add_comment(REPOSITORY, PR, f"chatter {n}", login="bob")
    with GitHubClient(REPOSITORY, TOKEN, api_url=github.api_url) as client:
        assert publish(client, PR, f"{MARKER}\none").created
        github.add_comment(REPOSITORY, PR, "later", login="bob")
        assert not publish(client, PR, f"{MARKER}\ntwo").created
    assert marked(github) == [f"{MARKER}\ntwo"]


def test_a_second_plan_comment_left_by_a_race_is_marked_outdated(github: GitHubStandIn) -> None:
    """Two runs at once (a cancelled run's create landing after the next run's list, or a person running the
    command beside the workflow) leave two plan comments; the later one would show a stale plan forever."""
    first = github.add_comment(REPOSITORY, PR, f"{MARKER}\nplan of run 1", login="github-actions[bot]")
    github.add_comment(REPOSITORY, PR, "looks good", login="alice")
    github.add_comment(REPOSITORY, PR, f"{MARKER}\nplan of run 2", login="github-actions[bot]")
    with GitHubClient(REPOSITORY, TOKEN, api_url=github.api_url) as client:
        published = publish(client, PR, f"{MARKER}\nplan of run 3", author="github-actions[bot]")
    assert published.comment.id == first and marked(github) == [f"{MARKER}\nplan of run 3"]
    (stale,) = [c for c in github.comments(REPOSITORY, PR) if "run 2" in c.body or "outdated" in c.body.lower()]
    assert "plan of run 2" not in stale.body and published.comment.url in stale.body


def test_a_server_that_echoes_the_request_never_puts_the_token_in_an_error() -> None:
    """A misconfigured proxy or GHES front answers with a debug page holding the request's headers."""

    def echo(request: httpx.Request) -> httpx.Response:
        headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
        return httpx.Response(400, text=f"<pre>Bad request\n{headers}</pre>")

    client = GitHubClient(REPOSITORY, "ghs_" + "s3cr3t" * 6, transport=httpx.MockTransport(echo))
    with client, pytest.raises(ApiError) as raised:
        list(client.comments(PR))
    assert "Bad request" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)


def open_fence(markdown: str) -> str | None:
    """The code fence still open at the end of `markdown`, read as CommonMark does (a closing fence uses the
    opener's character, at least as many, and nothing else on its line)."""
    opened: str | None = None
    for line in markdown.splitlines():
        match = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", line)
        if match is None:
            continue
        fence, rest = match.groups()
        if opened is None:
            opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not rest.strip():
            opened = None
    return opened


def test_a_cut_inside_a_code_block_holding_another_fence_kind_is_closed() -> None:
    """An error quoting a file with a `~~~` line sits inside the section's ``` block: counting fence lines said
    'even, balanced', the cut left the ``` block open and every environment after it rendered as code."""
    quoted = "\n".join(["~~~", *(f"  line {n}: {'t' * 50}" for n in range(3000))])
    sections = [
        Section("prod", error=f"environments/prod.yaml:3: cannot parse:\n{quoted}"),
        Section("qa", markdown="### reconcile plan: `qa`\n\n✅ **No changes.**\n"),
    ]
    body, cut = comment_body(sections, Header())
    assert cut
    prod, _ = body.split("### reconcile plan: `qa`")
    assert open_fence(prod) is None, "the qa plan would render inside prod's code block"
    assert open_fence(body) is None


def test_an_emoji_plan_is_cut_under_both_of_githubs_measures(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    """GitHub's message says 65,536 characters; what it stores is at most 262,144 UTF-8 bytes: 60,000 characters
    of 4-byte emoji are 240,000 bytes, under both."""
    notes = "".join(f"    note-{n:04d}: {'🌈' * 80}\n" for n in range(600))
    (root / "environments" / "qa.yaml").write_text(f"environment: qa\nnotes:\n  store: q.json\n  notes:\n{notes}")
    result = comment(root, workflow_env(github, tmp_path))
    assert result.exit_code == 0, result.output
    (body,) = marked(github)
    assert len(body) <= 60_000 and len(body.encode("utf-8")) <= 262_144
    assert body.count("🌈") > 10_000


def test_unicode_values_read_as_written_and_invisible_characters_stay_visible() -> None:
    """A plan (comment, summary, Slack) showed 'Région' as 'R\\u00e9gion' and an emoji as a surrogate pair; what
    could deceive a reviewer (a bidi override, a zero-width space, a line separator) must stay escaped."""
    from reconciler.render.values import short

    assert short("Ventes — Région 🌈 売上") == '"Ventes — Région 🌈 売上"'
    assert short({"title": "Café"}) == '{"title": "Café"}'
    for hidden in ("\u202e", "\u200b", "\u2028", "\ufeff", "\x07"):
        shown = short(f"admin{hidden}user")
        assert hidden not in shown and "\\u" in shown, repr(shown)


def test_a_locked_conversation_is_not_blamed_on_the_tokens_permissions() -> None:
    def locked(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=[])
        return httpx.Response(403, json={"message": "Unable to create comment because issue is locked."})

    client = GitHubClient(REPOSITORY, TOKEN, transport=httpx.MockTransport(locked))
    with client, pytest.raises(ApiError) as raised:
        publish(client, PR, f"{MARKER}\none")
    assert "issue is locked" in str(raised.value)
    assert "pull-requests: write" not in str(raised.value)
