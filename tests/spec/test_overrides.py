"""Environment overrides: a secretRef is replaced whole; problems in an override name the environment file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.spec.yamlsource import deep_merge, locate, parse_yaml
from tests.helpers import copy_example

OVERRIDDEN = "        password: {secretRef: {env: QA_APP_POSTGRES_PASSWORD}}"
"""environments/qa.yaml:17, over specs/airbyte/sources.yaml:11 (`{secretRef: {env: APP_POSTGRES_PASSWORD}}`)."""


def test_a_secret_ref_override_replaces_the_reference_whole() -> None:
    base = parse_yaml("configuration:\n  host: h\n  password: {secretRef: {env: PG}}\n", "specs/s.yaml")
    override = parse_yaml("configuration:\n  password: {secretRef: {file: secrets/pg}}\n", "environments/qa.yaml")

    merged = deep_merge(base, override)

    assert merged == {"configuration": {"host": "h", "password": {"secretRef": {"file": "secrets/pg"}}}}
    assert locate(merged, ("configuration", "password")) == ("environments/qa.yaml", 2)
    assert locate(merged, ("configuration", "host")) == ("specs/s.yaml", 2)
    inline = deep_merge(override, parse_yaml("configuration: {password: {plain: mapping}}\n", "e.yaml"))
    assert inline["configuration"]["password"] == {"plain": "mapping"}


def _validate(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--root", str(root), "validate", "--env", "qa"])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_an_environment_moving_a_secret_from_env_to_file_is_valid(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    env = root / "environments/qa.yaml"
    env.write_text(env.read_text().replace(OVERRIDDEN, "        password: {secretRef: {file: secrets/qa-pg}}"))

    code, output = _validate(root)

    assert code == 0, output


def test_a_bad_secret_ref_override_is_reported_at_the_environment_file_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    env = root / "environments/qa.yaml"
    env.write_text(env.read_text().replace(OVERRIDDEN, "        password: {secretRef: {file: a, env: B}}"))

    code, output = _validate(root)

    assert code == 1
    assert "environments/qa.yaml:17: configuration.password: secretRef: a secretRef names exactly one" in output
    assert "specs/airbyte/sources.yaml" not in output
