"""The state file and the fingerprint key are checked before anything is observed or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ReconcilerError, SecretError
from reconciler.secrets import load_fingerprint_key
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


@pytest.mark.parametrize("content", ["", "  \n", "0123456789abcdef"])
def test_an_empty_or_short_fingerprint_key_file_is_refused(project: Project, content: str) -> None:
    key_file = project.root / ".reconciler" / "keys" / "qa.fingerprint.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text(content)
    for command in (["apply", "--env", "qa", "--auto-approve"], ["plan", "--env", "qa"]):
        refused = project.run(*command)
        assert refused.exit_code == 1
        assert f"Error: the fingerprint key {key_file}" in refused.output
        assert "restore it" in refused.output and "Traceback" not in refused.output
        if command[0] == "apply":
            assert project.qa.stats.total == 0
    assert project.qa.stats.writes == 0  # a plan may have started its listings while the specs loaded
    assert key_file.read_text() == content  # never replaced behind the user's back


def test_the_key_file_is_created_once_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "qa.fingerprint.key"
    first = load_fingerprint_key({}, key_file)
    assert len(first) == 64 and load_fingerprint_key({}, key_file) == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    from_environment = {"RECONCILER_FINGERPRINT_KEY": "from-the-environment"}
    assert load_fingerprint_key(from_environment, key_file) == b"from-the-environment"
    with pytest.raises(SecretError, match="holds only whitespace"):
        load_fingerprint_key({"RECONCILER_FINGERPRINT_KEY": "   "}, key_file)


def test_an_empty_fingerprint_key_variable_is_refused_not_replaced_by_a_new_key_file(tmp_path: Path) -> None:
    """A CI secret that is missing reads as an empty variable: a fresh key there makes every secret look rotated."""
    key_file = tmp_path / "keys" / "qa.fingerprint.key"
    with pytest.raises(SecretError, match="RECONCILER_FINGERPRINT_KEY is set but is empty"):
        load_fingerprint_key({"RECONCILER_FINGERPRINT_KEY": ""}, key_file)
    assert not key_file.exists()


def test_state_records_name_their_environment(tmp_path: Path) -> None:
    text = encode_records("prod", {})
    assert decode_records(text, "s.json", "prod") == {}
    with pytest.raises(ReconcilerError, match=r"s\.json belongs to environment 'prod', not 'qa'"):
        decode_records(text, "s.json", "qa")
    path = tmp_path / "qa.json"
    path.write_text(text.replace('"prod"', '"qa"'))
    assert FileStateStore(path, "qa").load() == {}


def test_import_refuses_another_environments_state_before_writing_any_file(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    project.edit("environments/qa.yaml", "description:", "state: {path: .reconciler/state/prod.json}\ndescription:")
    env_file = (project.root / "environments" / "qa.yaml").read_text()
    refused = project.run("import", "airbyte", "--env", "qa")
    assert refused.exit_code == 1, refused.output
    assert "prod.json belongs to environment 'prod', not 'qa'" in refused.output
    assert not (project.root / "specs" / "airbyte" / "imported-qa.yaml").exists()
    assert (project.root / "environments" / "qa.yaml").read_text() == env_file
