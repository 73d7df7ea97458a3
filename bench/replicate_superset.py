"""Benchmark: replicate 50 dashboards prod -> QA with reconciler, beside Superset's own CLI importing the same bundle.

Starts real Superset 6.1.0 servers (the test bed's venv): a prod, and one fresh QA per contender.
Builds N dashboards in prod through the API (two charts each, with saved queries and a native
filter), then, in the same run:

- reconciler: `plan` + `apply` of a QA environment that replicates every prod dashboard onto
  QA's warehouse (one listing and one export of prod; four listings, one import and, with
  verification, one data request per chart in QA), then a second plan + apply (no changes);
- `superset import-dashboards -p bundle.zip` and `superset import-directory DIR --overwrite`
  (run with the Superset venv and each QA's config) of the same rewritten bundle.

Prints requests made and wall time for each. No assertions: the figures are the point.

    .venv/bin/python bench/replicate_superset.py [--dashboards 50]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test bed lives under tests/

from reconciler import service  # noqa: E402
from reconciler.systems.superset.client import SupersetClient  # noqa: E402
from reconciler.systems.superset.provider import SupersetProvider  # noqa: E402
from reconciler.systems.superset.rules.bundle import Bundle, build_import_zip, read_bundle  # noqa: E402
from reconciler.systems.superset.rules.desired import desired_bundle  # noqa: E402
from reconciler.systems.superset.spec import DatabaseConnection  # noqa: E402
from tests.testbeds.superset_bed import (  # noqa: E402
    SupersetInstance,
    as_dashboard_zip,
    ensure_superset_venv,
    start_superset,
    superset_env,
)
from tests.testbeds.superset_fixtures import (  # noqa: E402
    CUSTOMERS,
    CUSTOMERS_SQL,
    METRICS,
    SALES,
    ChartSpec,
    add_metric,
    form_data,
    query_context,
)

ENVIRONMENT = """\
environment: {name}
superset:
  url: {url}
  auth: {{username: admin, password: {{secretRef: {{env: SUPERSET_PASSWORD}}}}}}
  databases:
    warehouse: {{sqlalchemyUri: "{warehouse}"}}
{extra}"""
REPLICATE = """\
  replicate:
    from: prod
    dashboards: all
    databases: {warehouse: warehouse}
"""


def build_dashboards(client: SupersetClient, warehouse: Path, count: int) -> None:
    """`count` dashboards, each with a table on sales, a big number on customers and a region filter."""
    database_id = client.create_database("warehouse", f"sqlite:///{warehouse}", expose_in_sqllab=True)
    datasets = {SALES: client.create_dataset(database_id, SALES)}
    datasets[CUSTOMERS] = client.create_dataset(database_id, CUSTOMERS, sql=CUSTOMERS_SQL)
    for dataset, (metric, expression) in METRICS.items():
        add_metric(client, datasets[dataset], metric, expression)
    for index in range(count):
        slug = f"bench-{index:03d}"
        dashboard_id = client.create_dashboard({"dashboard_title": f"Bench {index:03d}", "slug": slug})
        charts = (
            ChartSpec(f"Sales by region {index:03d}", "table", SALES, ("region",)),
            ChartSpec(f"Customers {index:03d}", "big_number_total", CUSTOMERS),
        )
        ids = [
            client.create_chart(
                {
                    "slice_name": chart.name,
                    "viz_type": chart.viz_type,
                    "datasource_id": datasets[chart.dataset],
                    "datasource_type": "table",
                    "params": json.dumps(form_data(chart, datasets[chart.dataset])),
                    "query_context": json.dumps(query_context(chart, datasets[chart.dataset])),
                    "dashboards": [dashboard_id],
                }
            )
            for chart in charts
        ]
        uuids = {chart.id: chart.uuid for chart in client.list_charts() if chart.id in ids}
        client.update_dashboard(
            dashboard_id,
            {
                "position_json": json.dumps(layout(slug, ids, uuids)),
                "json_metadata": json.dumps(filters(slug, datasets[SALES])),
            },
        )


def layout(slug: str, chart_ids: list[int], uuids: dict[int, str]) -> dict[str, Any]:
    nodes = {
        f"CHART-{slug}-{n}": {
            "type": "CHART",
            "id": f"CHART-{slug}-{n}",
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID", "ROW-main"],
            "meta": {"chartId": chart_id, "uuid": uuids[chart_id], "width": 6, "height": 50},
        }
        for n, chart_id in enumerate(chart_ids)
    }
    return {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": ["ROW-main"], "parents": ["ROOT_ID"]},
        "ROW-main": {"type": "ROW", "id": "ROW-main", "children": list(nodes), "parents": ["ROOT_ID", "GRID_ID"]},
        **nodes,
    }


def filters(slug: str, sales_id: int) -> dict[str, Any]:
    return {
        "native_filter_configuration": [
            {
                "id": f"NATIVE_FILTER-{slug}",
                "name": "Region",
                "filterType": "filter_select",
                "type": "NATIVE_FILTER",
                "targets": [{"datasetId": sales_id, "column": {"name": "region"}}],
                "controlValues": {"multiSelect": True},
                "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
                "cascadeParentIds": [],
                "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
            }
        ]
    }


def start(names: list[str], root: Path) -> dict[str, SupersetInstance]:
    """Instances side by side; a name's first part picks its warehouse rows (`qa-cli` gets QA's)."""
    ensure_superset_venv()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(start_superset, name.split("-")[0], None, root / name) for name in names}
        return {name: future.result() for name, future in futures.items()}


@dataclass(frozen=True)
class Run:
    plan_seconds: float
    apply_seconds: float
    requests: int
    writes: int
    source_requests: int
    actions: int
    notes: list[str]

    def line(self, label: str) -> str:
        return (
            f"  {label:<44} {self.plan_seconds + self.apply_seconds:6.2f} s (plan {self.plan_seconds:.2f} s, "
            f"apply {self.apply_seconds:.2f} s), {self.requests} requests to qa ({self.writes} writes), "
            f"{self.source_requests} to prod, {self.actions} planned actions"
        )


def reconciler_run(root: Path, env: str, environ: dict[str, str]) -> Run:
    """One plan + apply, timed apart, with the requests each Superset answered."""
    with service.open_session(root, env, environ, systems=["superset"]) as session:
        started = time.perf_counter()
        plan = service.make_plan(session)
        planned = time.perf_counter()
        report = service.apply_plan(session, plan)
        applied = time.perf_counter()
        service.raise_for(report)
        provider = session.providers["superset"]
        assert isinstance(provider, SupersetProvider)
        source = provider.source_client.requests_made if provider.source_client else 0
        target = provider.client
        return Run(
            planned - started,
            applied - planned,
            target.requests_made,
            target.writes_made,
            source,
            len(plan.actions),
            report.notes,
        )


def cli_run(instance: SupersetInstance, args: list[str]) -> float:
    venv = ensure_superset_venv()
    env = superset_env(venv, instance.workdir / "superset_config.py", instance.workdir)
    started = time.perf_counter()
    result = subprocess.run([str(venv / "bin" / "superset"), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or "Traceback" in result.stderr:
        print(f"  superset {args[0]} failed (exit {result.returncode}): {result.stderr[-600:]}")
    return elapsed


def cli_bundle(source: Bundle, instance: SupersetInstance) -> bytes:
    connection = DatabaseConnection.model_validate({"sqlalchemyUri": instance.warehouse_uri})
    rewritten = desired_bundle(Bundle(), {"warehouse": connection}, source, {"warehouse": "warehouse"}, "prod")
    return build_import_zip(rewritten)


def dashboards_in(instance: SupersetInstance) -> int:
    with SupersetClient(instance.url, username="admin", password="admin") as client:
        return len(client.list_dashboards())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        instances = start(["prod", "qa", "qa-cli-zip", "qa-cli-dir"], root / "servers")
        try:
            print(f"Started 4 Superset servers in {time.perf_counter() - started:.1f} s")
            prod, qa = instances["prod"], instances["qa"]
            with SupersetClient(prod.url, username="admin", password="admin") as client:
                started = time.perf_counter()
                build_dashboards(client, prod.warehouse_path, args.dashboards)
                elapsed = time.perf_counter() - started
                print(f"Built {args.dashboards} dashboards in prod through the API in {elapsed:.1f} s")
                listed = client.list_dashboards()
                source = read_bundle(client.export_dashboards([d.id for d in listed]))
            charts = len(source.of("charts"))

            project = root / "project"
            (project / "environments").mkdir(parents=True)
            for name, instance, extra in (("prod", prod, "  dashboards: all\n"), ("qa", qa, REPLICATE)):
                text = ENVIRONMENT.format(name=name, url=instance.url, warehouse=instance.warehouse_uri, extra=extra)
                (project / "environments" / f"{name}.yaml").write_text(text)
            environ = {"SUPERSET_PASSWORD": "admin", "RECONCILER_FINGERPRINT_KEY": "bench"}

            first = reconciler_run(project, "qa", environ)
            second = reconciler_run(project, "qa", environ)
            zip_path = root / "bundle.zip"
            zip_path.write_bytes(as_dashboard_zip(cli_bundle(source, instances["qa-cli-zip"])))
            zip_seconds = cli_run(instances["qa-cli-zip"], ["import-dashboards", "-p", str(zip_path), "-u", "admin"])
            directory = root / "bundle-dir"
            with zipfile.ZipFile(io.BytesIO(cli_bundle(source, instances["qa-cli-dir"]))) as archive:
                for name in archive.namelist():
                    target = directory / name.split("/", 1)[1]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
            dir_seconds = cli_run(instances["qa-cli-dir"], ["import-directory", str(directory), "--overwrite"])

            print(f"\nReplicating {args.dashboards} dashboards ({charts} charts, 2 datasets, 1 database) prod -> qa:")
            print(first.line("reconciler plan + apply (import + verify):"))
            print(f"  {'':<44} ({'; '.join(first.notes)})")
            print(second.line("reconciler plan + apply again (no changes):"))
            for label, seconds, name in (
                ("superset import-dashboards -p bundle.zip:", zip_seconds, "qa-cli-zip"),
                ("superset import-directory DIR --overwrite:", dir_seconds, "qa-cli-dir"),
            ):
                count = dashboards_in(instances[name])
                print(f"  {label:<44} {seconds:6.2f} s (one process, no verification; {count} dashboards in its QA)")
            print(f"  reconciler's QA holds {dashboards_in(qa)} dashboards")
        finally:
            for instance in instances.values():
                instance.stop()


if __name__ == "__main__":
    main()
