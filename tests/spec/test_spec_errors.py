"""Broken spec files are each rejected with file, line and field, exit 1, and no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from tests.helpers import REPO, copy_example

CASES: dict[str, tuple[str, str, str, list[str]]] = {
    # name: (file, text to find, replacement, expected fragments of the error line)
    "malformed yaml": (
        "specs/airbyte/connections.yaml",
        '    destination: lake\n    schedule: {cron: "0 0 2 * * ?"}',
        '    destination: lake\n    schedule: {cron: "0 0 2 * * ?"',
        ["specs/airbyte/connections.yaml:", "invalid YAML"],
    ),
    "unknown key": (
        "specs/airbyte/connections.yaml",
        "    namespaceFormat: app\n",
        "    namespaceFormat: app\n    namespaceFromat: typo\n",
        ["specs/airbyte/connections.yaml:9: namespaceFromat: unknown field"],
    ),
    "bad cron": (
        "specs/airbyte/connections.yaml",
        '{cron: "0 0 2 * * ?"}',
        '{cron: "0 2 * * *"}',
        ["specs/airbyte/connections.yaml:6: schedule.cron:", "5 fields"],
    ),
    "bad enum": (
        "specs/airbyte/connections.yaml",
        "syncMode: full_refresh_overwrite\n\n",
        "syncMode: full_refresh_sometimes\n\n",
        ["specs/airbyte/connections.yaml:21: streams.2.syncMode:", "full_refresh_overwrite"],
    ),
    "duplicate name": (
        "specs/airbyte/sources.yaml",
        "  - name: salesforce\n",
        "  - name: app-postgres\n",
        ["specs/airbyte/sources.yaml:16: name: duplicate source name 'app-postgres'"],
    ),
    "dangling reference in environment": (
        "environments/qa.yaml",
        "    mailchimp: {}          # singleton",
        "    # mailchimp removed",
        ["specs/airbyte/connections.yaml:50: source: source 'mailchimp' is not part of this environment"],
    ),
    "reference to an undefined source": (
        "specs/airbyte/connections.yaml",
        "    source: hubspot\n",
        "    source: hubspott\n",
        ["specs/airbyte/connections.yaml:38: source: source 'hubspott' is not defined"],
    ),
    "inline secret": (
        "environments/qa.yaml",
        "        password: {secretRef: {env: QA_APP_POSTGRES_PASSWORD}}",
        "        password: hunter2-inline",
        ["environments/qa.yaml:17: configuration.password: looks like an inline secret"],
    ),
    "unknown resource in environment": (
        "environments/prod.yaml",
        "    lake: {}",
        "    lake: {}\n    warehouse: {}",
        ["environments/prod.yaml:20: destinations.warehouse: no destination named 'warehouse'"],
    ),
    "connector without type or definitionId": (
        "specs/airbyte/sources.yaml",
        "  - name: app-postgres\n    type: postgres\n",
        "  - name: app-postgres\n",
        ["specs/airbyte/sources.yaml:4: type: give `type` (e.g. postgres) or `definitionId`"],
    ),
    "YAML type with no JSON form": (
        "specs/airbyte/sources.yaml",
        "      schemas: [public]",
        "      schemas: !!set {public}",
        ["specs/airbyte/sources.yaml:12: !!set has no JSON form"],
    ),
    "wrong type": (
        "environments/prod.yaml",
        "  prune: true",
        "  prune: sometimes",
        ["environments/prod.yaml:12: airbyte.prune:", "boolean"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_spec_is_rejected_with_file_line_and_field(case: str, tmp_path: Path) -> None:
    file, old, new, expected = CASES[case]
    root = copy_example(tmp_path)
    text = (root / file).read_text()
    assert old in text, f"test case {case!r} no longer matches {file}"
    (root / file).write_text(text.replace(old, new, 1))

    result = CliRunner().invoke(main, ["--root", str(root), "validate"])

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    connections = root / "specs/airbyte/connections.yaml"
    text = connections.read_text().replace('{cron: "0 0 2 * * ?"}', '{cron: "bad"}')
    connections.write_text(text.replace("    source: hubspot\n", "    source: nowhere\n"))
    result = CliRunner().invoke(main, ["--root", str(root), "validate"])
    assert result.exit_code == 1
    assert "schedule.cron" in result.output and "'nowhere'" in result.output


def test_the_worked_example_is_valid() -> None:
    result = CliRunner().invoke(main, ["--root", str(REPO), "validate"])
    assert result.exit_code == 0, result.output
    assert "qa: valid (2 sources, 1 destinations, 2 connections; 3 pinned images; " in result.output
    assert "prod: valid (4 sources, 1 destinations, 4 connections; 3 pinned images; 3 spec dashboards, 2 roles)" in (
        result.output
    )
    assert "0 spec dashboards, replicated from prod, 2 roles)" in result.output


def test_unset_variable_without_default_names_the_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    env = root / "environments/qa.yaml"
    env.write_text(env.read_text().replace("${AIRBYTE_QA_URL:-http://127.0.0.1:18002/api/public/v1}", "${NOPE_URL}"))
    result = CliRunner().invoke(main, ["--root", str(root), "validate", "--env", "qa"])
    assert result.exit_code == 1
    assert "environments/qa.yaml:7: airbyte.url: environment variable NOPE_URL is not set" in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    shutil.rmtree(root / "environments")
    result = CliRunner().invoke(main, ["--root", str(root), "--debug", "validate"])
    assert result.exit_code == 1
    assert result.exception is not None


def _append(path: Path, text: str) -> int:
    """Append `text` to a spec file; the line number of its first line."""
    before = path.read_text()
    path.write_text(before + text)
    return before.count("\n") + 1


def test_specs_no_environment_selects_are_validated_too(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    source = _append(
        root / "specs/airbyte/sources.yaml",
        "  - name: orphan-db\n    type: postgres\n    configuration:\n      password: committed-to-git\n",
    )
    connection = _append(
        root / "specs/airbyte/connections.yaml",
        '  - name: orphan-sync\n    source: nowhere\n    destination: lake\n    schedule: {cron: "0 2 * * *"}\n'
        "    namespaceFromat: typo\n",
    )

    for args in (["validate"], ["validate", "--env", "qa"], ["plan", "--env", "qa"]):
        result = CliRunner().invoke(main, ["--root", str(root), *args])

        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "committed-to-git" not in result.output
        for expected in (
            f"specs/airbyte/sources.yaml:{source + 3}: configuration.password: looks like an inline secret",
            f"specs/airbyte/connections.yaml:{connection + 1}: source: source 'nowhere' is not defined in specs/",
            f"specs/airbyte/connections.yaml:{connection + 3}: schedule.cron:",
            f"specs/airbyte/connections.yaml:{connection + 4}: namespaceFromat: unknown field",
        ):
            assert expected in result.output, f"{expected!r} not in:\n{result.output}"


def test_superset_specs_are_validated_when_no_environment_uses_superset(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    for env in ("qa", "prod"):
        path = root / f"environments/{env}.yaml"
        path.write_text(path.read_text().split("\nsuperset:\n")[0] + "\n")
    roles = root / "specs/superset/roles.yaml"
    roles.write_text(roles.read_text().replace("  - name: analyst\n", "  - name: analyst\n    colour: red\n", 1))

    result = CliRunner().invoke(main, ["--root", str(root), "validate"])

    assert result.exit_code == 1, result.output
    assert "specs/superset/roles.yaml:6: roles.0.colour: unknown field" in result.output
