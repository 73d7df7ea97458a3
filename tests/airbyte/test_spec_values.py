"""Spec values reach Airbyte as written: an unquoted date is sent as its text, and converges."""

from __future__ import annotations

from tests.helpers import Project


def test_an_unquoted_timestamp_is_applied_as_its_text_and_converges(project: Project) -> None:
    project.edit(
        "environments/qa.yaml",
        "        host: app-db.qa.internal",
        "        host: app-db.qa.internal\n        replication_start: 2024-01-01T00:00:00Z",
    )

    applied = project.run("apply", "--env", "qa", "--auto-approve")

    assert applied.exit_code == 0, applied.output
    source = next(item for item in project.qa.stored("sources") if item["name"] == "app-postgres")
    assert source["configuration"]["replication_start"] == "2024-01-01T00:00:00Z"
    again = project.run("plan", "--env", "qa", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output
