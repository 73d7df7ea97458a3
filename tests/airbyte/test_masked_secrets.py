"""A field Airbyte answers masked is a secret whatever its name: a value written there is refused, never printed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler.sandbox import airbyte_catalog
from tests.helpers import Project

CANARY = "Canary-Dsn-4"
DSN = f"tls://events.qa.internal:9440/events?session={CANARY}&sslmode=require"
EVENTS = f"""
  - name: events
    type: events-db
    configuration:
      database: events
      connection:
        mode: tls
        dsn: "{DSN}"
"""


@pytest.fixture
def custom_connector_masks_its_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom connector whose spec marks `connection.dsn` airbyte_secret: answers mask it."""
    known = airbyte_catalog.connector

    def connector(kind: str, connector_type: str) -> airbyte_catalog.Connector:
        found = known(kind, connector_type)
        if (kind, connector_type) == (airbyte_catalog.SOURCE, "events-db"):
            return dataclasses.replace(found, secrets=(("connection", "dsn"),), generic=False)
        return found

    monkeypatch.setattr(airbyte_catalog, "connector", connector)


def test_a_value_where_airbyte_masks_is_refused_at_its_line_in_every_format(
    project: Project, custom_connector_masks_its_dsn: None, tmp_path: Path
) -> None:
    sources = project.root / "specs/airbyte/sources.yaml"
    sources.write_text(sources.read_text() + EVENTS)
    project.edit("environments/qa.yaml", "    mailchimp: {}", "    events: {}\n    mailchimp: {}")
    line = sources.read_text().splitlines().index(f'        dsn: "{DSN}"') + 1
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    stored = next(s for s in project.qa.stored("sources") if s["name"] == "events")
    assert CANARY in stored["configuration"]["connection"]["dsn"]  # it reached Airbyte

    project.qa.stats.reset()
    expected = (
        f"specs/airbyte/sources.yaml:{line}: configuration.connection.dsn: Airbyte masks this field, so it is a secret"
    )
    for arguments in (
        ["plan", "--env", "qa"],
        ["plan", "--env", "qa", "--format", "markdown"],
        ["plan", "--env", "qa", "--format", "json", "--out", str(tmp_path / "plan.json")],
        ["apply", "--env", "qa", "--auto-approve"],
    ):
        result = project.run(*arguments)
        assert result.exit_code == 1, result.output
        assert expected in result.output and CANARY not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "plan.json").exists() and project.qa.stats.writes == 0
    assert CANARY not in project.state_text()
