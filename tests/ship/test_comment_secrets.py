"""A canary secret never reaches the pull-request comment or the job summary (Airbyte stand-in, GitHub stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.sandbox.github_server import GitHubStandIn
from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example


def test_a_canary_secret_and_its_rotation_never_reach_the_comment_or_the_summary(tmp_path: Path) -> None:
    canary, rotated = "CANARY-7c1e-never-print-me", "CANARY-rotated-also-secret"
    root = copy_example(tmp_path)
    with running_standins(root) as standins, GitHubStandIn() as github:
        project = Project(root, standins, standins.environment(), systems=("airbyte",))
        project.environ["QA_APP_POSTGRES_PASSWORD"] = canary
        assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0

        github.seed_pull_request("acme/platform", 7)
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "b" * 40}}}))
        summary = tmp_path / "summary.md"
        env = {
            **project.environ,
            "QA_APP_POSTGRES_PASSWORD": rotated,
            "GITHUB_TOKEN": "ghs_standin",
            "GITHUB_REPOSITORY": "acme/platform",
            "GITHUB_API_URL": github.api_url,
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        args = ["--root", str(root), "--debug", "github", "comment", "--env", "qa", "--system", "airbyte"]
        result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (posted,) = github.comments("acme/platform", 7)

    assert "configuration.password" in posted.body and "(secret changed)" in posted.body
    for text in (posted.body, summary.read_text(), result.output):
        assert canary not in text and rotated not in text
