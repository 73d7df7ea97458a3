"""The state file and the fingerprint key are checked before anything is observed or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ReconcilerError
from reconciler.state import FileStateStore, decode_records, encode_records
from tests.helpers import Project


def test_another_environments_state_file_is_refused(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    project.edit("environments/qa.yaml", "description:", "state: {path: .reconciler/state/prod.json}\ndescription:")
    for command in (["plan", "--env", "qa"], ["apply", "--env", "qa", "--auto-approve"]):
        refused = project.run(*command)
        assert refused.exit_code == 1
        assert "Error: state " in refused.output
        assert "prod.json belongs to environment 'prod', not 'qa'" in refused.output
        assert "Traceback" not in refused.output
    assert project.qa.stats.writes == 0


def test_a_state_path_that_is_a_directory_is_an_error_not_a_traceback(project: Project) -> None:
    (project.root / ".reconciler" / "state" / "qa.json").mkdir(parents=True)
    refused = project.run("apply", "--env", "qa", "--auto-approve")
    assert refused.exit_code == 1
    assert "Error: cannot read state" in refused.output and "qa.json: Is a directory" in refused.output
    assert "Traceback" not in refused.output
    assert project.qa.stats.writes == 0


def test_state_records_name_their_environment(tmp_path: Path) -> None:
    text = encode_records("prod", {})
    assert decode_records(text, "s.json", "prod") == {}
    with pytest.raises(ReconcilerError, match=r"s\.json belongs to environment 'prod', not 'qa'"):
        decode_records(text, "s.json", "qa")
    path = tmp_path / "qa.json"
    path.write_text(text.replace('"prod"', '"qa"'))
    assert FileStateStore(path, "qa").load() == {}
