"""The workflows against a careless or hostile run: an apply dispatched from a branch other than main, a
pull request from a fork (no secrets, a read-only token)."""

from __future__ import annotations

import re

from tests.ship.test_workflows import steps, workflow

MAIN_ONLY = re.compile(r"github\.ref\s*==\s*'refs/heads/main'")
SAME_REPOSITORY = re.compile(r"github\.event\.pull_request\.head\.repo\.full_name\s*==\s*github\.repository")


def test_an_apply_runs_only_from_main_even_when_dispatched_by_hand() -> None:
    """workflow_dispatch lets anyone with write access pick a branch: an unreviewed branch must not reach prod."""
    apply = workflow("apply.yml")
    assert "workflow_dispatch" in apply[True]
    for name, job in apply["jobs"].items():
        assert MAIN_ONLY.search(str(job.get("if", ""))), f"apply.yml job {name} runs from any branch"


def test_a_pull_request_from_a_fork_validates_but_neither_plans_nor_comments() -> None:
    """A fork's run has no secrets and a read-only token: planning would fail on empty credentials and the
    comment on a 403; the run stays green with validate alone."""
    (job,) = workflow("plan.yml")["jobs"].values()
    guarded = {s.get("name") or s.get("run"): s.get("if", "") for s in steps(job)}
    assert "if" not in job or not SAME_REPOSITORY.search(str(job["if"])), "validate must still run for forks"
    assert not SAME_REPOSITORY.search(str(guarded["reconcile validate"]))
    for step in ("Kubeconfigs from secrets", 'reconcile github comment --author "github-actions[bot]"'):
        assert SAME_REPOSITORY.search(str(guarded[step])), f"{step} runs for forks"
