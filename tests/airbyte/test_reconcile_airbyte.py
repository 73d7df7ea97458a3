"""reconcile plan/apply against the Airbyte stand-in: convergence, zero writes, secrets, safety."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.systems.airbyte.client import AirbyteClient
from tests.airbyte.test_plan_prefetch import LISTINGS
from tests.helpers import Project


def by_name(items: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(item["name"]): item for item in items if not item.get("tombstone")}


def recreate_by_hand(standin: AirbyteStandIn, name: str) -> str:
    """Someone deletes connection `name` in the UI and a colleague makes it again: the new one's id."""
    with AirbyteClient(standin.url, client_id="reconciler", client_secret="sandbox-secret") as ui:
        [old] = [c for c in ui.list_all("connections", workspace_id=standin.workspace_id) if c["name"] == name]
        ui.delete("connections", old["connectionId"])
        body = {key: old[key] for key in ("name", "sourceId", "destinationId", "schedule")}
        made = ui.create("connections", body, find_existing=lambda: None)
    return str(made["connectionId"])


def test_plan_apply_plan_converges_and_a_second_apply_writes_nothing(project: Project) -> None:
    first = project.run("plan", "--env", "qa", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert "Plan for qa: 5 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in first.output
    assert project.qa.stats.writes == 0  # planning never writes

    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 5 created." in applied.output
    assert set(by_name(project.qa.stored("connections"))) == {"app-postgres-to-lake", "mailchimp-to-lake"}
    assert project.prod.stats.total == 0  # another environment is never touched

    again = project.run("plan", "--env", "qa", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output

    project.qa.stats.reset()
    second = project.run("apply", "--env", "qa", "--auto-approve")
    assert second.exit_code == 0
    assert project.qa.stats.writes == 0
    # observation is one paged listing per kind (plus workspace lookup and sign-in), never a GET per resource
    assert all(not route.startswith("GET /sources/") for route in project.qa.stats.by_route)


def test_secrets_reach_airbyte_and_appear_nowhere_else_and_rotation_is_detected(
    project: Project, tmp_path: Path
) -> None:
    canary = "CANARY-9f3b-never-print-me"
    project.environ["QA_APP_POSTGRES_PASSWORD"] = canary
    applied = project.run("--debug", "apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0
    source = by_name(project.qa.stored("sources"))["app-postgres"]
    assert source["configuration"]["password"] == canary  # type: ignore[index]

    plan_file = tmp_path / "plan.json"
    rotated = "CANARY-rotated-also-secret"
    project.environ["QA_APP_POSTGRES_PASSWORD"] = rotated
    plan = project.run("--debug", "plan", "--env", "qa", "--out", str(plan_file))
    assert "configuration.password: (secret changed)" in plan.output
    assert "Plan for qa: 0 to create, 1 to update" in plan.output
    as_json = project.run("plan", "--env", "qa", "--format", "json")
    markdown = project.run("plan", "--env", "qa", "--format", "markdown")

    outputs = [
        applied.output,
        plan.output,
        as_json.output,
        markdown.output,
        plan_file.read_text(),
        project.state_text("qa"),
    ]
    for text in outputs:
        assert canary not in text and rotated not in text

    applied = project.run("apply", "--env", "qa", str(plan_file))
    assert applied.exit_code == 0, applied.output
    assert by_name(project.qa.stored("sources"))["app-postgres"]["configuration"]["password"] == rotated  # type: ignore[index]
    assert rotated not in applied.output and rotated not in project.state_text("qa")
    assert "No changes." in project.run("plan", "--env", "qa").output


def test_broken_specs_make_no_write_and_an_apply_no_call(project: Project) -> None:
    """Spec errors are reported first; an apply calls nothing, a plan at most its read-only listings (started while
    the specs load, test_plan_prefetch.py), abandoned unreported."""
    project.edit("specs/airbyte/connections.yaml", "syncMode: incremental_append", "syncMode: nightly")
    project.edit("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "every night"}')
    for command in (["apply", "--env", "qa", "--auto-approve"], ["plan", "--env", "qa"]):
        result = project.run(*command)
        assert result.exit_code == 1
        assert "specs/airbyte/connections.yaml:13: streams.0.syncMode:" in result.output
        assert "environments/qa.yaml:27: schedule.cron:" in result.output
        assert "Traceback" not in result.output
        if command[0] == "apply":
            assert project.qa.stats.total == 0
    assert project.qa.stats.writes == 0
    assert set(project.qa.stats.by_route) <= {"POST /applications/token", "GET /workspaces", *LISTINGS}


def test_a_saved_plan_is_refused_after_the_live_state_changed(project: Project, tmp_path: Path) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    project.edit("environments/qa.yaml", '{cron: "0 0 */6 * * ?"}', '{cron: "0 0 */4 * * ?"}')
    plan_file = tmp_path / "plan.json"
    assert project.run("plan", "--env", "qa", "--out", str(plan_file)).exit_code == 0

    connection = by_name(project.qa.stored("connections"))["mailchimp-to-lake"]
    project.qa.edit("connections", str(connection["connectionId"]), {"status": "inactive"})
    writes = project.qa.stats.writes
    refused = project.run("apply", "--env", "qa", str(plan_file))
    assert refused.exit_code == 1
    assert "the live state changed since this plan was made (airbyte.connection/mailchimp-to-lake)" in refused.output
    assert project.qa.stats.writes == writes


def test_lost_state_refinds_resources_by_name_and_never_duplicates(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    (project.root / ".reconciler" / "state" / "qa.json").unlink()
    plan = project.run("plan", "--env", "qa")
    assert "to create" in plan.output and "0 to create" in plan.output
    assert "Adopting 5 existing resource(s)" in plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert len(by_name(project.qa.stored("sources"))) == 2
    assert len([s for s in project.qa.stored("sources") if not s.get("tombstone")]) == 2
    assert "No changes." in project.run("plan", "--env", "qa").output


def test_an_owned_object_deleted_by_hand_is_gone_and_a_namesake_made_since_is_never_taken_or_pruned(
    project: Project,
) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    colleagues = recreate_by_hand(project.qa, "mailchimp-to-lake")
    project.qa.stats.reset()
    refused = project.run("plan", "--env", "qa")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "Error: airbyte: airbyte.connection/mailchimp-to-lake: the connection reconciler recorded" in refused.output
    assert f"is gone, and an unowned connection has its name ({colleagues})" in refused.output
    assert project.qa.stats.writes == 0

    project.edit("environments/qa.yaml", "    mailchimp-to-lake:\n      schedule: manual\n", "")
    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert "Already gone, records will be dropped: airbyte.connection/mailchimp-to-lake" in plan.output
    assert "0 to delete" in plan.output and colleagues not in plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert by_name(project.qa.stored("connections"))["mailchimp-to-lake"]["connectionId"] == colleagues
    assert colleagues not in project.state_text()
    project.qa.stats.reset()
    assert "No changes." in project.run("apply", "--env", "qa", "--auto-approve").output
    assert project.qa.stats.writes == 0


def test_an_owned_object_deleted_by_hand_is_created_anew(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    with AirbyteClient(project.qa.url, client_id="reconciler", client_secret="sandbox-secret") as ui:
        [old] = [c for c in ui.list_all("connections") if c["name"] == "mailchimp-to-lake"]
        ui.delete("connections", old["connectionId"])
    plan = project.run("plan", "--env", "qa")
    assert "+ create airbyte.connection/mailchimp-to-lake" in plan.output
    assert "Already gone, records will be dropped: airbyte.connection/mailchimp-to-lake" in plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert "No changes." in project.run("plan", "--env", "qa").output


def test_unowned_resources_are_never_touched_and_owned_ones_are_pruned(project: Project) -> None:
    import httpx

    with httpx.Client() as http:
        token = http.post(
            f"{project.qa.url}/applications/token",
            json={"client_id": "reconciler", "client_secret": "sandbox-secret", "grant-type": "client_credentials"},
        ).json()["access_token"]
        made = http.post(
            f"{project.qa.url}/sources",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "name": "someone-elses-source",
                "workspaceId": project.qa.workspace_id,
                "configuration": {
                    "sourceType": "postgres",
                    "host": "x",
                    "port": 5432,
                    "database": "d",
                    "username": "u",
                    "password": "p",
                },
            },
        )
        assert made.status_code == 200, made.text
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0

    project.edit("environments/qa.yaml", "    mailchimp-to-lake:\n      schedule: manual\n", "")
    plan = project.run("plan", "--env", "qa")
    assert "- delete airbyte.connection/mailchimp-to-lake" in plan.output
    assert "someone-elses-source" not in plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    live = by_name(project.qa.stored("connections"))
    assert "mailchimp-to-lake" not in live and "app-postgres-to-lake" in live
    assert "someone-elses-source" in by_name(project.qa.stored("sources"))


def test_a_plan_deleting_most_owned_resources_needs_the_flag(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    path = project.root / "environments" / "qa.yaml"
    text = path.read_text()
    path.write_text(text.split("  sources:")[0])  # keep the endpoint, drop every resource
    refused = project.run("plan", "--env", "qa")
    assert refused.exit_code == 1 and "would delete 5 of the 5" in refused.output
    allowed = project.run("plan", "--env", "qa", "--allow-mass-delete")
    assert allowed.exit_code == 0 and "5 to delete" in allowed.output


def test_emptying_one_kind_needs_the_flag_however_much_else_is_owned(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0  # 9 owned, 4 connections
    connections = (
        "  connections:\n    app-postgres-to-lake: {}\n    salesforce-to-lake: {}\n"
        "    hubspot-to-lake: {}\n    mailchimp-to-lake: {}\n"
    )
    project.edit("environments/prod.yaml", connections, "  connections: {}\n")
    project.prod.stats.reset()
    refused = project.run("apply", "--env", "prod", "--auto-approve")
    assert refused.exit_code == 1
    assert "Error: the plan would delete all 4 airbyte connections reconciler owns in prod" in refused.output
    assert "--allow-mass-delete" in refused.output and "Traceback" not in refused.output
    assert project.prod.stats.writes == 0
    assert len(by_name(project.prod.stored("connections"))) == 4

    allowed = project.run("apply", "--env", "prod", "--auto-approve", "--allow-mass-delete")
    assert allowed.exit_code == 0, allowed.output
    assert not by_name(project.prod.stored("connections")) and len(by_name(project.prod.stored("sources"))) == 4


def test_a_create_whose_response_is_lost_is_not_duplicated(project: Project) -> None:
    from reconciler import service

    with service.open_session(project.root, "qa", project.environ, systems=["airbyte"]) as session:
        plan = service.make_plan(session)
        project.qa.stats.reset()
        project.qa.set_faults(lose_response=1)  # the very next request is the first create's POST
        report = service.apply_plan(session, plan)
    assert report.ok, report.error
    assert project.qa.stats.by_route.get("POST /destinations") == 1  # carried out, answer lost, found by name
    assert len([d for d in project.qa.stored("destinations") if not d.get("tombstone")]) == 1


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_random_faults_mid_apply_lose_nothing_and_reruns_converge_without_duplicates(project: Project) -> None:
    project.qa.set_faults(probability=0.35, seed=11)
    outcomes = [project.run("apply", "--env", "qa", "--auto-approve").exit_code for _ in range(6)]
    project.qa.set_faults()
    assert "No changes." in project.run("plan", "--env", "qa").output, outcomes
    for kind in ("sources", "destinations", "connections"):
        names = [item["name"] for item in project.qa.stored(kind) if not item.get("tombstone")]
        assert len(names) == len(set(names)), f"duplicate {kind}: {names}"


def test_plan_json_has_the_documented_shape(project: Project) -> None:
    body = json.loads(project.run("plan", "--env", "qa", "--format", "json").output)
    assert body["formatVersion"] == 1 and body["environment"] == "qa"
    assert body["summary"] == {"create": 5, "update": 0, "replace": 0, "delete": 0, "unchanged": 0}
    first = body["actions"][0]
    assert set(first) >= {"action", "resource", "system", "kind", "name", "id", "changes", "desired"}
    markdown = project.run("plan", "--env", "qa", "--format", "markdown").output
    assert markdown.startswith("### reconcile plan: `qa`") and "<details>" in markdown


def test_import_adopts_an_existing_platform_into_specs(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    # a fresh checkout that knows nothing about prod's Airbyte yet
    env_file = project.root / "environments" / "prod.yaml"
    text = env_file.read_text()
    env_file.write_text(text.split("  sources:")[0] + "  # resources are listed below\n")
    (project.root / ".reconciler" / "state" / "prod.json").unlink()
    (project.root / "specs" / "airbyte" / "sources.yaml").unlink()
    (project.root / "specs" / "airbyte" / "connections.yaml").unlink()
    # the destination stays defined in specs/: import selects it for prod instead of writing it again

    result = project.run("import", "airbyte", "--env", "prod")
    assert result.exit_code == 0, result.output
    imported = (project.root / "specs" / "airbyte" / "imported-prod.yaml").read_text()
    assert "secretRef" in imported and "demo-prod-postgres-password" not in imported
    assert "# resources are listed below" in env_file.read_text()
    variables = [line.strip() for line in result.output.splitlines() if line.startswith("  PROD_")]
    assert variables, result.output
    secrets = {name: f"value-of-{name}" for name in variables}
    assert "name: lake\n" not in imported and "    lake: {}" in env_file.read_text()
    plan = project.run("plan", "--env", "prod", **secrets)
    assert plan.exit_code == 0, plan.output
    assert "0 to create" in plan.output and "0 to delete" in plan.output
    assert "(secret not tracked yet)" in plan.output
    again = project.run("import", "airbyte", "--env", "prod")
    assert again.exit_code == 0, again.output
    assert "Nothing to import" in again.output and "9 already managed" in again.output


def test_importing_what_is_already_owned_is_a_no_op_that_says_so(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    before = {
        path: path.read_text() for path in [*project.root.glob("specs/airbyte/*"), *project.root.glob("environments/*")]
    }
    state = project.state_text("prod")
    for flags in (["--include-owned"], []):
        result = project.run("import", "airbyte", "--env", "prod", *flags)
        assert result.exit_code == 0, result.output
        assert "Nothing to import" in result.output
        assert (
            "9 already managed (recorded in the state), left as they are: airbyte.connection/app-postgres-to-lake"
            in (result.output)
        )
    after = {
        path: path.read_text() for path in [*project.root.glob("specs/airbyte/*"), *project.root.glob("environments/*")]
    }
    assert after == before and "-2" not in "".join(after.values())
    assert project.state_text("prod") == state
    assert "No changes." in project.run("plan", "--env", "prod").output
    project.prod.stats.reset()
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    assert project.prod.stats.writes == 0


def test_import_never_guesses_between_live_namesakes_of_a_defined_resource(project: Project) -> None:
    config = {"sourceType": "postgres", "host": "x", "port": 5432, "database": "d", "username": "u", "password": "p"}
    with AirbyteClient(project.qa.url, client_id="reconciler", client_secret="sandbox-secret") as ui:
        for _ in range(2):  # specs/ define salesforce; qa does not select it; two live objects answer to the name
            body = {"name": "salesforce", "workspaceId": project.qa.workspace_id, "configuration": config}
            ui.create("sources", body, find_existing=lambda: None)
    result = project.run("import", "airbyte", "--env", "qa")
    assert result.exit_code == 0, result.output
    assert result.output.count("2 live sources have this name; reconciler will not guess") == 2
    assert "salesforce" not in (project.root / "environments" / "qa.yaml").read_text()
    assert not (project.root / ".reconciler" / "state" / "qa.json").exists()  # nothing recorded


def test_a_state_with_two_records_of_one_live_object_converges_without_deleting_it(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    path = project.root / ".reconciler" / "state" / "prod.json"
    state = json.loads(path.read_text())  # as the old `import --include-owned` left it
    state["resources"]["airbyte.connection/app-postgres-to-lake-2"] = state["resources"][
        "airbyte.connection/app-postgres-to-lake"
    ]
    path.write_text(json.dumps(state))
    plan = project.run("plan", "--env", "prod")
    assert plan.exit_code == 0, plan.output
    assert "0 to delete" in plan.output
    assert "Already gone, records will be dropped: airbyte.connection/app-postgres-to-lake-2" in plan.output
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    assert "app-postgres-to-lake" in by_name(project.prod.stored("connections"))
    assert "app-postgres-to-lake-2" not in project.state_text("prod")
    project.prod.stats.reset()
    assert "No changes." in project.run("apply", "--env", "prod", "--auto-approve").output
    assert project.prod.stats.writes == 0


def test_import_adopts_a_namesake_in_place_of_an_owned_object_that_is_gone_when_asked(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    colleagues = recreate_by_hand(project.qa, "mailchimp-to-lake")
    refused = project.run("plan", "--env", "qa")
    assert refused.exit_code == 1 and "Adopt it with `reconcile import airbyte`" in refused.output  # a person says
    result = project.run("import", "airbyte", "--env", "qa")
    assert result.exit_code == 0, result.output
    assert (
        "Adopted 1 live resource(s) in place of recorded ones that are gone: airbyte.connection/mailchimp-to-lake"
        in (result.output)
    )
    assert "4 already managed" in result.output
    assert not (project.root / "specs" / "airbyte" / "imported-qa.yaml").exists()
    assert colleagues in project.state_text()
    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert "0 to create" in plan.output and "0 to delete" in plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert by_name(project.qa.stored("connections"))["mailchimp-to-lake"]["connectionId"] == colleagues
    assert "No changes." in project.run("plan", "--env", "qa").output


def test_one_system_is_planned_without_reaching_the_others(project: Project) -> None:
    missing = str(project.root / "no-such-kubeconfig")
    scoped = project.run("plan", "--env", "qa", KUBECONFIG_QA=missing)
    assert scoped.exit_code == 0, scoped.output

    project.systems = ()
    everything = project.run("plan", "--env", "qa", KUBECONFIG_QA=missing)
    assert everything.exit_code == 1
    assert "cannot load Kubernetes configuration" in everything.output and "no-such-kubeconfig" in everything.output
    unknown = project.run("plan", "--env", "qa", "--system", "airflow")
    assert unknown.exit_code == 1 and "unknown system airflow" in unknown.output


CUSTOM_SOURCES = """
  - name: gong
    type: gong-custom
    configuration: {region: eu}
  - name: zendesk-fork
    type: zendesk-fork
    definitionId: 0b7cbd2c-7c55-4d5a-9c8f-3e1d2f6a1b11
    configuration: {subdomain: acme}
"""


def test_custom_connectors_read_back_without_a_type_are_not_replaced(project: Project) -> None:
    """Airbyte names no type for a custom definition: no replace from that; a definitionId is compared instead."""
    with (project.root / "specs/airbyte/sources.yaml").open("a") as sources:
        sources.write(CUSTOM_SOURCES)
    project.edit("environments/qa.yaml", "    mailchimp: {}", "    gong: {}\n    zendesk-fork: {}\n    mailchimp: {}")
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    live = by_name(project.qa.stored("sources"))
    assert live["zendesk-fork"]["definitionId"] == "0b7cbd2c-7c55-4d5a-9c8f-3e1d2f6a1b11"

    again = project.run("plan", "--env", "qa", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output and "0 to replace" in again.output
    assert "sourceType 'gong-custom' is not compared" in again.output  # the plan says what it cannot tell
    project.qa.stats.reset()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert project.qa.stats.writes == 0

    project.edit(
        "specs/airbyte/sources.yaml",
        "definitionId: 0b7cbd2c-7c55-4d5a-9c8f-3e1d2f6a1b11",
        "definitionId: 7d3f0c1e-0000-4000-8000-00000000abcd",
    )
    moved = project.run("plan", "--env", "qa")
    assert "replace airbyte.source/zendesk-fork" in moved.output, moved.output
    assert "1 to replace" in moved.output  # gong, whose type cannot be read back, is not


def test_sending_streams_keeps_the_stream_settings_the_specs_leave_out(project: Project) -> None:
    """Airbyte rebuilds every sent stream: what was set in the UI and is not declared must be sent back."""
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    connection = by_name(project.qa.stored("connections"))["app-postgres-to-lake"]
    streams = {s["name"]: s for s in connection["configurations"]["streams"]}  # type: ignore[index]
    hashing = {"type": "hashing", "mapperConfiguration": {"targetField": "email", "method": "SHA-256"}}
    streams["users"] |= {
        "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["email"]}, {"fieldPath": ["updated_at"]}],
        "mappers": [{"id": "5e1f0c9a-0000-4000-8000-000000000001", **hashing}],
    }
    streams["orders"] |= {"destinationObjectName": "app_orders"}
    ui_edit = {"configurations": {"streams": list(streams.values())}}
    project.qa.edit("connections", str(connection["connectionId"]), ui_edit)
    assert "No changes." in project.run("plan", "--env", "qa").output  # undeclared: not drift

    project.edit(
        "specs/airbyte/connections.yaml",
        "      - name: payments\n        namespace: public\n        syncMode: full_refresh_overwrite",
        "      - name: payments\n        namespace: public\n        syncMode: full_refresh_append",
    )
    plan = project.run("plan", "--env", "qa")
    assert "streams.public/payments.syncMode" in plan.output, plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0

    after = by_name(project.qa.stored("connections"))["app-postgres-to-lake"]
    kept = {s["name"]: s for s in after["configurations"]["streams"]}  # type: ignore[index]
    assert kept["payments"]["syncMode"] == "full_refresh_append"
    assert kept["users"]["selectedFields"] == streams["users"]["selectedFields"]
    assert kept["users"]["mappers"] == streams["users"]["mappers"]
    assert kept["orders"]["destinationObjectName"] == "app_orders"
    assert kept["users"]["syncMode"] == "incremental_append"
    assert "No changes." in project.run("plan", "--env", "qa").output


def api(project: Project, method: str, path: str, body: dict[str, object]) -> httpx.Response:
    """A request to the QA stand-in as someone else (the UI, a script) would make it."""
    with httpx.Client(base_url=project.qa.url) as client:
        credentials = {"client_id": "reconciler", "client_secret": "sandbox-secret", "grant-type": "client_credentials"}
        token = client.post("/applications/token", json=credentials).json()["access_token"]
        return client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


LAKE_TO_GCS = ("  - name: lake\n    type: s3\n", "  - name: lake\n    type: gcs\n")


def test_a_replace_shows_the_connections_it_takes_down_and_brings_them_back_active(
    project: Project, tmp_path: Path
) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    old = by_name(project.qa.stored("connections"))
    project.edit("specs/airbyte/destinations.yaml", *LAKE_TO_GCS)

    plan_file = tmp_path / "plan.json"
    plan = project.run("plan", "--env", "qa", "--out", str(plan_file))
    assert plan.exit_code == 0, plan.output
    assert "Plan for qa: 2 to create, 0 to update, 1 to replace, 2 to delete, 2 unchanged." in plan.output
    lines = [line for line in plan.output.splitlines() if not line.startswith(" ")]
    assert lines[:6] == [
        "- delete airbyte.connection/app-postgres-to-lake  (its destination lake is replaced: deleted first, "
        "then created again against the new one)",
        "- delete airbyte.connection/mailchimp-to-lake  (its destination lake is replaced: deleted first, "
        "then created again against the new one)",
        "-/+ replace airbyte.destination/lake  (destinationType cannot change in place)",
        "+ create airbyte.connection/app-postgres-to-lake  (its destination lake is replaced: created again "
        "against the new one)",
        "+ create airbyte.connection/mailchimp-to-lake  (its destination lake is replaced: created again "
        "against the new one)",
        lines[5],
    ]

    applied = project.run("apply", "--env", "qa", str(plan_file))  # exactly what was reviewed
    assert applied.exit_code == 0, applied.output
    [lake] = [d for d in project.qa.stored("destinations") if not d.get("tombstone")]
    live = by_name(project.qa.stored("connections"))
    assert set(live) == {"app-postgres-to-lake", "mailchimp-to-lake"}
    for name, connection in live.items():
        assert connection["status"] == "active" and connection["destinationId"] == lake["destinationId"]
        assert connection["connectionId"] != old[name]["connectionId"]
    project.qa.stats.reset()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert project.qa.stats.writes == 0


def test_a_replace_that_would_kill_a_connection_reconciler_does_not_manage_is_refused(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    stored = by_name(project.qa.stored("sources"))
    lake = by_name(project.qa.stored("destinations"))["lake"]
    body = {"name": "hand-made", "sourceId": stored["mailchimp"]["sourceId"], "destinationId": lake["destinationId"]}
    made = api(project, "POST", "/connections", body)
    assert made.status_code == 200, made.text
    project.edit("specs/airbyte/destinations.yaml", *LAKE_TO_GCS)
    writes = project.qa.stats.writes

    for command in (["plan", "--env", "qa"], ["apply", "--env", "qa", "--auto-approve"]):
        refused = project.run(*command)
        assert refused.exit_code == 1, refused.output
        assert "airbyte.destination/lake would take down connection 'hand-made'" in refused.output
        assert "Traceback" not in refused.output
    assert project.qa.stats.writes == writes
    assert by_name(project.qa.stored("connections"))["hand-made"]["status"] == "active"


def test_pruning_a_source_a_colleagues_connection_uses_is_refused(project: Project) -> None:
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    mailchimp = by_name(project.qa.stored("sources"))["mailchimp"]
    lake = by_name(project.qa.stored("destinations"))["lake"]
    body = {"name": "hand-made", "sourceId": mailchimp["sourceId"], "destinationId": lake["destinationId"]}
    assert api(project, "POST", "/connections", body).status_code == 200
    project.edit("environments/qa.yaml", "    mailchimp: {}", "")
    project.edit("environments/qa.yaml", "    mailchimp-to-lake:\n      schedule: manual\n", "")
    writes = project.qa.stats.writes

    for command in (["plan", "--env", "qa"], ["apply", "--env", "qa", "--auto-approve"]):
        refused = project.run(*command)
        assert refused.exit_code == 1, refused.output
        assert "airbyte.source/mailchimp would take down connection 'hand-made'" in refused.output
    assert project.qa.stats.writes == writes
    assert by_name(project.qa.stored("connections"))["hand-made"]["status"] == "active"
