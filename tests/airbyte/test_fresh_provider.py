"""A saved plan is applied by a provider instance that never ran `desired()` or `observe()`: providers keep nothing."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler import service
from reconciler.core.plan_codec import plan_from_json
from reconciler.systems.airbyte.provider import AirbyteProvider, connect
from tests.helpers import Project


def test_a_saved_plan_is_applied_by_a_fresh_airbyte_provider(project: Project, tmp_path: Path) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    project.edit("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}')
    plan_file = tmp_path / "plan.json"
    made = project.run("plan", "--env", "qa", "--out", str(plan_file))
    assert "~ update airbyte.connection/app-postgres-to-lake" in made.output

    saved = plan_from_json(json.loads(plan_file.read_text()))
    with service.open_session(project.root, "qa", project.environ, systems=["airbyte"]) as session:
        checked = service.check_saved_plan(session, saved)  # the saved-plan check observes with its own instance
        fresh = connect(project.root, session.env, session.resolver)
        assert isinstance(fresh, AirbyteProvider)
        session.providers["airbyte"].close()
        session.providers["airbyte"] = fresh  # the instance that applies never planned
        report = service.apply_plan(session, checked)
    assert report.ok, report.error
    assert [str(action.key) for action in report.done] == ["airbyte.connection/app-postgres-to-lake"]
    assert "No changes." in project.run("plan", "--env", "qa").output
