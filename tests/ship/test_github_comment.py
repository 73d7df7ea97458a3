"""`reconcile github comment` against the local GitHub API stand-in: one comment, found again by its marker and
edited in place (through 150 other comments), cut over 60,000 characters with the whole plan in the job summary,
clear errors for a missing token, pull request or repository, and no secret in anything it writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.clients.github import GitHubClient, next_link
from reconciler.errors import ApiError
from reconciler.registry import EXTRA_VARIABLE
from reconciler.render.pull_request import COMMENT_LIMIT, MARKER
from reconciler.sandbox.github_server import GitHubStandIn, Token

REPOSITORY, PR, TOKEN = "acme/data-platform", 42, "ghs_standin"


def notes_environment(name: str, notes: dict[str, str]) -> str:
    lines = [f"environment: {name}", "notes:", f"  store: live-{name}.json", "  notes:"]
    lines += [f"    {key}: {json.dumps(text)}" for key, text in notes.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as server:
        server.seed_pull_request(REPOSITORY, PR)
        yield server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "environments").mkdir(parents=True)
    (project / "environments" / "qa.yaml").write_text(notes_environment("qa", {"welcome": "hello", "rota": "alice"}))
    (project / "environments" / "prod.yaml").write_text(notes_environment("prod", {"welcome": "hello"}))
    return project


def event_file(tmp_path: Path, number: int = PR) -> Path:
    path = tmp_path / "event.json"
    event = {"action": "synchronize", "number": number, "pull_request": {"number": number, "head": {"sha": "a" * 40}}}
    path.write_text(json.dumps(event))
    return path


def workflow_env(github: GitHubStandIn, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a pull_request workflow run gives the step (plus the test-only notes system)."""
    return {
        EXTRA_VARIABLE: "tests.fake_system",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_API_URL": github.api_url,
        "GITHUB_EVENT_PATH": str(event_file(tmp_path)),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "777",
        **extra,
    }


def comment(root: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), "github", "comment", *args], env=env)


def test_the_first_run_creates_one_comment_and_the_second_edits_it(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    env = workflow_env(github, tmp_path)
    github.add_comment(REPOSITORY, PR, "LGTM", login="alice")
    first = comment(root, env)
    assert first.exit_code == 0, first.output
    assert "Created the plan comment on acme/data-platform#42" in first.output
    (mine,) = [c for c in github.comments(REPOSITORY, PR) if c.login == "github-actions[bot]"]
    assert mine.body.startswith(MARKER)
    assert "### reconcile plan: `prod`" in mine.body and "### reconcile plan: `qa`" in mine.body
    assert mine.body.index("`prod`") < mine.body.index("`qa`")  # every environment file, by name
    assert "commit `aaaaaaaaaaaa`" in mine.body
    assert "[workflow run](https://github.example/acme/data-platform/actions/runs/777)" in mine.body
    assert "notes.note/rota" in mine.body

    (root / "environments" / "qa.yaml").write_text(notes_environment("qa", {"welcome": "bonjour"}))
    github.stats.reset()
    second = comment(root, env)
    assert second.exit_code == 0, second.output
    assert "Updated the plan comment" in second.output
    assert [c.id for c in github.comments(REPOSITORY, PR) if c.login == "github-actions[bot]"] == [mine.id]
    assert "notes.note/rota" not in github.comments(REPOSITORY, PR)[1].body
    assert github.stats.by_route.get("POST /repos/acme/data-platform/issues/{n}/comments") is None
    assert github.stats.by_route["PATCH /repos/acme/data-platform/issues/comments/{n}"] == 1
    assert github.comments(REPOSITORY, PR)[0].body == "LGTM"  # someone else's comment untouched


def test_a_create_whose_answer_is_lost_is_found_not_posted_again(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    github.lose_create_answers = 1
    result = comment(root, workflow_env(github, tmp_path))
    assert result.exit_code == 0, result.output
    assert "Created the plan comment" in result.output
    assert len(github.comments(REPOSITORY, PR)) == 1
    assert github.stats.by_route["POST /repos/acme/data-platform/issues/{n}/comments"] == 1


def test_a_busy_pull_request_is_paged_through_to_find_the_comment(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    env = workflow_env(github, tmp_path)
    assert comment(root, env).exit_code == 0
    for n in range(150):
        # after ours; one of them quotes the marker in the middle of a reply (not a plan comment)
        github.add_comment(REPOSITORY, PR, f"review {n}" + (f" quoting {MARKER}" if n == 7 else ""), login="bob")
    github.stats.reset()
    again = comment(root, env, "--env", "qa")
    assert again.exit_code == 0, again.output
    assert "Updated" in again.output
    assert len(github.comments(REPOSITORY, PR)) == 151
    assert github.stats.by_route["GET /repos/acme/data-platform/issues/{n}/comments"] >= 1


def test_the_comment_is_found_on_a_later_page(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    env = workflow_env(github, tmp_path)
    for n in range(150):
        github.add_comment(REPOSITORY, PR, f"chatter {n}", login="bob")
    assert comment(root, env).exit_code == 0
    github.stats.reset()
    again = comment(root, env)
    assert "Updated" in again.output, again.output
    assert len([c for c in github.comments(REPOSITORY, PR) if c.body.startswith(MARKER)]) == 1
    assert github.stats.by_route["GET /repos/acme/data-platform/issues/{n}/comments"] == 2  # 100 + 51 comments


def test_a_70000_character_plan_is_cut_with_a_pointer_and_the_summary_gets_it_all(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    notes = {f"note-{n:04d}": f"text {n} " + "x" * 60 for n in range(400)}
    (root / "environments" / "qa.yaml").write_text(notes_environment("qa", notes))
    env = workflow_env(github, tmp_path)
    plain = CliRunner().invoke(main, ["--root", str(root), "plan", "--env", "qa", "--format", "markdown"], env=env)
    assert len(plain.output) > 70_000

    result = comment(root, env)
    assert result.exit_code == 0, result.output
    assert "cut to" in result.output
    (posted,) = github.comments(REPOSITORY, PR)
    assert len(posted.body) <= COMMENT_LIMIT
    assert posted.body.startswith(MARKER)
    assert "the whole plan is in the [job summary](https://github.example/acme/data-platform/actions/runs/777)" in (
        posted.body.replace("The whole", "the whole")
    )
    assert "✂️ qa: cut here" in posted.body
    assert "### reconcile plan: `prod`" in posted.body  # the small environment is whole
    assert posted.body.count("<details>") == posted.body.count("</details>")
    summary = (tmp_path / "summary.md").read_text()
    last = "#### create `notes.note/note-0399`"
    assert last in summary and last not in posted.body
    assert plain.output.strip() in summary


def test_without_a_job_summary_a_cut_comment_points_at_the_plan_command(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    notes = {f"note-{n:04d}": "x" * 80 for n in range(400)}
    (root / "environments" / "qa.yaml").write_text(notes_environment("qa", notes))
    env = workflow_env(github, tmp_path)
    del env["GITHUB_STEP_SUMMARY"]
    result = comment(root, env)
    assert result.exit_code == 0, result.output
    (posted,) = github.comments(REPOSITORY, PR)
    assert "`reconcile plan --env NAME` (no job summary was written)" in posted.body
    assert "job summary](" not in posted.body


def test_the_summary_is_appended_not_overwritten(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    env = workflow_env(github, tmp_path)
    Path(env["GITHUB_STEP_SUMMARY"]).write_text("## validate\nall valid\n")
    assert comment(root, env).exit_code == 0
    text = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert text.startswith("## validate\nall valid\n") and "### reconcile plan: `qa`" in text


def test_a_missing_token_is_a_clear_error_before_anything_runs(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    env = workflow_env(github, tmp_path, GITHUB_TOKEN="")
    result = comment(root, env)
    assert result.exit_code == 1
    assert "Error: GITHUB_TOKEN is not set" in result.output
    assert "Traceback" not in result.output
    assert github.stats.total == 0
    assert not Path(env["GITHUB_STEP_SUMMARY"]).exists()


def test_a_wrong_token_says_so(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    result = comment(root, workflow_env(github, tmp_path, GITHUB_TOKEN="ghs_wrong"))
    assert result.exit_code == 1
    assert "answered HTTP 401: Bad credentials (is GITHUB_TOKEN valid?)" in result.output
    assert "ghs_wrong" not in result.output


def test_a_read_only_token_says_what_permission_is_missing(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    github.tokens["ghs_read"] = Token("github-actions[bot]", write=False)
    result = comment(root, workflow_env(github, tmp_path, GITHUB_TOKEN="ghs_read"))
    assert result.exit_code == 1
    assert "HTTP 403: Resource not accessible by integration (the token needs `pull-requests: write`)" in result.output


def test_without_a_pull_request_event_the_number_must_be_given(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    env = workflow_env(github, tmp_path)
    push = tmp_path / "push.json"
    push.write_text(json.dumps({"ref": "refs/heads/main"}))
    result = comment(root, {**env, "GITHUB_EVENT_PATH": str(push)})
    assert result.exit_code == 1
    assert f"no pull request number in the event file {push}" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = comment(root, {**env, "GITHUB_EVENT_PATH": str(broken)})
    assert result.exit_code == 1 and "is not JSON" in result.output
    given = comment(root, {**env, "GITHUB_EVENT_PATH": ""}, "--pr", str(PR), "--repository", REPOSITORY)
    assert given.exit_code == 0, given.output
    unknown = comment(root, env, "--pr", "41")
    assert unknown.exit_code == 1 and "HTTP 404" in unknown.output and "no such pull request" in unknown.output


def test_a_bad_repository_is_refused(github: GitHubStandIn, root: Path, tmp_path: Path) -> None:
    result = comment(root, workflow_env(github, tmp_path, GITHUB_REPOSITORY="just-a-name"))
    assert result.exit_code == 1 and "no repository as OWNER/NAME" in result.output


def test_an_environment_that_cannot_be_planned_is_shown_and_fails_the_step(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    (root / "environments" / "prod.yaml").write_text("environment: prod\nnotes:\n  store: x.json\n  typo: 1\n")
    result = comment(root, workflow_env(github, tmp_path))
    assert result.exit_code == 1
    assert "could not plan prod (the comment says why)" in result.output
    (posted,) = github.comments(REPOSITORY, PR)
    assert "❌ **The plan failed:**" in posted.body and "environments/prod.yaml:4" in posted.body
    assert "### reconcile plan: `qa`" in posted.body and "notes.note/rota" in posted.body


def test_github_enterprise_api_url_is_honoured(root: Path, tmp_path: Path) -> None:
    with GitHubStandIn(prefix="/api/v3") as ghes:
        ghes.seed_pull_request(REPOSITORY, PR)
        for n in range(120):
            ghes.add_comment(REPOSITORY, PR, f"c{n}")
        env = workflow_env(ghes, tmp_path)
        assert env["GITHUB_API_URL"].endswith("/api/v3")
        assert comment(root, env).exit_code == 0
        assert comment(root, env).exit_code == 0
        assert len([c for c in ghes.comments(REPOSITORY, PR) if c.body.startswith(MARKER)]) == 1


def test_author_filter_leaves_a_marked_comment_by_someone_else(
    github: GitHubStandIn, root: Path, tmp_path: Path
) -> None:
    github.add_comment(REPOSITORY, PR, f"{MARKER}\nfake plan", login="mallory")
    result = comment(root, workflow_env(github, tmp_path), "--author", "github-actions[bot]")
    assert result.exit_code == 0 and "Created" in result.output
    bodies = {c.login: c.body for c in github.comments(REPOSITORY, PR)}
    assert bodies["mallory"] == f"{MARKER}\nfake plan"


def test_a_next_link_to_another_server_is_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.github.com", "the token went elsewhere"
        return httpx.Response(200, json=[], headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'})

    client = GitHubClient(REPOSITORY, TOKEN, transport=httpx.MockTransport(handler))
    with client, pytest.raises(ApiError, match="on another server"):
        list(client.comments(PR))


def test_a_listing_that_never_ends_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers={"Link": f'<{request.url}>; rel="next"'})

    client = GitHubClient(REPOSITORY, TOKEN, transport=httpx.MockTransport(handler))
    with client, pytest.raises(ApiError, match="does not end"):
        list(client.comments(PR))


def test_link_header_parsing() -> None:
    header = '<https://a/x?page=2>; rel="next", <https://a/x?page=5>; rel="last"'
    assert next_link(header) == "https://a/x?page=2"
    assert next_link('<https://a/x?page=1>; rel="first", <https://a/x?page=1>; rel="prev"') is None
    assert next_link(None) is None
