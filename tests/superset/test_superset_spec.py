"""The Superset slice of the specs, offline: every broken case named by file, line and field; diff-env rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from tests.helpers import copy_example

QA_SECTION = "environments/qa.yaml"

CASES: dict[str, tuple[str, str, str, list[str]]] = {
    # name: (file, text to find, replacement, fragments of the expected error line)
    "unknown key": (
        QA_SECTION,
        "  verify: true",
        "  verify: true\n  verfiy: false",
        ["environments/qa.yaml:", "superset.verfiy: unknown field"],
    ),
    "replicate from an unknown environment": (
        QA_SECTION,
        "    from: prod",
        "    from: production",
        ["superset.replicate.from: no environment 'production' (known: prod, qa)"],
    ),
    "replicate from itself": (QA_SECTION, "    from: prod", "    from: qa", ["cannot replicate from itself"]),
    "dashboard not in specs": (
        "environments/prod.yaml",
        "  dashboards: all ",
        "  dashboards: [sales-overview, sales-overveiw] ",
        ["environments/prod.yaml:", "superset.dashboards.1: no dashboard 'sales-overveiw' in specs/superset/"],
    ),
    "mapping onto an undeclared database": (
        QA_SECTION,
        "databases: {warehouse: warehouse}",
        "databases: {warehouse: lakehouse}",
        ["superset.replicate.databases.warehouse: maps onto 'lakehouse', which superset.databases does not declare"],
    ),
    "inline password": (
        QA_SECTION,
        "    password: {secretRef: {env: SUPERSET_QA_PASSWORD}}",
        "    password: admin123",
        ["superset.auth.password: looks like an inline secret"],
    ),
    "password inside the URI": (
        "environments/prod.yaml",
        "sqlite:////srv/superset/warehouse_prod.db",
        "postgresql://reporter:hunter2@warehouse:5432/analytics",
        ["superset.databases.warehouse.sqlalchemyUri: the URI carries a password or secret (user:password@)"],
    ),
    "database without a connection": (
        "environments/prod.yaml",
        "    warehouse:\n      sqlalchemyUri: ${SUPERSET_PROD_WAREHOUSE_URI:-sqlite:////srv/superset/warehouse_prod.db}\n",
        "    lakehouse:\n      sqlalchemyUri: sqlite:////srv/lake.db\n",
        ["superset.databases: database 'warehouse' (used by customer-health, executive-summary, sales-overview)"],
    ),
    "unknown role": (
        QA_SECTION,
        "  roles: [analyst, sales-viewer]",
        "  roles: [analyst, sales-veiwer]",
        ["superset.roles.1: no role 'sales-veiwer' in specs/superset/roles.yaml"],
    ),
    "role permission that is not a pair": (
        "specs/superset/roles.yaml",
        "      - [can_read, Dataset]",
        "      - [can_read]",
        ["specs/superset/roles.yaml:9: roles.0.permissions.2: expected a [permission, view menu] pair"],
    ),
    "chart whose dataset is not in specs": (
        "specs/superset/dashboards/sales-overview/charts/sales-by-region_fa85148a.yaml",
        "dataset_uuid: 95f83bc2",
        "dataset_uuid: 00000000",
        ["sales-by-region_fa85148a.yaml:", "dataset_uuid: no dataset in specs/superset/ has this uuid"],
    ),
    "dashboard placing a chart no file defines": (
        "specs/superset/dashboards/sales-overview/dashboard.yaml",
        "      uuid: ecb2c7c6-c2bf-4fea-8195-e9986ab91296",
        "      uuid: 00000000-c2bf-4fea-8195-e9986ab91296",
        [
            "specs/superset/dashboards/sales-overview/dashboard.yaml:80: position.CHART-sales-overview-2.meta.uuid: "
            "places chart 00000000-c2bf-4fea-8195-e9986ab91296, which is not in specs/superset/"
        ],
    ),
    "native filter reading a dataset no file defines": (
        "specs/superset/dashboards/sales-overview/dashboard.yaml",
        "      datasetUuid: 95f83bc2-d280-4df9-a309-3e0af886a8e4",
        "      datasetUuid: 00000000-d280-4df9-a309-3e0af886a8e4",
        [
            "dashboard.yaml:39: metadata.native_filter_configuration.0.targets.0.datasetUuid: "
            "a native filter reads dataset 00000000-d280-4df9-a309-3e0af886a8e4"
        ],
    ),
    "typo in a dashboard's key": (
        "specs/superset/dashboards/sales-overview/dashboard.yaml",
        "dashboard_title: Sales overview",
        "dashbaord_title: Sales overview",
        [
            "specs/superset/dashboards/sales-overview/dashboard.yaml:4: dashbaord_title: unknown key: Superset's "
            "dashboard import does not accept 'dashbaord_title' (did you mean 'dashboard_title'?)"
        ],
    ),
    "unknown key in a chart": (
        "specs/superset/dashboards/sales-overview/charts/sales-by-region_fa85148a.yaml",
        "slice_name: Sales by region",
        "slice_name: Sales by region\nowner: alice",
        ["sales-by-region_fa85148a.yaml:51: owner: unknown key: Superset's chart import does not accept 'owner'"],
    ),
    "unknown key in a dataset": (
        "specs/superset/datasets/warehouse/sales.yaml",
        "table_name: sales",
        "table_name: sales\ntable_schema: main",
        ["specs/superset/datasets/warehouse/sales.yaml:", "table_schema: unknown key: Superset's dataset import"],
    ),
    "unknown key in a dataset's column": (
        "specs/superset/datasets/warehouse/sales.yaml",
        "  column_name: order_date\n",
        "  column_name: order_date\n  is_dtm: true\n",
        [
            "specs/superset/datasets/warehouse/sales.yaml:20: columns.1.is_dtm: unknown key: Superset's dataset "
            "column import does not accept 'is_dtm' (did you mean 'is_dttm'?)"
        ],
    ),
    "unknown key in a database": (
        "specs/superset/databases/warehouse.yaml",
        "database_name: warehouse",
        "database_name: warehouse\nallow_csv_uploads: true",
        ["specs/superset/databases/warehouse.yaml:", "(did you mean 'allow_csv_upload'?)"],
    ),
    "asset without uuid": (
        "specs/superset/datasets/warehouse/sales.yaml",
        "uuid: 95f83bc2-d280-4df9-a309-3e0af886a8e4\n",
        "",
        ["specs/superset/datasets/warehouse/sales.yaml:1: an asset file needs its uuid"],
    ),
    "empty asset file": (
        "specs/superset/databases/warehouse.yaml",
        "",
        "# emptied by mistake\n",
        ["specs/superset/databases/warehouse.yaml:1: expected a mapping"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_superset_spec_is_rejected_with_file_line_and_field(case: str, tmp_path: Path) -> None:
    file, find, replace, fragments = CASES[case]
    root = copy_example(tmp_path)
    path = root / file
    text = path.read_text()
    assert find in text, f"{find!r} not in {file}"  # an empty `find` empties the file
    path.write_text(text.replace(find, replace, 1) if find else replace)
    result = CliRunner().invoke(main, ["--root", str(root), "validate"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = next((line for line in result.output.splitlines() if all(f in line for f in fragments)), None)
    assert line is not None, result.output


def test_diff_env_names_the_dashboards_one_side_does_not_replicate(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    same = CliRunner().invoke(main, ["--root", str(root), "diff-env", "prod", "qa"])
    assert "superset replication  dashboards            —            all from prod" in same.output
    assert "superset dashboard" not in same.output  # qa replicates every dashboard prod has

    qa = root / "environments" / "qa.yaml"
    qa.write_text(qa.read_text().replace("    dashboards: all\n", "    dashboards: {slugs: [sales-overview]}\n"))
    narrowed = CliRunner().invoke(main, ["--root", str(root), "diff-env", "prod", "qa"])
    assert narrowed.exit_code == 0, narrowed.output
    lines = [" ".join(line.split()) for line in narrowed.output.splitlines()]
    assert "superset dashboard customer-health spec —" in lines
    assert "superset dashboard executive-summary spec —" in lines
    assert not any("sales-overview" in line for line in lines if line.startswith("superset dashboard"))
    assert "superset replication dashboards — from prod: slugs sales-overview" in lines


@pytest.mark.parametrize("source", ["prod", "zz-prod"])
def test_a_replication_source_validates_alike_alone_and_with_every_environment(source: str, tmp_path: Path) -> None:
    """A variable's value is filled in once, as written: the source environment's section is read by the environment
    replicating from it too, whichever of them is loaded first (a value holding `${...}` is not expanded again)."""
    root = copy_example(tmp_path)
    if source != "prod":
        (root / "environments" / "prod.yaml").rename(root / "environments" / f"{source}.yaml")
        for name in (source, "qa"):
            path = root / "environments" / f"{name}.yaml"
            path.write_text(
                path.read_text()
                .replace("environment: prod", f"environment: {source}")
                .replace("from: prod", f"from: {source}")
            )
    env = {"SUPERSET_PROD_USERNAME": "ad${min}"}
    for only in ([], ["--env", source], ["--env", "qa"]):
        result = CliRunner().invoke(main, ["--root", str(root), "validate", *only], env=env)
        assert result.exit_code == 0, (only, result.output)
