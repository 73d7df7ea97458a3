"""A saved plan runs only as printed: an edited plan file is refused before any write."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Project

Tamper = Callable[[dict[str, Any]], None]


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(item["name"]): item for item in items if not item.get("tombstone")}


def saved_plan(project: Project, tmp_path: Path) -> Path:
    """QA applied, then a plan that updates app-postgres-to-lake's schedule and deletes mailchimp-to-lake."""
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    project.edit("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}')
    project.edit("environments/qa.yaml", "    mailchimp-to-lake:\n      schedule: manual\n", "")
    plan_file = tmp_path / "plan.json"
    made = project.run("plan", "--env", "qa", "--out", str(plan_file))
    assert "~ update airbyte.connection/app-postgres-to-lake" in made.output
    assert "- delete airbyte.connection/mailchimp-to-lake" in made.output
    return plan_file


def tampered_plan(project: Project, tmp_path: Path, tamper: Tamper) -> Path:
    """The saved plan above, edited in its file by `tamper`."""
    plan_file = saved_plan(project, tmp_path)
    body = json.loads(plan_file.read_text())
    tamper(body)
    plan_file.write_text(json.dumps(body))
    return plan_file


def action(body: dict[str, Any], resource: str) -> dict[str, Any]:
    return next(item for item in body["actions"] if item["resource"] == resource)


def point_the_delete_at_another_connection(body: dict[str, Any]) -> None:
    other = body["liveIds"]["airbyte.connection/app-postgres-to-lake"]
    action(body, "airbyte.connection/mailchimp-to-lake")["id"] = other


def edit_the_desired_schedule(body: dict[str, Any]) -> None:
    fields = action(body, "airbyte.connection/app-postgres-to-lake")["desired"]["fields"]
    fields["schedule"]["cronExpression"] = "0 * * * * ?"


def add_a_delete(body: dict[str, Any]) -> None:
    body["actions"].append(
        {
            "action": "delete",
            "resource": "airbyte.source/app-postgres",
            "id": body["liveIds"]["airbyte.source/app-postgres"],
            "changes": [],
            "desired": None,
        }
    )
    body["summary"]["delete"] += 1  # the file stays consistent: only the fresh plan can tell


def drop_the_update(body: dict[str, Any]) -> None:
    body["actions"] = [item for item in body["actions"] if item["action"] != "update"]
    body["summary"]["update"] -= 1


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            point_the_delete_at_another_connection,
            "`delete airbyte.connection/mailchimp-to-lake` names live id '",  # the id, then whose it is:
        ),
        (edit_the_desired_schedule, "`update airbyte.connection/app-postgres-to-lake` differs from a fresh plan in "),
        (add_a_delete, "the saved plan has `delete airbyte.source/app-postgres`, which a fresh plan does not"),
        (drop_the_update, "a fresh plan has `update airbyte.connection/app-postgres-to-lake`, which the saved plan"),
    ],
)
def test_a_tampered_saved_plan_is_refused_and_writes_nothing(
    project: Project, tmp_path: Path, tamper: Tamper, named: str
) -> None:
    plan_file = tampered_plan(project, tmp_path, tamper)
    before = {kind: project.qa.stored(kind) for kind in ("sources", "connections")}
    writes = project.qa.stats.writes

    refused = project.run("apply", "--env", "qa", str(plan_file))
    assert refused.exit_code == 1, refused.output
    assert "Error: the saved plan is not what a plan made now would do: " in refused.output
    assert named in refused.output and "Traceback" not in refused.output
    if tamper is point_the_delete_at_another_connection:
        assert "' (airbyte.connection/app-postgres-to-lake), but" in refused.output
    assert project.qa.stats.writes == writes
    assert {kind: project.qa.stored(kind) for kind in ("sources", "connections")} == before


def rename_the_delete(body: dict[str, Any]) -> None:
    action(body, "airbyte.connection/mailchimp-to-lake")["name"] = "app-postgres-to-lake"


def rename_with_a_look_alike(body: dict[str, Any]) -> None:
    action(body, "airbyte.connection/app-postgres-to-lake")["name"] = "app-p\u043estgres-to-lake"


def hide_the_delete_in_the_summary(body: dict[str, Any]) -> None:
    body["summary"]["delete"] = 0


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            rename_the_delete,
            "the action on airbyte.connection/mailchimp-to-lake gives its name as 'app-postgres-to-lake'",
        ),
        (rename_with_a_look_alike, "the action on airbyte.connection/app-postgres-to-lake gives its name as 'app-p"),
        (hide_the_delete_in_the_summary, "its summary {"),
    ],
)
def test_a_plan_file_whose_labels_disagree_with_its_actions_is_refused(
    project: Project, tmp_path: Path, tamper: Tamper, named: str
) -> None:
    """A reader of the file sees `name` and `summary`: they must say what the actions do."""
    plan_file = tampered_plan(project, tmp_path, tamper)
    writes = project.qa.stats.writes

    refused = project.run("apply", "--env", "qa", str(plan_file))

    assert refused.exit_code == 1, refused.output
    assert "Error: not a reconciler plan file: " in refused.output and named in refused.output
    assert project.qa.stats.writes == writes


def test_the_saved_plan_as_printed_is_carried_out(project: Project, tmp_path: Path) -> None:
    plan_file = saved_plan(project, tmp_path)
    applied = project.run("apply", "--env", "qa", str(plan_file))
    assert applied.exit_code == 0, applied.output
    live = by_name(project.qa.stored("connections"))
    assert set(live) == {"app-postgres-to-lake"}
    assert live["app-postgres-to-lake"]["schedule"]["cronExpression"] == "0 0 */4 * * ?"
    assert "No changes." in project.run("plan", "--env", "qa").output
