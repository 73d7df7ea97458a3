"""`reconcile pull airbyte` is the live -> git verb; `import airbyte` stays as its documented alias for a release."""

from __future__ import annotations

from tests.helpers import Project


def test_pull_airbyte_and_its_import_alias_do_the_same_thing(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    # a fresh checkout that knows nothing about prod's Airbyte yet
    env_file = project.root / "environments" / "prod.yaml"
    env_file.write_text(env_file.read_text().split("  sources:")[0] + "  # resources are listed below\n")
    (project.root / ".reconciler" / "state" / "prod.json").unlink()
    (project.root / "specs" / "airbyte" / "sources.yaml").unlink()
    (project.root / "specs" / "airbyte" / "connections.yaml").unlink()

    pulled = project.run("pull", "airbyte", "--env", "prod")
    assert pulled.exit_code == 0, pulled.output
    assert (project.root / "specs" / "airbyte" / "imported-prod.yaml").exists()
    assert "# resources are listed below" in env_file.read_text()
    again = project.run("import", "airbyte", "--env", "prod")
    assert again.exit_code == 0, again.output
    assert "Nothing to import" in again.output and "already managed" in again.output  # what pull recorded


def test_every_command_help_says_which_way_data_flows(project: Project) -> None:
    commands = [
        ("validate",),
        ("schema",),
        ("plan",),
        ("apply",),
        ("diff-env",),
        ("demo",),
        ("promote",),
        ("health",),
        ("pull", "airbyte"),
        ("pull", "superset"),
        ("import", "airbyte"),
        ("verify", "superset"),
    ]
    for command in commands:
        shown = project.run(*command, "--help")
        assert shown.exit_code == 0, shown.output
        assert "->" in shown.output, command
    assert "Alias of `reconcile pull airbyte`" in project.run("import", "airbyte", "--help").output
