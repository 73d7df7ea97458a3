"""A fourth system registered from a test-only package plans, applies and compares through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.registry import EXTRA_VARIABLE

PLUGIN = {EXTRA_VARIABLE: "tests.fake_system"}
DEV = """\
environment: dev
notes:
  store: live-notes.json
  notes:
    welcome: hello
    rota: alice on monday
"""


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), *args], env=PLUGIN, catch_exceptions=False)


def project(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(DEV)
    (tmp_path / "environments" / "prod.yaml").write_text(DEV.replace("dev", "prod").replace("monday", "tuesday"))
    return tmp_path


def test_a_plugin_system_is_validated_planned_applied_and_compared(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert "dev: valid (2 notes)" in run(root, "validate").output

    planned = run(root, "plan", "--env", "dev", "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    assert "notes.note/welcome" in planned.output

    applied = run(root, "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    live = json.loads((root / "live-notes.json").read_text())
    assert {name: note["text"] for name, note in live.items()} == {"welcome": "hello", "rota": "alice on monday"}

    again = run(root, "plan", "--env", "dev", "--detailed-exitcode")
    assert again.exit_code == 0, again.output

    compared = run(root, "diff-env", "dev", "prod")
    assert "rota" in compared.output and "alice on tuesday" in compared.output


def test_a_plugin_section_reports_problems_at_its_line(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "environments" / "dev.yaml").write_text(DEV.replace("hello", "' '"))
    result = run(root, "validate")
    assert result.exit_code == 1
    assert "environments/dev.yaml:5: notes.notes.welcome: a note cannot be empty" in result.output


def test_without_the_plugin_its_section_is_an_unknown_field(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = CliRunner().invoke(main, ["--root", str(root), "validate"], env={EXTRA_VARIABLE: ""})
    assert result.exit_code == 1
    assert "notes: unknown field" in result.output


def test_a_system_installed_as_a_distribution_is_found_by_its_entry_point(tmp_path: Path) -> None:
    """A `reconciler.systems` entry point of a distribution on the path registers its system (the first
    distribution of a name on the path wins, as `importlib.metadata` has it)."""
    first, second = tmp_path / "first", tmp_path / "second"
    for site, folder, module in ((first, "notes_plugin-1.0", "tests.fake_system"), (second, "Notes.Plugin-0.9", "x")):
        (site / f"{folder}.dist-info").mkdir(parents=True)
        (site / f"{folder}.dist-info" / "entry_points.txt").write_text(
            f"[console_scripts]\nnotes = y:z\n\n[reconciler.systems]\nnotes = {module}\n"
        )
    (tmp_path / "project").mkdir()
    root = project(tmp_path / "project")
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(first), str(second), str(Path(__file__).parents[2])])}
    environ.pop(EXTRA_VARIABLE, None)
    validated = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "--root", str(root), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    assert validated.returncode == 0, validated.stderr
    assert "dev: valid (2 notes)" in validated.stdout
