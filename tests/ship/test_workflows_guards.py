"""The workflows against a careless or hostile run: an apply dispatched from a branch other than main, a
pull request from a fork (no secrets, a read-only token)."""

from __future__ import annotations

import re

from tests.ship.test_workflows import workflow

MAIN_ONLY = re.compile(r"github\.ref\s*==\s*'refs/heads/main'")


def test_an_apply_runs_only_from_main_even_when_dispatched_by_hand() -> None:
    """workflow_dispatch lets anyone with write access pick a branch: an unreviewed branch must not reach prod."""
    apply = workflow("apply.yml")
    assert "workflow_dispatch" in apply[True]
    for name, job in apply["jobs"].items():
        assert MAIN_ONLY.search(str(job.get("if", ""))), f"apply.yml job {name} runs from any branch"
