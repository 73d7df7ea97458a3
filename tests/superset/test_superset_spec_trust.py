"""`reconcile validate` on the Superset specs a careless or hostile hand wrote, offline (issue 13, items 15, 17, 18).

Each case edits a copy of the example and expects exit 1 with `file:line: field: message` at the
very line that holds the problem, no traceback, and never the secret's value in the output.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.service import session as service_session
from reconciler.systems.superset.loading import SupersetSelection
from tests.helpers import copy_example

PROD = "environments/prod.yaml"
DATABASE = "specs/superset/databases/warehouse.yaml"
CHART = "specs/superset/dashboards/sales-overview/charts/sales-by-region_fa85148a.yaml"
DASHBOARD = "specs/superset/dashboards/sales-overview/dashboard.yaml"
DATASET = "specs/superset/datasets/warehouse/sales.yaml"
ENV_URI = "${SUPERSET_PROD_WAREHOUSE_URI:-sqlite:////srv/superset/warehouse_prod.db}"
SECRET = "Hunter2-s3cret"


def validate(root: Path, environ: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), "validate"], env=environ or {})


def edit(root: Path, relative: str, old: str, new: str) -> int:
    """Replace `old` once; the 1-based line where `new` starts."""
    path = root / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    text = text.replace(old, new, 1)
    path.write_text(text)
    return text[: text.index(new)].count("\n") + 1


def assert_refused(result: Result, where: str, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = next((line for line in result.output.splitlines() if line.strip().startswith(where)), None)
    assert line is not None, f"no problem at {where}:\n{result.output}"
    for fragment in fragments:
        assert fragment in line, line
    assert SECRET not in result.output


# ---- 15: a secret in the URI's query, an ODBC string, or a database's extra -----------------------

URIS = {
    "query password": f"postgresql://reporter@warehouse:5432/analytics?sslmode=require&password={SECRET}",
    "upper-case query PASSWORD": f"postgresql://reporter@warehouse/analytics?PASSWORD={SECRET}",
    "passwd": f"mysql+pymysql://reporter@warehouse/analytics?charset=utf8&passwd={SECRET}",
    "ODBC PWD, encoded": "mssql+pyodbc:///?odbc_connect="
    + f"DRIVER%3D%7BODBC+Driver+18%7D%3BSERVER%3Dwarehouse%3BUID%3Dreporter%3BPWD%3D{SECRET}",
    "ODBC pwd, as written": f"mssql+pyodbc:///?odbc_connect=DRIVER={{ODBC}};SERVER=warehouse;UID=reporter;pwd={SECRET}",
    "access token": f"trino://reporter@warehouse:443/hive?access_token={SECRET}",
    "client secret": f"databricks://token@host:443?http_path=/sql&client_secret={SECRET}",
}


@pytest.mark.parametrize("case", sorted(URIS))
def test_a_secret_in_the_uri_query_is_refused_at_its_line_and_never_printed(case: str, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    line = edit(root, PROD, ENV_URI, f'"{URIS[case]}"')
    result = validate(root)
    assert_refused(
        result,
        f"{PROD}:{line}: superset.databases.warehouse.sqlalchemyUri:",
        "the URI carries a password or secret",
        "password: {secretRef",
    )


def test_a_secret_uri_given_through_a_variable_is_refused_and_never_printed(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    result = validate(root, {"SUPERSET_PROD_WAREHOUSE_URI": URIS["query password"]})
    assert_refused(result, f"{PROD}:", "superset.databases.warehouse.sqlalchemyUri", "password=")


def test_harmless_query_parameters_and_paths_to_key_files_validate(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    uri = "bigquery://project?credentials_path=/var/run/key.json&sslmode=require&password_file_hint="
    edit(root, PROD, ENV_URI, f'"{uri}"')
    result = validate(root)
    assert result.exit_code == 0, result.output


EXTRAS = {
    "connect_args.password": (
        "  engine_params: {}\n",
        f"  engine_params:\n    connect_args:\n      sslmode: require\n      password: {SECRET}\n",
        4,
        "extra.engine_params.connect_args.password",
    ),
    "a token deeper down": (
        "  engine_params: {}\n",
        f"  engine_params:\n    connect_args:\n      auth:\n        access_token: {SECRET}\n",
        4,
        "extra.engine_params.connect_args.auth.access_token",
    ),
}


@pytest.mark.parametrize("case", sorted(EXTRAS))
def test_a_secret_in_a_database_extra_is_refused_at_its_line_and_never_printed(case: str, tmp_path: Path) -> None:
    old, new, offset, field = EXTRAS[case]
    root = copy_example(tmp_path)
    line = edit(root, DATABASE, old, new) + offset - 1
    result = validate(root)
    assert_refused(result, f"{DATABASE}:{line}: {field}:", "an inline secret in extra", "secretRef")


def test_a_secret_in_extra_written_as_a_json_string_or_an_inline_password_is_refused(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    text = (root / DATABASE).read_text()
    start = text.index("extra:\n")
    end = text.index("impersonate_user")
    extra = '{"engine_params": {"connect_args": {"PWD": "' + SECRET + '"}}}'
    (root / DATABASE).write_text(text[:start] + f"extra: '{extra}'\npassword: {SECRET}\n" + text[end:])
    lines = (root / DATABASE).read_text().splitlines()
    extra_line = next(i for i, line in enumerate(lines, 1) if line.startswith("extra:"))
    result = validate(root)
    assert_refused(result, f"{DATABASE}:{extra_line}: extra:", "in extra (engine_params.connect_args.PWD)")
    assert_refused(result, f"{DATABASE}:{extra_line + 1}: password:", "an inline password")


def test_the_export_mask_in_a_database_file_is_no_secret(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    edit(root, DATABASE, "  engine_params: {}\n", "  engine_params:\n    connect_args:\n      password: XXXXXXXXXX\n")
    assert validate(root).exit_code == 0


# ---- 18: what Superset's import would refuse with "Import failed for an unknown reason" ----------


def test_a_uuid_that_is_not_a_uuid_is_refused_at_its_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    text = (root / CHART).read_text()
    uuid = re.search(r"^uuid: (\S+)$", text, re.M)
    assert uuid is not None
    line = edit(root, CHART, f"uuid: {uuid.group(1)}", "uuid: sales-by-region-1")
    result = validate(root)
    assert_refused(result, f"{CHART}:{line}: uuid:", "'sales-by-region-1' is not a UUID")


@pytest.mark.parametrize("field", ["params", "query_context"])
def test_a_chart_field_holding_broken_json_is_refused_at_its_line(field: str, tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    path = root / CHART
    text = path.read_text()
    start = text.index(f"\n{field}:\n") + 1
    end = re.compile(r"^\S", re.M).search(text, start + len(field) + 2)
    assert end is not None
    broken = '{"viz_type": "table", "row_limit": 10,}'
    path.write_text(text[:start] + f"{field}: '{broken}'\n" + text[end.start() :])
    line = path.read_text()[:start].count("\n") + 1
    result = validate(root)
    assert_refused(result, f"{CHART}:{line}: {field}:", "not valid JSON")


def test_a_chart_field_holding_valid_json_text_validates(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    path = root / CHART
    text = path.read_text()
    start = text.index("\nparams:\n") + 1
    end = re.compile(r"^\S", re.M).search(text, start + 8)
    assert end is not None
    params = '{"viz_type": "table", "groupby": ["region"], "metrics": ["total_amount"], "row_limit": 1000}'
    path.write_text(text[:start] + f"params: '{params}'\n" + text[end.start() :])
    result = validate(root)
    assert result.exit_code == 0, result.output


def _copy_dashboard(root: Path, folder: str, uuid: str, slug: str | None, title: str | None = None) -> Path:
    """A second dashboard (same charts) under `folder`, with its own uuid and the given slug."""
    source = root / DASHBOARD
    target = root / "specs" / "superset" / "dashboards" / folder / "dashboard.yaml"
    target.parent.mkdir(parents=True)
    text = source.read_text()
    text = re.sub(r"^uuid: .*$", f"uuid: {uuid}", text, flags=re.M)
    text = re.sub(r"^slug: .*$\n", "" if slug is None else f"slug: '{slug}'\n", text, flags=re.M)
    if title is not None:
        text = re.sub(r"^dashboard_title: .*$", f"dashboard_title: '{title}'", text, flags=re.M)
    target.write_text(text)
    return target


def test_the_same_slug_on_two_spec_dashboards_is_refused_at_the_second(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    copy = _copy_dashboard(root, "zz-sales-overview", "0b0c5a38-7f1e-4a55-9c4f-1d6c1e8a0001", "sales-overview")
    line = next(i for i, text in enumerate(copy.read_text().splitlines(), 1) if text.startswith("slug:"))
    result = validate(root)
    relative = copy.relative_to(root).as_posix()
    assert_refused(result, f"{relative}:{line}: slug:", "'sales-overview' is also the slug of", DASHBOARD)


def test_the_same_uuid_on_two_kinds_is_refused(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    dataset_uuid = re.search(r"^uuid: (\S+)$", (root / DATASET).read_text(), re.M)
    chart_uuid = re.search(r"^uuid: (\S+)$", (root / CHART).read_text(), re.M)
    assert dataset_uuid is not None and chart_uuid is not None
    edit(root, CHART, f"uuid: {chart_uuid.group(1)}", f"uuid: {dataset_uuid.group(1)}")
    line = (root / DATASET).read_text()[: dataset_uuid.start()].count("\n") + 1
    result = validate(root)
    assert_refused(result, f"{DATASET}:{line}: uuid:", f"uuid {dataset_uuid.group(1)} is also used by {CHART}")


# ---- 17: slugs that differ by case select exactly --------------------------------------------------

CASE_SLUGS = {
    "revenue": "0b0c5a38-7f1e-4a55-9c4f-1d6c1e8a0101",
    "Revenue": "0b0c5a38-7f1e-4a55-9c4f-1d6c1e8a0102",
    "REVENUE": "0b0c5a38-7f1e-4a55-9c4f-1d6c1e8a0103",
    "umsätze-übersicht": "0b0c5a38-7f1e-4a55-9c4f-1d6c1e8a0104",
    "收入": "0b0c5a38-7f1e-4a55-9c4f-1d6c1e8a0105",
}


def _case_project(tmp_path: Path, selected: list[str]) -> Path:
    root = copy_example(tmp_path)
    for number, (slug, uuid) in enumerate(CASE_SLUGS.items()):
        _copy_dashboard(root, f"case-{number}", uuid, slug)
    prod = root / PROD
    prod.write_text(prod.read_text().replace("  dashboards: all ", f"  dashboards: {selected} ", 1))
    return root


@pytest.mark.parametrize("slug", sorted(CASE_SLUGS))
def test_a_slug_selects_exactly_that_dashboard_whatever_its_case_or_script(slug: str, tmp_path: Path) -> None:
    root = _case_project(tmp_path, [slug])
    result = validate(root)
    assert result.exit_code == 0, result.output
    environment = service_session.load_environment(root, "prod", {})
    selection = environment.section("superset", SupersetSelection)
    assert selection is not None
    assert selection.dashboards == (slug,)
    assert [asset.uuid for asset in selection.bundle.of("dashboards")] == [CASE_SLUGS[slug]]


def test_a_slug_in_the_wrong_case_is_refused_naming_the_exact_one(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    line = edit(root, PROD, "  dashboards: all ", "  dashboards: [Sales-Overview] ")
    result = validate(root)
    assert_refused(
        result,
        f"{PROD}:{line}: superset.dashboards.0:",
        "no dashboard 'Sales-Overview'",
        "did you mean 'sales-overview'?",
    )


def test_staged_pulls_left_by_a_crash_are_not_read_as_specs(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    leftover = root / "specs" / ".superset.pull-x1y2"
    shutil.copytree(root / "specs" / "superset", leftover)
    (leftover / "dashboards" / "sales-overview" / "dashboard.yaml").write_text("slug: [broken\n")
    result = validate(root)
    assert result.exit_code == 0, result.output
