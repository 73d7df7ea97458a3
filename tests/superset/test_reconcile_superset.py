"""reconcile pull / plan / apply / verify against real Superset servers: the session's prod and two fresh QAs.

The loop the issue asks for: pull prod's dashboards into files, plan a fresh QA (everything to
create), apply, plan again (nothing), apply again (zero writes); an edit made in QA's UI and a
role's permissions show up as changes; replication rewrites the database (QA's charts read QA's
rows); a column dropped from QA's warehouse makes verification name the chart.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from reconciler import service
from reconciler.core.plan_codec import plan_from_json
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.systems.superset import provider as superset_provider
from reconciler.systems.superset.client import SupersetClient
from reconciler.systems.superset.provider import SupersetProvider
from tests.superset.conftest import FreshQas, SupersetPair, client_for
from tests.superset.project import STAGING, SUPERSET, SupersetProject, superset_project
from tests.testbeds.superset_bed import QA_ONLY_REGION, create_warehouse
from tests.testbeds.superset_fixtures import FixtureIds, QaBaseline, build_qa_baseline

SLUGS = ("customer-health", "executive-summary", "sales-overview")
PULL = ("pull", "superset", "--env", "prod", *(arg for slug in SLUGS for arg in ("--dashboard", slug)))


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    superset_pair: SupersetPair,
    fresh_qas: FreshQas,
    prod_fixtures: FixtureIds,
) -> SupersetProject:
    """The example project with prod's dashboards freshly pulled into its specs."""
    root = tmp_path_factory.mktemp("superset-project")
    made = superset_project(root, superset_pair.prod, fresh_qas.specs, fresh_qas.replica)
    pulled = made.run(*PULL)
    assert pulled.exit_code == 0, pulled.output
    return made


@pytest.fixture(scope="module")
def staging_client(fresh_qas: FreshQas) -> Iterator[SupersetClient]:
    with client_for(fresh_qas.specs) as client:
        yield client


@pytest.fixture(scope="module")
def replica_client(fresh_qas: FreshQas) -> Iterator[SupersetClient]:
    with client_for(fresh_qas.replica) as client:
        yield client


@pytest.fixture
def staging_applied(project: SupersetProject) -> SupersetProject:
    """Staging matches the specs (the first flow test applies it; later tests do not rely on that)."""
    applied = project.apply("staging")
    assert applied.exit_code == 0, applied.output
    assert "No changes." in project.plan("staging").output
    return project


# ---- pull, and the spec-driven loop on a fresh QA ("staging") -------------------------------------


def test_pull_writes_reviewable_files_and_pulling_again_changes_no_byte(project: SupersetProject) -> None:
    files = project.spec_files()
    assets = sorted(path for path in files if path != "roles.yaml")
    assert "dashboards/sales-overview/dashboard.yaml" in assets
    assert "datasets/warehouse/sales.yaml" in assets and "databases/warehouse.yaml" in assets
    assert sum(1 for path in assets if "/charts/" in path) == 6
    assert not any(re.search(r"\d{8}T\d{6}", path) for path in assets)  # no export timestamps in names
    assert b"sqlalchemy_uri" not in files["databases/warehouse.yaml"]  # the connection lives per environment
    spec_dir = project.root / "specs" / "superset"
    mtimes = {path: path.stat().st_mtime_ns for path in spec_dir.rglob("*.yaml")}
    prod_env = (project.root / "environments" / "prod.yaml").read_bytes()

    again = project.run(*PULL)
    assert again.exit_code == 0, again.output
    assert "no file changed" in again.output
    assert project.spec_files() == files
    assert {path: path.stat().st_mtime_ns for path in mtimes} == mtimes
    assert (project.root / "environments" / "prod.yaml").read_bytes() == prod_env


ANALYTICS = """\
# Prod's Superset as a second team sees it: nothing selected yet.
environment: analytics
superset:
  url: ${SUPERSET_PROD_URL}
  auth: {username: admin, password: {secretRef: {env: SUPERSET_PROD_PASSWORD}}}   # keep me
  dashboards: []
"""


def test_pull_declares_the_connections_and_selects_the_dashboards_in_the_environment_file(
    project: SupersetProject, superset_pair: SupersetPair
) -> None:
    env_file = project.root / "environments" / "analytics.yaml"
    env_file.write_text(ANALYTICS)
    try:
        pulled = project.run("pull", "superset", "--env", "analytics", "--dashboard", "sales-overview")
        assert pulled.exit_code == 0, pulled.output
        assert "no file changed" in pulled.output  # the same dashboard is in the specs already
        assert "Updated environments/analytics.yaml" in pulled.output
        text = env_file.read_text()
        assert "# keep me" in text and "# Prod's Superset as a second team sees it" in text
        assert "  - sales-overview" in text or "[sales-overview]" in text
        assert f"sqlalchemyUri: {superset_pair.prod.warehouse_uri}" in text
        assert "No changes." in project.plan("analytics").output  # prod's own dashboard, adopted as it is
    finally:
        env_file.unlink()


def test_a_fresh_qa_plans_every_create_then_converges_and_a_second_apply_writes_nothing(
    project: SupersetProject, staging_client: SupersetClient
) -> None:
    plan = project.plan("staging", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    # 1 database, 2 datasets, 6 charts, 3 dashboards, 2 roles
    assert "Plan for staging: 14 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in plan.output
    assert "+ create superset.dataset/warehouse.sales" in plan.output
    assert "+ create superset.dashboard/sales-overview" in plan.output
    assert staging_client.list_dashboards() == []  # planning wrote nothing

    applied = project.apply("staging")
    assert applied.exit_code == 0, applied.output
    assert "imported 3 dashboards, 6 charts, 2 datasets, 1 database in one bundle" in applied.output
    assert "verified 6 chart(s) on 3 dashboard(s) in staging: every query ran" in applied.output
    assert "Apply complete: 14 created." in applied.output
    assert sorted(d.slug or "" for d in staging_client.list_dashboards()) == list(SLUGS)

    assert project.plan("staging", "--detailed-exitcode").exit_code == 0
    with project.provider("staging") as (session, provider):
        second = service.make_plan(session)
        report = service.apply_plan(session, second)
        assert not second.has_changes and report.ok
        assert provider.client.writes_made == 0
        # sign-in, four listings, one export, the roles and each role's permissions: no GET per asset
        assert provider.client.requests_made <= 9


def test_a_chart_edited_in_the_qa_ui_shows_up_as_a_change_and_apply_puts_it_back(
    staging_applied: SupersetProject, staging_client: SupersetClient
) -> None:
    chart = next(c for c in staging_client.list_charts() if c.name == "Sales by region")
    params = json.loads(staging_client.get_chart(chart.id)["params"])
    edit = {"slice_name": "Sales by region (QA)", "params": json.dumps(params | {"row_limit": 10})}
    staging_client.update_chart(chart.id, edit)

    plan = staging_applied.plan("staging")
    assert f"~ update superset.chart/sales-by-region_{chart.uuid[:8]}" in plan.output
    assert 'slice_name: "Sales by region (QA)" -> "Sales by region"' in plan.output
    assert "params.row_limit: 10 -> 1000" in plan.output
    assert "Plan for staging: 0 to create, 1 to update, 0 to replace, 0 to delete" in plan.output

    applied = staging_applied.apply("staging")
    assert applied.exit_code == 0, applied.output
    assert "imported 1 chart, 1 dataset, 1 database in one bundle" in applied.output
    assert "verified 3 chart(s) on 1 dashboard(s)" in applied.output  # every chart of the sales overview
    assert next(c.name for c in staging_client.list_charts() if c.id == chart.id) == "Sales by region"
    assert "No changes." in staging_applied.plan("staging").output


def test_a_plan_saved_by_another_process_is_applied_as_printed(
    staging_applied: SupersetProject, staging_client: SupersetClient, tmp_path: Path
) -> None:
    chart = next(c for c in staging_client.list_charts() if c.name == "Sales by region")
    staging_client.update_chart(chart.id, {"slice_name": "Sales by region (QA)"})
    plan_file = tmp_path / "plan.json"
    # another process (another hash seed): the apply re-derives every action and finds the same ones
    command = [sys.executable, "-m", "reconciler.cli", "--root", str(staging_applied.root)]
    made = subprocess.run(
        [*command, "plan", "--env", "staging", *SUPERSET, "--out", str(plan_file)],
        capture_output=True,
        text=True,
        env={**os.environ, **staging_applied.environ},
        timeout=600,
    )
    assert made.returncode == 0, made.stderr
    assert f"~ update superset.chart/sales-by-region_{chart.uuid[:8]}" in made.stdout

    applied = staging_applied.run("apply", "--env", "staging", str(plan_file), *SUPERSET)
    assert applied.exit_code == 0, applied.output
    assert next(c.name for c in staging_client.list_charts() if c.id == chart.id) == "Sales by region"
    assert "No changes." in staging_applied.plan("staging").output


def test_a_saved_plan_is_applied_by_a_fresh_provider_that_never_planned(
    staging_applied: SupersetProject, staging_client: SupersetClient, tmp_path: Path
) -> None:
    """Providers keep nothing between calls: the instance that applies gets what was observed with the plan."""
    chart = next(c for c in staging_client.list_charts() if c.name == "Sales by region")
    staging_client.update_chart(chart.id, {"slice_name": "Sales by region (QA)"})
    plan_file = tmp_path / "plan.json"
    made = staging_applied.plan("staging", "--out", str(plan_file))
    assert f"~ update superset.chart/sales-by-region_{chart.uuid[:8]}" in made.output

    saved = plan_from_json(json.loads(plan_file.read_text()))
    with staging_applied.provider("staging") as (session, planner):
        checked = service.check_saved_plan(session, saved)  # the saved-plan check observes with its own instance
        fresh = superset_provider.connect(session.root, session.env, session.resolver)
        session.providers["superset"] = fresh  # the instance that applies never ran desired() or observe()
        try:
            report = service.apply_plan(session, checked)
        finally:
            fresh.close()
            session.providers["superset"] = planner
    assert report.ok, report.error
    assert any("imported 1 chart, 1 dataset, 1 database in one bundle" in note for note in report.notes)
    assert next(c.name for c in staging_client.list_charts() if c.id == chart.id) == "Sales by region"
    assert "No changes." in staging_applied.plan("staging").output


def test_renaming_a_chart_and_a_dashboard_slug_in_the_specs_updates_them_and_deletes_nothing(
    staging_applied: SupersetProject, staging_client: SupersetClient
) -> None:
    """A chart's name and a dashboard's slug are part of their keys; staging prunes, yet nothing goes."""
    project = staging_applied
    (chart_file,) = (project.root / "specs" / "superset" / "dashboards").glob("*/charts/sales-by-product_*.yaml")
    original_chart = chart_file.read_text()
    dashboard_file = project.root / "specs" / "superset" / "dashboards" / "customer-health" / "dashboard.yaml"
    original_dashboard = dashboard_file.read_text()
    chart_file.write_text(original_chart.replace("slice_name: Sales by product", "slice_name: Revenue by product"))
    dashboard_file.write_text(original_dashboard.replace("slug: customer-health", "slug: customers"))
    try:
        plan = project.plan("staging")
        assert "~ update superset.chart/revenue-by-product_" in plan.output
        assert "~ update superset.dashboard/customers" in plan.output
        assert "0 to create, 2 to update, 0 to replace, 0 to delete" in plan.output, plan.output
        assert project.apply("staging").exit_code == 0
        assert "Revenue by product" in {c.name for c in staging_client.list_charts()}
        assert "customers" in {d.slug for d in staging_client.list_dashboards()}
        assert "No changes." in project.plan("staging").output
    finally:
        chart_file.write_text(original_chart)
        dashboard_file.write_text(original_dashboard)
    restored = project.apply("staging")
    assert "0 to create, 2 to update, 0 to replace, 0 to delete" in restored.output, restored.output


def test_a_role_gaining_a_permission_shows_up_as_a_change_either_way(
    staging_applied: SupersetProject, staging_client: SupersetClient
) -> None:
    role = next(r for r in staging_client.list_roles() if r.name == "sales-viewer")
    sales = next(d for d in staging_client.list_datasets() if d.table_name == "sales")
    granted = {(p.permission, p.view_menu) for p in staging_client.role_permissions(role.id)}
    assert ("datasource_access", f"[warehouse].[sales](id:{sales.id})") in granted  # this instance's id, by name

    staging_applied.edit(
        "specs/superset/roles.yaml",
        "  - name: sales-viewer\n    permissions:\n",
        "  - name: sales-viewer\n    permissions:\n      - [can_write, Chart]\n",
    )
    plan = staging_applied.plan("staging")
    assert "~ update superset.role/sales-viewer" in plan.output
    assert 'permissions.can_write on Chart: (none) -> "granted"' in plan.output
    assert staging_applied.apply("staging").exit_code == 0
    assert ("can_write", "Chart") in {(p.permission, p.view_menu) for p in staging_client.role_permissions(role.id)}

    ids = {(p.permission, p.view_menu): p.id for p in staging_client.list_permission_view_menus()}
    current = [p.id for p in staging_client.role_permissions(role.id)]
    staging_client.set_role_permissions(role.id, [*current, ids[("can_read", "Log")]])  # granted by hand in QA
    plan = staging_applied.plan("staging")
    assert 'permissions.can_read on Log: "granted" -> (none)' in plan.output
    assert staging_applied.apply("staging").exit_code == 0
    assert ("can_read", "Log") not in {(p.permission, p.view_menu) for p in staging_client.role_permissions(role.id)}
    assert "No changes." in staging_applied.plan("staging").output


REPORTING = """\
allow_ctas: false
allow_cvas: false
allow_dml: false
allow_file_upload: false
allow_run_async: false
cache_timeout: null
database_name: reporting
expose_in_sqllab: true
extra: {}
uuid: 5e0c2e0a-6a40-4b8e-9d2c-000000000001
"""


class RecordingTransport(httpx.BaseTransport):
    """The real network, plus a copy of every import request's body."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.imports: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/assets/import/"):
            self.imports.append(request.read())
        return self.inner.handle_request(request)


def recording_factory(transport: RecordingTransport) -> service.ProviderFactory:
    def factory(env: Environment, resolver: SecretResolver) -> SupersetProvider:
        assert env.superset is not None
        settings = env.superset.settings
        assert settings.auth.password is not None
        password = resolver.value(settings.auth.password.secret_ref)

        def connect() -> SupersetClient:
            return SupersetClient(settings.url, username="admin", password=password, transport=transport)

        return SupersetProvider(connect, env.superset, env.name)

    return factory


def apply_recorded(project: SupersetProject, transport: RecordingTransport) -> service.ApplyReport:
    factories = {"superset": recording_factory(transport)}
    with service.open_session(project.root, "staging", project.environ, factories=factories) as session:
        return service.apply_plan(session, service.make_plan(session))


def test_a_database_password_travels_only_in_the_import_and_a_rotation_is_a_change(
    staging_applied: SupersetProject, staging_client: SupersetClient
) -> None:
    project = staging_applied
    first, rotated = "CANARY-first-never-print", "CANARY-rotated-never-print"
    (project.root / "specs" / "superset" / "databases" / "reporting.yaml").write_text(REPORTING)
    connection = '    reporting:\n      sqlalchemyUri: "postgresql://reporter@warehouse.invalid:5432/analytics"\n'
    connection += "      password: {secretRef: {env: REPORTING_PASSWORD}}\n"
    project.edit("environments/staging.yaml", "  dashboards: all\n", connection + "  dashboards: all\n")
    project.environ["REPORTING_PASSWORD"] = first
    try:
        plan = project.plan("staging")
        assert "+ create superset.database/reporting" in plan.output
        assert 'sqlalchemy_uri: "postgresql://reporter:XXXXXXXXXX@warehouse.invalid:5432/analytics"' in plan.output
        assert "password: (secret set)" in plan.output
        transport = RecordingTransport()
        assert apply_recorded(project, transport).ok
        assert len(transport.imports) == 1
        assert json.dumps({"databases/reporting.yaml": first}).encode() in transport.imports[0]
        assert "No changes." in project.plan("staging").output

        project.environ["REPORTING_PASSWORD"] = rotated
        plan = project.plan("staging")
        assert "~ update superset.database/reporting" in plan.output and "password: (secret changed)" in plan.output
        transport = RecordingTransport()
        assert apply_recorded(project, transport).ok
        assert json.dumps({"databases/reporting.yaml": rotated}).encode() in transport.imports[0]
        state = (project.root / ".reconciler" / "state" / "staging.json").read_text()
        for text in (plan.output, state, project.plan("staging", "--format", "json").output):
            assert first not in text and rotated not in text
    finally:
        (project.root / "specs" / "superset" / "databases" / "reporting.yaml").unlink()
        (project.root / "environments" / "staging.yaml").write_text(STAGING)
    pruned = project.apply("staging")  # staging prunes: the database left the specs, reconciler made it
    assert "- delete superset.database/reporting" in pruned.output
    assert "reporting" not in {d.name for d in staging_client.list_databases()}


def test_prune_deletes_only_what_reconciler_owns(
    staging_applied: SupersetProject, staging_client: SupersetClient
) -> None:
    project = staging_applied
    staging_client.create_dashboard({"dashboard_title": "Made by hand", "slug": "made-by-hand"})
    project.edit(
        "environments/staging.yaml", "  dashboards: all\n", "  dashboards: [sales-overview, customer-health]\n"
    )
    try:
        plan = project.plan("staging")
        assert "- delete superset.dashboard/executive-summary" in plan.output
        assert "Plan for staging: 0 to create, 0 to update, 0 to replace, 1 to delete" in plan.output  # charts stay
        assert "made-by-hand" not in plan.output
        assert project.apply("staging").exit_code == 0
        slugs = {d.slug for d in staging_client.list_dashboards()}
        assert "executive-summary" not in slugs and "made-by-hand" in slugs
    finally:
        (project.root / "environments" / "staging.yaml").write_text(STAGING)
    restored = project.apply("staging")
    assert "+ create superset.dashboard/executive-summary" in restored.output, restored.output


# ---- a dashboard made through the API: no layout, no metadata, charts without a saved query ------

API_CHARTS: dict[str, dict[str, Any]] = {
    "API sales by region": {"viz_type": "table", "groupby": ["region"], "metrics": ["total_amount"], "row_limit": 100},
    "API total sales": {"viz_type": "big_number_total", "metric": "total_amount"},
}
API_DIR = "specs/superset/dashboards/made-by-api"


@pytest.fixture
def api_dashboard(
    project: SupersetProject, prod_client: SupersetClient, prod_fixtures: FixtureIds
) -> Iterator[SupersetProject]:
    """Prod gets a dashboard as a script makes one (`position_json` and `json_metadata` null) with two
    charts created without a query context; the project pulls it. Afterwards it leaves the specs,
    staging (which prunes) and prod."""
    dashboard_id = prod_client.create_dashboard({"dashboard_title": "Made by API", "slug": "made-by-api"})
    dataset_id = prod_fixtures.dataset_ids["sales"]
    chart_ids = [
        prod_client.create_chart(
            {
                "slice_name": name,
                "viz_type": params["viz_type"],
                "datasource_id": dataset_id,
                "datasource_type": "table",
                "params": json.dumps(params | {"datasource": f"{dataset_id}__table"}),
                "dashboards": [dashboard_id],
            }
        )
        for name, params in API_CHARTS.items()
    ]
    try:
        pulled = project.run("pull", "superset", "--env", "prod", "--dashboard", "made-by-api")
        assert pulled.exit_code == 0, pulled.output
        yield project
    finally:
        shutil.rmtree(project.root / API_DIR, ignore_errors=True)
        project.apply("staging")
        prod_client.delete_dashboard(dashboard_id)
        for chart_id in chart_ids:
            prod_client.delete_chart(chart_id)


def test_a_dashboard_without_a_saved_layout_pulls_again_to_the_same_bytes_without_instance_ids(
    api_dashboard: SupersetProject,
) -> None:
    project = api_dashboard
    files = project.spec_files()
    made = {path: text.decode() for path, text in files.items() if path.startswith("dashboards/made-by-api/")}
    assert len(made) == 3, sorted(made)
    for path, text in made.items():
        for instance_id in ("chartId", "__table", "slice_id", "datasource"):
            assert instance_id not in text, (path, instance_id)
        assert not re.search(r"(CHART|ROW-N)-[A-Z0-9]{8}\b", text), path  # the export's random layout ids
    for _ in range(2):  # Superset invents new random layout ids and a new chart order each time
        again = project.run("pull", "superset", "--env", "prod", "--dashboard", "made-by-api")
        assert again.exit_code == 0, again.output
        assert "no file changed" in again.output
        assert project.spec_files() == files


def test_a_dashboard_made_without_metadata_plans_no_changes_once_applied(
    api_dashboard: SupersetProject, staging_client: SupersetClient
) -> None:
    project = api_dashboard
    plan = project.plan("staging")
    assert "+ create superset.dashboard/made-by-api" in plan.output
    assert "3 to create, 0 to update, 0 to replace, 0 to delete" in plan.output, plan.output
    applied = project.apply("staging")
    assert applied.exit_code == 0, applied.output
    assert "made-by-api" in {d.slug for d in staging_client.list_dashboards()}

    assert "No changes." in project.plan("staging").output  # not `metadata: {...} -> (none)` for ever
    with project.provider("staging") as (session, provider):
        report = service.apply_plan(session, service.make_plan(session))
        assert report.ok and not report.done and provider.client.writes_made == 0


def test_verify_queries_charts_without_a_saved_query_from_their_params_and_fails_on_one_it_cannot_check(
    api_dashboard: SupersetProject, staging_client: SupersetClient
) -> None:
    project = api_dashboard
    applied = project.apply("staging")
    assert applied.exit_code == 0, applied.output
    assert "verified 2 chart(s) on 1 dashboard(s) in staging: every query ran (" in applied.output

    verified = project.run("verify", "superset", "--env", "staging")
    assert verified.exit_code == 0, verified.output
    assert re.search(r"Made by API\s+API total sales\s+ok\s+no saved query context", verified.output)
    assert re.search(r"Made by API\s+API sales by region\s+ok\s+no saved query context", verified.output)

    chart = next(c for c in staging_client.list_charts() if c.name == "API total sales")
    staging_client.update_chart(chart.id, {"params": json.dumps({"viz_type": "big_number_total"})})  # no metric
    verified = project.run("verify", "superset", "--env", "staging")
    assert verified.exit_code == 1, verified.output
    assert "1 of 8 chart(s) could not be checked in staging:" in verified.output
    assert "Made by API / API total sales: no saved query context, and its params name no metric" in verified.output


# ---- replication prod -> QA ------------------------------------------------------------------------


@dataclass(frozen=True)
class Replication:
    baseline: QaBaseline
    plan: Result
    apply: Result


@pytest.fixture(scope="module")
def replication(project: SupersetProject, fresh_qas: FreshQas, replica_client: SupersetClient) -> Replication:
    """QA with its own `warehouse` connection and a dashboard of its own, then `apply --env qa` (replicate prod)."""
    baseline = build_qa_baseline(replica_client, fresh_qas.replica.warehouse_path)
    plan = project.plan("qa", "--detailed-exitcode")
    applied = project.apply("qa")
    return Replication(baseline, plan, applied)


def test_replication_rewrites_the_database_so_qa_charts_read_qa_data(
    replication: Replication,
    project: SupersetProject,
    replica_client: SupersetClient,
    prod_client: SupersetClient,
    prod_fixtures: FixtureIds,
) -> None:
    plan, applied = replication.plan, replication.apply
    assert plan.exit_code == 2, plan.output
    assert "+ create superset.dashboard/sales-overview" in plan.output
    assert "+ create superset.chart/sales-by-region_" in plan.output
    assert "+ create superset.database/warehouse" not in plan.output  # QA's own connection, found by name
    assert "qa-scratch" not in plan.output and "QA scratch" not in plan.output  # QA's own dashboard: not touched
    assert applied.exit_code == 0, applied.output
    assert "verified 6 chart(s) on 3 dashboard(s) in qa: every query ran" in applied.output

    databases = [(d.name, d.uuid) for d in replica_client.list_databases()]
    assert databases == [("warehouse", replication.baseline.database_uuid)]  # no second row, no uuid takeover
    chart = next(c for c in replica_client.list_charts() if c.name == "Sales by region")
    qa_regions = {row["region"] for row in replica_client.chart_data(chart.id)["result"][0]["data"]}
    assert QA_ONLY_REGION in qa_regions
    prod_rows = prod_client.chart_data(prod_fixtures.chart_ids["Sales by region"])["result"][0]["data"]
    assert QA_ONLY_REGION not in {row["region"] for row in prod_rows}
    assert "qa-scratch" in {d.slug for d in replica_client.list_dashboards()}

    assert project.plan("qa", "--detailed-exitcode").exit_code == 0
    with project.provider("qa") as (session, provider):
        report = service.apply_plan(session, service.make_plan(session))
        assert report.ok and not report.done and provider.client.writes_made == 0


def test_a_column_dropped_from_qa_makes_verification_name_the_chart(
    replication: Replication, project: SupersetProject, fresh_qas: FreshQas, replica_client: SupersetClient
) -> None:
    assert replication.apply.exit_code == 0, replication.apply.output
    warehouse = fresh_qas.replica.warehouse_path
    with contextlib.closing(sqlite3.connect(warehouse)) as db, db:
        db.execute("ALTER TABLE sales DROP COLUMN region")  # a dbt change dropped it
    try:
        verified = project.run("verify", "superset", "--env", "qa")
        assert verified.exit_code == 1
        assert "Sales overview / Sales by region: " in verified.output
        assert "no such column: region" in verified.output
        assert "1 of 6 chart(s) failed in qa" in verified.output
        assert re.search(r"Sales by product\s+ok", verified.output)

        # the same failure, found by an apply: QA's copy of a chart was edited, so apply imports it again
        chart = next(c for c in replica_client.list_charts() if c.name == "Sales by product")
        replica_client.update_chart(chart.id, {"slice_name": "Sales by product (edited)"})
        applied = project.apply("qa")
        assert applied.exit_code == 1
        assert "Sales overview / Sales by region: " in applied.output and "no such column: region" in applied.output
        assert next(c.name for c in replica_client.list_charts() if c.id == chart.id) == "Sales by product"
    finally:
        create_warehouse(warehouse, "qa")
    assert project.run("verify", "superset", "--env", "qa").exit_code == 0
