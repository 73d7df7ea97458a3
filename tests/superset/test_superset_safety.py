"""What a Superset plan refuses, against real Superset 6.1 servers: built-in roles, the signed-in user's own
access to the roles API, a replication source that yields nothing or far less, a prune that would break
charts or datasets the specs do not own.

Two fresh QAs of this module's own: `staging` (reconciled from the specs, pruning on) and `qa` (replicating
the session's prod, pruning on).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from reconciler.systems.superset.client import SupersetClient
from tests.superset.conftest import FreshQas, SupersetPair, client_for
from tests.superset.project import SupersetProject, superset_project
from tests.testbeds.superset_fixtures import FixtureIds, build_qa_baseline

SLUGS = ("customer-health", "executive-summary", "sales-overview")
PULL = ("pull", "superset", "--env", "prod", *(arg for slug in SLUGS for arg in ("--dashboard", slug)))
STAGING = """\
environment: staging
superset:
  url: ${SUPERSET_STAGING_URL}
  auth: {username: admin, password: {secretRef: {env: SUPERSET_STAGING_PASSWORD}}}
  databases:
    warehouse: {sqlalchemyUri: "${SUPERSET_STAGING_WAREHOUSE_URI}"}
  dashboards: [sales-overview, customer-health]
  roles: []
  prune: true
"""


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    superset_pair: SupersetPair,
    fresh_qas: FreshQas,
    prod_fixtures: FixtureIds,
) -> SupersetProject:
    made = superset_project(tmp_path_factory.mktemp("safety"), superset_pair.prod, fresh_qas.specs, fresh_qas.replica)
    pulled = made.run(*PULL)
    assert pulled.exit_code == 0, pulled.output
    (made.root / "environments" / "staging.yaml").write_text(STAGING)
    applied = made.apply("staging")
    assert applied.exit_code == 0, applied.output
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
def files(project: SupersetProject) -> Iterator[None]:
    """Every edit a test makes to the environment files and roles.yaml is undone after it."""
    paths = [project.root / "environments" / f"{env}.yaml" for env in ("staging", "qa")]
    paths.append(project.root / "specs" / "superset" / "roles.yaml")
    texts = {path: path.read_text() for path in paths}
    yield
    for path, text in texts.items():
        path.write_text(text)


def permissions_of(client: SupersetClient, name: str) -> set[tuple[str, str]]:
    role = next(role for role in client.list_roles() if role.name == name)
    return {(p.permission, p.view_menu) for p in client.role_permissions(role.id)}


def add_role(project: SupersetProject, role: str, pairs: list[tuple[str, str]], *, opt_in: bool) -> None:
    """`role` in roles.yaml with these permissions, and selected in staging."""
    lines = [f"  - name: {role}"] + (["    manageBuiltIn: true"] if opt_in else []) + ["    permissions:"]
    lines += [f"      - {json.dumps(list(pair))}" for pair in sorted(pairs)]
    roles = project.root / "specs" / "superset" / "roles.yaml"
    roles.write_text(roles.read_text().split(f"  - name: {role}\n")[0] + "\n".join(lines) + "\n")
    staging = project.root / "environments" / "staging.yaml"
    staging.write_text(re.sub(r"(?m)^  roles: .*$", f"  roles: [{role}]", staging.read_text()))


# ---- built-in roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["Admin", "Public"])
def test_a_built_in_role_in_the_specs_is_refused_without_the_opt_in_and_left_untouched(
    project: SupersetProject, staging_client: SupersetClient, files: None, role: str
) -> None:
    """`Public` with all_datasource_access would serve every dataset to anonymous requests."""
    before = permissions_of(staging_client, role)
    add_role(project, role, [("all_datasource_access", "all_datasource_access")], opt_in=False)
    applied = project.apply("staging")
    assert applied.exit_code == 1, applied.output
    assert f"roles.2.name: '{role}' is one of Superset's built-in roles" in applied.output
    assert "manageBuiltIn: true" in applied.output and "Traceback" not in applied.output
    assert permissions_of(staging_client, role) == before


def test_a_plan_that_takes_the_roles_api_from_the_signed_in_user_is_refused_even_when_opted_in(
    project: SupersetProject, staging_client: SupersetClient, files: None
) -> None:
    """`Admin` with one permission locked every admin out, reconciler included."""
    before = permissions_of(staging_client, "Admin")
    add_role(project, "Admin", [("can_read", "Dashboard")], opt_in=True)
    planned = project.plan("staging")
    assert planned.exit_code == 1, planned.output
    assert "would take can_get on Role, can_post on Role" in planned.output
    assert "away from the user reconciler signs in as (through its role(s) Admin)" in planned.output
    applied = project.apply("staging")
    assert applied.exit_code == 1, applied.output
    assert permissions_of(staging_client, "Admin") == before

    kept = sorted(before - {("can_read", "Log")})  # the opt-in works when the user keeps the roles API
    assert ("can_read", "Log") in before
    add_role(project, "Admin", kept, opt_in=True)
    planned = project.plan("staging")
    assert planned.exit_code == 0, planned.output
    assert 'permissions.can_read on Log: "granted" -> (none)' in planned.output
    assert "~ update superset.role/Admin" in planned.output
    # (not applied: the session's Admin stays as superset init made it)


@pytest.mark.parametrize(
    "taken", [("can_read", "Dashboard"), ("can_export", "Dataset"), ("all_datasource_access", "all_datasource_access")]
)
def test_a_plan_that_takes_what_the_asset_calls_need_from_the_signed_in_user_is_refused(
    project: SupersetProject, staging_client: SupersetClient, files: None, taken: tuple[str, str]
) -> None:
    """`Admin` without can_read on Dashboard: the next plan's listing answers 403, so the role could not even be
    put back through the specs; without all_datasource_access the dataset listing hides what reconciler owns."""
    from reconciler.systems.superset.rules.guards import ASSET_API

    before = permissions_of(staging_client, "Admin")
    assert set(ASSET_API) <= before  # every name guarded is a permission Superset 6.1 has, and Admin holds it
    add_role(project, "Admin", sorted(before - {taken}), opt_in=True)
    planned = project.plan("staging")
    assert planned.exit_code == 1, planned.output
    assert f"would take {taken[0]} on {taken[1]} away from the user reconciler signs in as" in planned.output
    assert project.apply("staging").exit_code == 1
    assert permissions_of(staging_client, "Admin") == before


def test_a_built_in_role_taken_over_is_never_pruned(
    project: SupersetProject, staging_client: SupersetClient, files: None
) -> None:
    gamma = next(role for role in staging_client.list_roles() if role.name == "Gamma")
    original = [p.id for p in staging_client.role_permissions(gamma.id)]
    before = permissions_of(staging_client, "Gamma")
    try:
        assert ("can_read", "Log") not in before
        add_role(project, "Gamma", [*before, ("can_read", "Log")], opt_in=True)
        applied = project.apply("staging")
        assert applied.exit_code == 0, applied.output
        assert "~ update superset.role/Gamma" in applied.output
        assert ("can_read", "Log") in permissions_of(staging_client, "Gamma")

        project.edit("environments/staging.yaml", "  roles: [Gamma]\n", "  roles: []\n")  # staging prunes
        planned = project.plan("staging")
        assert planned.exit_code == 0, planned.output
        assert "delete superset.role/Gamma" not in planned.output
        assert "! superset.role/Gamma left the specs; one of Superset's built-in roles, which reconciler never " in (
            planned.output
        )
        assert project.apply("staging").exit_code == 0
        assert "Gamma" in {role.name for role in staging_client.list_roles()}
    finally:
        staging_client.set_role_permissions(gamma.id, original)


# ---- a prune that would break what the specs do not own ------------------------------------------


def test_pruning_a_dataset_that_hand_made_charts_use_is_refused_and_names_them(
    project: SupersetProject, staging_client: SupersetClient, files: None
) -> None:
    dataset = next(d for d in staging_client.list_datasets() if d.table_name == "customers_by_country")
    params = {"viz_type": "table", "datasource": f"{dataset.id}__table", "groupby": ["country"], "metrics": ["count"]}
    chart_id = staging_client.create_chart(
        {
            "slice_name": "Made by hand on customers",
            "viz_type": "table",
            "datasource_id": dataset.id,
            "datasource_type": "table",
            "params": json.dumps(params),
        }
    )
    try:
        narrowed = "  dashboards: [sales-overview]\n"
        project.edit("environments/staging.yaml", "  dashboards: [sales-overview, customer-health]\n", narrowed)
        refused = project.plan("staging")
        assert refused.exit_code == 1, refused.output
        line = f"would take down chart 'Made by hand on customers' (id {chart_id}), left without its dataset"
        assert line in refused.output and "superset.dataset/warehouse." in refused.output
        assert "pass --allow-broken-dependents to delete anyway" in refused.output
        assert project.apply("staging").exit_code == 1
        assert dataset.id in {d.id for d in staging_client.list_datasets()}
        assert next(c for c in staging_client.list_charts() if c.id == chart_id).dataset_id == dataset.id

        allowed = project.plan("staging", "--allow-broken-dependents")
        assert allowed.exit_code == 0, allowed.output
        assert "- delete superset.dataset/warehouse." in allowed.output and "customers_by_country" in allowed.output
        assert "! broken dependents allowed: superset.dataset/warehouse." in allowed.output
        assert line in allowed.output
    finally:
        staging_client.delete_chart(chart_id)


# ---- replication from a source that yields nothing, or far less ------------------------------------


@pytest.fixture(scope="module")
def replicated(project: SupersetProject, fresh_qas: FreshQas, replica_client: SupersetClient) -> set[str]:
    """QA with a connection and a dashboard of its own, then prod's dashboards replicated onto it, pruning on."""
    build_qa_baseline(replica_client, fresh_qas.replica.warehouse_path)
    qa = project.root / "environments" / "qa.yaml"
    qa.write_text(qa.read_text().replace("  verify: true", "  prune: true  # superset's\n  verify: true"))
    applied = project.apply("qa")
    assert applied.exit_code == 0, applied.output
    return {d.slug or "" for d in replica_client.list_dashboards()}


def test_an_empty_replication_source_is_refused_even_with_allow_mass_delete(
    project: SupersetProject, replicated: set[str], replica_client: SupersetClient, files: None
) -> None:
    """A selector typo made QA's plan delete every replicated dashboard, chart, dataset and the database."""
    held = len(replicated - {"qa-scratch"})
    assert held >= 3
    project.edit("environments/qa.yaml", "    dashboards: all\n", "    dashboards: {slugs: [sales-overveiw]}\n")
    refused = project.plan("qa", "--allow-mass-delete")
    assert refused.exit_code == 1, refused.output
    assert "the replication source prod yields no dashboards to replicate (it lists " in refused.output
    assert f"superset.replicate.dashboards chose none); qa holds {held} dashboard(s) replicated from it" in (
        refused.output
    )
    assert "(pass --allow-source-shrink if this is intended)" in refused.output
    assert project.apply("qa", "--allow-mass-delete").exit_code == 1
    assert {d.slug for d in replica_client.list_dashboards()} == replicated

    # allowed, the prune would still delete QA's own warehouse connection, which QA's own dataset uses
    both = project.plan("qa", "--allow-mass-delete", "--allow-source-shrink")
    assert both.exit_code == 1, both.output
    assert "superset.database/warehouse still has datasets the specs do not own (dataset 'warehouse." in both.output
    assert "qa_scratch" in both.output and "Superset refuses to delete a database with datasets" in both.output
    assert "yields no dashboards" not in both.output


def test_a_replication_source_yielding_far_less_is_refused_with_pruning_and_a_warning_without(
    project: SupersetProject, replicated: set[str], replica_client: SupersetClient, files: None
) -> None:
    project.edit("environments/qa.yaml", "    dashboards: all\n", "    dashboards: {slugs: [sales-overview]}\n")
    refused = project.plan("qa", "--allow-mass-delete")
    assert refused.exit_code == 1, refused.output
    held = len(replicated - {"qa-scratch"})
    assert f"now yields 1 dashboard(s) to replicate, and {held - 1} of the {held} qa holds from it" in refused.output
    assert "customer-health" in refused.output and "prune would delete them" in refused.output

    allowed = project.plan("qa", "--allow-mass-delete", "--allow-source-shrink")
    assert allowed.exit_code == 0, allowed.output
    assert "- delete superset.dashboard/customer-health" in allowed.output
    assert "! allowed (--allow-source-shrink): the replication source prod now yields 1" in allowed.output

    project.edit("environments/qa.yaml", "  prune: true  # superset's\n", "")
    unpruned = project.plan("qa")
    assert unpruned.exit_code == 0, unpruned.output
    assert "left in place, pruning is off" in unpruned.output and "- delete" not in unpruned.output
    assert {d.slug for d in replica_client.list_dashboards()} == replicated
