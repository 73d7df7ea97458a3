"""Image versions on the Kubernetes stand-in (official client), health-gated by a real dagster-webserver."""

from __future__ import annotations

import difflib

from reconciler.sandbox.kube_server import KubeStandIn
from tests.helpers import Project
from tests.testbeds.dagster_bed import GOOD_LOCATION, DagsterWebserver
from tests.workloads.conftest import pin_broken_location

QA = "dagster-qa"


def kube(project: Project) -> KubeStandIn:
    assert project.standins.kube is not None
    return project.standins.kube


def image(project: Project, deployment: str, namespace: str = QA) -> str:
    obj = kube(project).get_object(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}")
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def env_var(project: Project, name: str) -> str:
    obj = kube(project).get_object(f"/apis/apps/v1/namespaces/{QA}/deployments/dagster-daemon")
    env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(next(item["value"] for item in env if item["name"] == name))


def test_plan_shows_each_image_change_per_object_and_apply_converges_with_zero_patches(project: Project) -> None:
    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert (
        "~ update workloads.image/dbt@deployment/dagster-daemon/dagster-daemon/env/DBT_IMAGE" in plan.output
        and 'image: "ghcr.io/acme/dbt-project:1.9.0" -> "ghcr.io/acme/dbt-project:1.9.1"' in plan.output
    )
    assert "workloads.image/dbt@configmap/dagster-images/dbt" in plan.output
    assert "workloads.image/ingestion@deployment/dagster-user-code-ingestion/user-code" in plan.output
    assert "update workloads.image/analytics" not in plan.output  # unchanged: not in the plan
    assert "Plan for qa: 0 to create, 3 to update, 0 to replace, 0 to delete, 1 unchanged." in plan.output

    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "1 of 1 updated, 1 available" in applied.output  # rollout progress is reported
    assert f"dagster location {GOOD_LOCATION}: healthy" in applied.output
    # the bed's code servers run without DAGSTER_CURRENT_IMAGE: the gate says it cannot confirm the image
    assert f"dagster location {GOOD_LOCATION}: cannot tell which image it serves" in applied.output
    assert image(project, "dagster-user-code-ingestion") == "ghcr.io/acme/dagster-ingestion:2026.11.20"
    assert env_var(project, "DBT_IMAGE") == "ghcr.io/acme/dbt-project:1.9.1"
    assert image(project, "dagster-user-code-ingestion", "dagster-prod").endswith(":2026.11.18")  # prod untouched

    assert "No changes." in project.run("plan", "--env", "qa").output
    kube(project).stats.reset()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert kube(project).stats.writes == 0


def test_a_location_that_fails_to_load_fails_the_apply_and_is_rolled_back(
    project: Project, dagster_server: DagsterWebserver
) -> None:
    dagster_server.break_location(GOOD_LOCATION)  # the new ingestion image cannot import its code
    result = project.run("apply", "--env", "qa", "--auto-approve")
    assert result.exit_code == 1
    assert "code location ingestion failed to load" in result.output
    assert "PythonError" in result.output or "Error" in result.output
    assert "rolled back to ghcr.io/acme/dagster-ingestion:2026.11.18" in result.output
    assert image(project, "dagster-user-code-ingestion") == "ghcr.io/acme/dagster-ingestion:2026.11.18"
    # what came before the failure is applied and recorded: the dbt image moved on its own
    assert env_var(project, "DBT_IMAGE") == "ghcr.io/acme/dbt-project:1.9.1"
    assert "Traceback" not in result.output


def test_a_rollout_that_never_becomes_available_fails_with_the_reason_and_rolls_back(project: Project) -> None:
    kube(project).fail_images("*dagster-ingestion:2026.11.20", reason="ImagePullBackOff")
    result = project.run("apply", "--env", "qa", "--auto-approve")
    assert result.exit_code == 1
    assert "ProgressDeadlineExceeded" in result.output and "ImagePullBackOff" in result.output
    assert image(project, "dagster-user-code-ingestion") == "ghcr.io/acme/dagster-ingestion:2026.11.18"


def test_rollback_can_be_disabled(project: Project) -> None:
    project.edit("environments/qa.yaml", "rollbackOnFailure: true", "rollbackOnFailure: false")
    kube(project).fail_images("*dagster-ingestion:2026.11.20")
    result = project.run("apply", "--env", "qa", "--auto-approve")
    assert result.exit_code == 1 and "rollback disabled" in result.output
    assert image(project, "dagster-user-code-ingestion") == "ghcr.io/acme/dagster-ingestion:2026.11.20"


def test_health_reports_every_location_and_fails_on_a_broken_one(project: Project) -> None:
    result = project.run("health", "--env", "qa")
    assert result.exit_code == 1
    assert "ingestion" in result.output and "healthy (LOADED)" in result.output
    assert "analytics" in result.output and "FAILED" in result.output  # loadStatus says LOADED even so


def test_promote_refuses_an_unapplied_source_then_changes_exactly_the_image_lines(project: Project) -> None:
    refused = project.run("promote", "--from", "qa", "--to", "prod")
    assert refused.exit_code == 1 and "qa's live state does not match its spec" in refused.output

    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    before = (project.root / "environments" / "prod.yaml").read_text()
    promoted = project.run("promote", "--from", "qa", "--to", "prod")
    assert promoted.exit_code == 0, promoted.output
    after = (project.root / "environments" / "prod.yaml").read_text()
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        '-      tag: "1.9.0"',
        '+      tag: "1.9.1"',
        '-      tag: "2026.11.18"',
        '+      tag: "2026.11.20"',
    ]

    plan = project.run("plan", "--env", "prod")
    assert "Plan for prod: 0 to create, 3 to update" in plan.output
    again = project.run("promote", "--from", "qa", "--to", "prod")
    assert "Nothing to promote" in again.output


def test_promote_refuses_a_location_that_fails_its_health_check(project: Project) -> None:
    kube(project).rollout_seconds = 0  # qa's Deployments are available (promote checks their rollouts first)
    pin_broken_location(project)
    project.edit("environments/prod.yaml", 'tag: "2026.11.12"', 'tag: "2026.11.01"')  # prod's analytics is older
    refused = project.run("promote", "--from", "qa", "--to", "prod", "--component", "analytics")
    assert refused.exit_code == 1
    # refused as degraded (qa's plan is not empty for analytics) or by the location check itself
    assert "analytics fails" in refused.output or "code location analytics fails to load" in refused.output


def test_secrets_can_come_from_a_kubernetes_secret(project: Project) -> None:
    kube(project).seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mailchimp", "namespace": QA},
            "stringData": {"apikey": "from-a-kubernetes-secret"},
        }
    )
    project.edit(
        "specs/airbyte/sources.yaml",
        "apikey: {secretRef: {env: MAILCHIMP_API_KEY}}",
        "apikey: {secretRef: {kubernetes: {name: mailchimp, key: apikey, namespace: dagster-qa}}}",
    )
    result = project.run("apply", "--env", "qa", "--auto-approve", "--system", "airbyte")
    assert result.exit_code == 0, result.output
    stored = [s for s in project.standins.airbyte["qa"].stored("sources") if s["name"] == "mailchimp"]
    assert stored[0]["configuration"]["credentials"]["apikey"] == "from-a-kubernetes-secret"
    assert "from-a-kubernetes-secret" not in result.output
