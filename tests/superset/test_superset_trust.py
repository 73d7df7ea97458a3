"""Trust, part 2 (issue 13, items 15-18) against a real Superset 6.1: what a UI-built prod really holds.

One fresh server per module, built as a team would have it: the fixture dashboards, a connection
whose URI carries `?password=` (Superset stores and exports it as written) and whose `extra` holds
`engine_params.connect_args.password` (exported unmasked too), dashboards whose slugs differ only
by case or are not ASCII, and one with a 500-character title and no slug. The CLI pulls it, plans
it and applies to it; a proxy loses the answer of one import. The last test cleans the connection
up (it applies), so it stays last.
"""

from __future__ import annotations

import errno
import io
import json
import pathlib
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.systems.superset.client import SupersetClient
from tests.helpers import copy_example
from tests.superset.conftest import client_for
from tests.superset.lossy_proxy import LossyProxy
from tests.superset.project import SupersetProject
from tests.testbeds.superset_bed import SupersetInstance, start_superset_instances
from tests.testbeds.superset_fixtures import build_fixtures

QUERY_SECRET = "Qu3ry-s3cret-7781"
EXTRA_SECRET = "Extr4-s3cret-9902"
LONG_TITLE = ("Quarterly revenue by region, product line and sales channel, restated " * 8)[:499] + "!"
"""500 characters, the most Superset takes: a slug made of it is twice what a file name may be."""
CASE_SLUGS = ("revenue", "Revenue", "REVENUE", "umsätze-übersicht", "收入")
SECRETS = (QUERY_SECRET, EXTRA_SECRET)
FIXTURE_SLUGS = ("sales-overview", "customer-health", "executive-summary")

pytestmark = pytest.mark.slow


def _with_extra_secret(client: SupersetClient, dashboard_id: int) -> None:
    """Put a password into the warehouse's `extra` the way an import does (the API would test the
    connection first, and SQLite takes no password): export, edit the database file, import."""
    export = zipfile.ZipFile(io.BytesIO(client.export_dashboards([dashboard_id])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name in export.namelist():
            data = export.read(name)
            if "/databases/" in name:
                database = yaml.safe_load(data)
                database["extra"]["engine_params"] = {"connect_args": {"password": EXTRA_SECRET}}
                data = yaml.safe_dump(database).encode()
            if name.endswith("/metadata.yaml"):
                data = yaml.safe_dump(
                    {"version": "1.0.0", "type": "assets", "timestamp": "2026-11-29T00:00:00"}
                ).encode()
            bundle.writestr(name, data)
    client.import_assets(out.getvalue(), {})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupersetInstance]:
    started = start_superset_instances(("prod",), tmp_path_factory.mktemp("trust"))["prod"]
    try:
        with client_for(started) as client:
            ids = build_fixtures(client, started.warehouse_path)
            uri = f"{started.warehouse_uri}?password={QUERY_SECRET}"
            client.update_database(ids.database_id, {"sqlalchemy_uri": uri})
            _with_extra_secret(client, ids.dashboard_ids["sales-overview"])
            for slug in CASE_SLUGS:
                client.create_dashboard({"dashboard_title": f"Dashboard {slug}", "slug": slug})
            client.create_dashboard({"dashboard_title": LONG_TITLE})
        yield started
    finally:
        started.stop()


def _project(tmp_path: Path, server: SupersetInstance) -> SupersetProject:
    """The example without its Superset assets; prod selects no dashboard and declares no database yet."""
    root = copy_example(tmp_path)
    for folder in ("dashboards", "charts", "datasets", "databases"):
        shutil.rmtree(root / "specs" / "superset" / folder, ignore_errors=True)
    prod = root / "environments" / "prod.yaml"
    text = prod.read_text()
    start, end = text.index("  databases:"), text.index("  roles: [analyst, sales-viewer]")
    prod.write_text(
        text[:start] + "  dashboards: []\n  roles: []\n" + text[end + len("  roles: [analyst, sales-viewer]\n") :]
    )
    environ = {
        "RECONCILER_FINGERPRINT_KEY": "test-fingerprint-key",
        "SUPERSET_PROD_URL": server.url,
        "SUPERSET_PROD_PASSWORD": server.password,
    }
    return SupersetProject(root, environ)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pull(*slugs: str) -> tuple[str, ...]:
    return ("pull", "superset", "--env", "prod", *(arg for slug in slugs for arg in ("--dashboard", slug)))


def _pulled(tmp_path: Path, server: SupersetInstance, *slugs: str) -> SupersetProject:
    """The project after a pull of `slugs` (every live dashboard when none)."""
    project = _project(tmp_path, server)
    pulled = project.run(*_pull(*slugs))
    assert pulled.exit_code == 0, pulled.output
    return project


def _clean_connection(project: SupersetProject, server: SupersetInstance) -> None:
    """What the team writes for its SQLite warehouse: the plain URI, and no password (SQLite has none)."""
    path = project.root / "environments" / "prod.yaml"
    text = path.read_text().replace(
        "      password:\n        secretRef:\n          env: SUPERSET_PROD_WAREHOUSE_PASSWORD\n", ""
    )
    text = re.sub(r"(?m)^(\s+sqlalchemyUri: ).*$", lambda match: match.group(1) + server.warehouse_uri, text)
    path.write_text(text)


def test_pull_leaves_the_connection_secrets_out_of_every_file_and_declares_a_reference(
    tmp_path: Path, server: SupersetInstance
) -> None:
    project = _project(tmp_path, server)
    pulled = project.run(*_pull(*FIXTURE_SLUGS))
    assert pulled.exit_code == 0, pulled.output
    for name, data in _files(project.root).items():
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} written into {name}"
    assert not any(secret in pulled.output for secret in SECRETS)
    assert "Left out the secrets in database warehouse's connection" in pulled.output
    assert "sqlalchemy_uri password=" in pulled.output
    assert "extra.engine_params.connect_args.password" in pulled.output
    environment = yaml.safe_load((project.root / "environments" / "prod.yaml").read_text())
    connection = environment["superset"]["databases"]["warehouse"]
    assert connection == {
        "sqlalchemyUri": server.warehouse_uri,
        "password": {"secretRef": {"env": "SUPERSET_PROD_WAREHOUSE_PASSWORD"}},
    }
    database = yaml.safe_load((project.root / "specs/superset/databases/warehouse.yaml").read_text())
    assert database["extra"]["engine_params"] == {"connect_args": {}}
    validated = project.run("validate")
    assert validated.exit_code == 0, validated.output


def test_pull_writes_long_titles_as_short_stable_names_and_selections_that_select_exactly(
    tmp_path: Path, server: SupersetInstance
) -> None:
    project = _pulled(tmp_path, server)
    names = [path for path in (project.root / "specs" / "superset").rglob("*")]
    assert max(len(path.name.encode()) for path in names) <= 120
    long_ones = [path for path in names if path.name.startswith("quarterly-revenue-by-region")]
    assert len(long_ones) == 1 and long_ones[0].is_dir()
    environment = yaml.safe_load((project.root / "environments" / "prod.yaml").read_text())
    selected = environment["superset"]["dashboards"]
    assert set(CASE_SLUGS) <= set(selected)
    assert len(selected) == len(set(selected)) == 3 + len(CASE_SLUGS) + 1
    assert project.run("validate").exit_code == 0

    before = project.spec_files()
    again = project.run("pull", "superset", "--env", "prod")
    assert again.exit_code == 0, again.output
    assert "no file changed" in again.output
    assert project.spec_files() == before

    _clean_connection(project, server)
    plan = project.plan("prod")
    assert plan.exit_code == 0, plan.output
    # each slug found its own live dashboard (adopted by exact slug), none was confused with another
    assert "0 to create, 1 to update, 0 to replace, 0 to delete, 17 unchanged" in plan.output, plan.output


def test_a_pull_that_fails_half_way_leaves_the_project_as_it_was(
    tmp_path: Path, server: SupersetInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, server)
    before = _files(project.root)
    real_write = pathlib.Path.write_text
    written: list[Path] = []

    def write_then_fail(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if self.is_relative_to(project.root / "specs"):
            written.append(self)
            if len(written) == 4:
                raise OSError(errno.ENAMETOOLONG, "File name too long", str(self))
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_then_fail)
    result = project.run(*_pull(*FIXTURE_SLUGS, *CASE_SLUGS))
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "pull superset wrote nothing" in result.output
    assert len(written) == 4
    assert _files(project.root) == before
    assert [p.name for p in (project.root / "specs").iterdir() if p.name.startswith(".")] == []
    assert project.run("validate").exit_code == 0


def test_a_pull_whose_environment_file_cannot_be_written_leaves_the_project_as_it_was(
    tmp_path: Path, server: SupersetInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up at the environment file, the last thing pull writes: the specs must not have moved."""
    import reconciler.atomic

    project = _project(tmp_path, server)
    before = _files(project.root)
    real_mkstemp = reconciler.atomic.tempfile.mkstemp

    def full_at_the_environment_file(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs.get("dir", "")).name == "environments":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(reconciler.atomic.tempfile, "mkstemp", full_at_the_environment_file)
    result = project.run(*_pull(*FIXTURE_SLUGS, *CASE_SLUGS))
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "pull superset wrote nothing: cannot stage environments/prod.yaml" in result.output, result.output
    assert _files(project.root) == before
    assert [p.name for p in (project.root / "specs").iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in (project.root / "environments").iterdir() if p.name.startswith(".")] == []


def test_a_pull_into_a_symlinked_environment_file_writes_where_it_points_and_keeps_the_link(
    tmp_path: Path, server: SupersetInstance
) -> None:
    """environments/prod.yaml -> ../shared/prod.yaml (a monorepo sharing it): the rename over the link made it a
    copy and left the shared file, which the other links read, without the pulled selection."""
    project = _project(tmp_path, server)
    link, shared = project.root / "environments" / "prod.yaml", project.root / "shared" / "prod.yaml"
    shared.parent.mkdir()
    link.rename(shared)
    link.symlink_to(Path("..") / "shared" / "prod.yaml")
    result = project.run(*_pull(*FIXTURE_SLUGS))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert "sales-overview" in shared.read_text()
    assert [p.name for p in shared.parent.iterdir()] == ["prod.yaml"]
    validated = project.run("validate")
    assert validated.exit_code == 0, validated.output


def test_the_plan_shows_a_connection_secret_only_masked_in_every_format(
    tmp_path: Path, server: SupersetInstance
) -> None:
    project = _pulled(tmp_path, server, *FIXTURE_SLUGS)
    _clean_connection(project, server)
    outputs = {fmt: project.plan("prod", "--format", fmt) for fmt in ("text", "markdown", "json")}
    for fmt, result in outputs.items():
        assert result.exit_code == 0, result.output
        assert not any(secret in result.output for secret in SECRETS), f"a secret in the {fmt} plan"
    text = outputs["text"].output
    assert "superset.database/warehouse" in text, text
    assert "sqlalchemy_uri" in text, text  # the change is shown, its secret masked
    plan = json.dumps(json.loads(outputs["json"].output))
    assert "sqlalchemy_uri" in plan and "?password=XXXXXXXXXX" in plan, plan


def test_an_import_whose_answer_is_lost_says_the_outcome_is_unknown_and_a_rerun_settles_it(
    tmp_path: Path, server: SupersetInstance
) -> None:
    project = _pulled(tmp_path, server, *FIXTURE_SLUGS)
    _clean_connection(project, server)
    chart = next((project.root / "specs/superset/dashboards/sales-overview/charts").glob("sales-by-region_*.yaml"))
    relative = chart.relative_to(project.root).as_posix()
    project.edit(relative, "slice_name: Sales by region", "slice_name: Sales by region (EU)")

    proxy = LossyProxy(server.url, lambda method, path: method == "POST" and path.startswith("/api/v1/assets/import"))
    with proxy.running():
        project.environ["SUPERSET_PROD_URL"] = proxy.url
        lost = project.apply("prod")
    assert lost.exit_code == 1, lost.output
    assert len(proxy.lost) == 1
    assert "nothing done before the failure" not in lost.output
    assert "is unknown (its answer was lost)" in lost.output
    assert "Run apply again: it plans from what is live and settles it." in lost.output
    assert "sent, but the answer was lost" in lost.output
    assert "whether it took effect is unknown: run apply again" in lost.output
    with client_for(server) as client:  # it did land
        names = {row["slice_name"] for row in client.iter_pages("/api/v1/chart/")}
    assert "Sales by region (EU)" in names

    project.environ["SUPERSET_PROD_URL"] = server.url
    settled = project.apply("prod")
    assert settled.exit_code == 0, settled.output
    assert "No changes." in project.plan("prod").output
