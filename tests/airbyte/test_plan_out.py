"""`plan --out` into a place that cannot hold the plan is an `Error:` naming the path, exit 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Project


def test_out_into_a_missing_directory_names_the_path(project: Project, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "qa.plan.json"

    result = project.run("plan", "--env", "qa", "--out", str(target))

    assert result.exit_code == 1, result.output
    assert f"Error: cannot save the plan to {target}: no directory {target.parent}" in result.output
    assert not target.parent.exists()
    assert project.qa.stats.total == 0, "nothing is observed for a plan that cannot be saved"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_out_onto_a_full_device_names_the_path(project: Project) -> None:
    result = project.run("plan", "--env", "qa", "--out", "/dev/full")

    assert result.exit_code == 1, result.output
    assert "Error: cannot save the plan to /dev/full: No space left on device" in result.output
    assert "Saved the plan" not in result.output
