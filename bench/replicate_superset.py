"""Benchmark: replicate N dashboards prod -> QA with reconciler, beside Superset's own CLI and preset-cli.

For each N (50 and 100 by default) starts real Superset 6.1.0 servers (the test bed's venv): a
prod, and one fresh QA per contender. Builds N dashboards in prod through the API (two charts
each, each chart with a query of its own, most with a saved query context, and a native filter),
then, in the same run:

- reconciler: `plan` + `apply` of a QA environment that replicates every prod dashboard onto
  QA's warehouse (one listing and one export of prod; four listings, one import and, with
  verification, one listing and one export of the charts, then one chart data request per batch
  of up to 20 charts of one dataset and viz type, 4 at a time, in QA), then a second plan +
  apply (no changes), and the same replication with `verify: false` into another QA;
- `superset import-dashboards -p bundle.zip` and `superset import-directory DIR --overwrite`
  (run with the Superset venv and each QA's config) of the same rewritten bundle;
- preset-cli, if installed in .cache/preset-venv (`python3 -m venv .cache/preset-venv &&
  .cache/preset-venv/bin/pip install preset-cli`): `superset-cli URL export-assets DIR` from prod,
  the database file pointed at QA's warehouse, `superset-cli URL sync native DIR --overwrite`.

Prints requests made and wall time for each, and the fastest peer's time over reconciler's.
No assertions: the figures are the point. `--profile` profiles the first reconciler run.

    .venv/bin/python bench/replicate_superset.py [--dashboards 50 100] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
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


SALES_VIZ = ("table", "echarts_timeseries_bar", "big_number_total")
SALES_BY = ("region", "product", "order_date")
CUSTOMERS_VIZ = ("big_number_total", "table")


def varied_charts(index: int) -> tuple[ChartSpec, ChartSpec]:
    """Dashboard `index`'s two charts: viz type and grouping cycle with the index, so neighbouring
    dashboards do not ask the same query of the same dataset in the same shape."""
    sales_viz, customers_viz = SALES_VIZ[index % 3], CUSTOMERS_VIZ[index % 2]
    by = (SALES_BY[index % 3],) if sales_viz != "big_number_total" else ()
    return (
        ChartSpec(f"Sales by region {index:03d}", sales_viz, SALES, by),
        ChartSpec(f"Customers {index:03d}", customers_viz, CUSTOMERS, ("country",) if customers_viz == "table" else ()),
    )


def chart_fields(chart: ChartSpec, dataset_id: int, index: int) -> dict[str, Any]:
    """The chart's params and saved query context, with a filter and row limit of its own: sales of at
    least `index` (amount), customers with an id of at least `index % 7`. Every 10th chart has no
    saved query context (as a chart made through the API has), so verification builds it from params."""
    column, value = ("amount", index) if chart.dataset == SALES else ("id", index % 7)
    params = form_data(chart, dataset_id)
    params["adhoc_filters"] = [
        {"expressionType": "SIMPLE", "clause": "WHERE", "subject": column, "operator": ">=", "comparator": value}
    ]
    if "row_limit" in params:
        params["row_limit"] = 100 + index
    fields: dict[str, Any] = {"params": json.dumps(params)}
    if index % 10 != 9:
        context = query_context(chart, dataset_id)
        context["form_data"] = params
        context["queries"][0] |= {"filters": [{"col": column, "op": ">=", "val": value}], "row_limit": 100 + index}
        fields["query_context"] = json.dumps(context)
    return fields


def build_dashboards(client: SupersetClient, warehouse: Path, count: int) -> None:
    """`count` dashboards, each with a chart on sales, one on customers and a region filter; each chart
    runs a query of its own (`varied_charts`, `chart_fields`)."""
    database_id = client.create_database("warehouse", f"sqlite:///{warehouse}", expose_in_sqllab=True)
    datasets = {SALES: client.create_dataset(database_id, SALES)}
    datasets[CUSTOMERS] = client.create_dataset(database_id, CUSTOMERS, sql=CUSTOMERS_SQL)
    for dataset, (metric, expression) in METRICS.items():
        add_metric(client, datasets[dataset], metric, expression)
    for index in range(count):
        slug = f"bench-{index:03d}"
        dashboard_id = client.create_dashboard({"dashboard_title": f"Bench {index:03d}", "slug": slug})
        ids = [
            client.create_chart(
                {
                    "slice_name": chart.name,
                    "viz_type": chart.viz_type,
                    "datasource_id": datasets[chart.dataset],
                    "datasource_type": "table",
                    **chart_fields(chart, datasets[chart.dataset], index),
                    "dashboards": [dashboard_id],
                }
            )
            for chart in varied_charts(index)
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
            f"  {label:<52} {self.plan_seconds + self.apply_seconds:6.2f} s (plan {self.plan_seconds:.2f} s, "
            f"apply {self.apply_seconds:.2f} s), {self.requests} requests to qa ({self.writes} writes), "
            f"{self.source_requests} to prod, {self.actions} planned actions"
        )


def reconciler_run(root: Path, env: str, environ: dict[str, str], profile: bool = False) -> Run:
    """One plan + apply, timed apart, with the requests each Superset answered (and, with `profile`, where
    this process spent its time: the top functions by own time, threads waiting on sockets excluded)."""
    if profile:
        profiler = cProfile.Profile()
        run = profiler.runcall(reconciler_run, root, env, environ)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        return run
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


def preset_venv() -> Path | None:
    """preset-cli's own venv (`pip install preset-cli` into .cache/preset-venv), if it was installed."""
    cli = REPO / ".cache" / "preset-venv" / "bin" / "superset-cli"
    if not cli.exists():
        return None
    interpreter = cli.read_text().splitlines()[0].removeprefix("#!").strip()  # a venv made at another path
    return cli.parents[1] if Path(interpreter).exists() else None


def preset_run(venv: Path, prod: SupersetInstance, qa: SupersetInstance, scratch: Path) -> float:
    """`superset-cli URL export-assets DIR` from prod, QA's warehouse put in the database file, then
    `superset-cli URL sync native DIR --overwrite` into QA: one wall time for the three."""
    cli = [str(venv / "bin" / "superset-cli"), "--loglevel", "ERROR", "-u", "admin", "-p", "admin"]
    directory = scratch / "preset-assets"
    directory.mkdir()
    started = time.perf_counter()
    steps = (
        [*cli, prod.url, "export-assets", str(directory)],
        [*cli, qa.url, "sync", "native", str(directory), "--overwrite"],
    )
    for step, command in enumerate(steps):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or "Traceback" in result.stderr:
            print(f"  superset-cli {command[8]} failed (exit {result.returncode}): {result.stderr[-600:]}")
        if step == 0:
            for database in (directory / "databases").glob("*.yaml"):
                database.write_text(database.read_text().replace(prod.warehouse_uri, qa.warehouse_uri))
    return time.perf_counter() - started


def replicate(size: int, scratch: Path, profile: bool) -> dict[str, float]:
    """Every contender at one size, on fresh servers; prints the figures and returns the wall times."""
    names = ["prod", "qa", "qa-fast", "qa-cli-zip", "qa-cli-dir"]
    preset = preset_venv()
    names += ["qa-preset"] if preset else []
    root = scratch / f"n{size}"
    started = time.perf_counter()
    instances = start(names, root / "servers")
    try:
        print(f"\nStarted {len(names)} Superset servers in {time.perf_counter() - started:.1f} s")
        prod, qa = instances["prod"], instances["qa"]
        with SupersetClient(prod.url, username="admin", password="admin") as client:
            started = time.perf_counter()
            build_dashboards(client, prod.warehouse_path, size)
            print(f"Built {size} dashboards in prod through the API in {time.perf_counter() - started:.1f} s")
            listed = client.list_dashboards()
            source = read_bundle(client.export_dashboards([d.id for d in listed]))
        charts = len(source.of("charts"))

        project = root / "project"
        (project / "environments").mkdir(parents=True)
        environments = (
            ("prod", prod, "  dashboards: all\n"),
            ("qa", qa, REPLICATE),
            ("qa-fast", instances["qa-fast"], "  verify: false\n" + REPLICATE),
        )
        for name, instance, extra in environments:
            text = ENVIRONMENT.format(name=name, url=instance.url, warehouse=instance.warehouse_uri, extra=extra)
            (project / "environments" / f"{name}.yaml").write_text(text)
        environ = {"SUPERSET_PASSWORD": "admin", "RECONCILER_FINGERPRINT_KEY": "bench"}

        first = reconciler_run(project, "qa", environ, profile)
        second = reconciler_run(project, "qa", environ)
        fast = reconciler_run(project, "qa-fast", environ)
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
        peers = {
            "superset import-dashboards -p bundle.zip:": (zip_seconds, "qa-cli-zip"),
            "superset import-directory DIR --overwrite:": (dir_seconds, "qa-cli-dir"),
        }
        if preset:
            label = "preset-cli export-assets + sync native --overwrite:"
            peers[label] = (preset_run(preset, prod, instances["qa-preset"], root), "qa-preset")

        print(f"\nReplicating {size} dashboards ({charts} charts, 2 datasets, 1 database) prod -> qa:")
        print(first.line("reconciler plan + apply (import + verify):"))
        print(f"  {'':<52} ({'; '.join(first.notes)})")
        print(fast.line("reconciler plan + apply, verify: false:"))
        print(second.line("reconciler plan + apply again (no changes):"))
        complete = []  # a peer that failed (fewer dashboards in its QA) is no yardstick
        for label, (seconds, name) in peers.items():
            count = dashboards_in(instances[name])
            print(f"  {label:<52} {seconds:6.2f} s (no verification; {count} dashboards in its QA)")
            complete += [seconds] if count == size else []
        if not preset:
            print("  preset-cli: not installed in .cache/preset-venv (or that venv was made at another path)")
        print(f"  reconciler's QAs hold {dashboards_in(qa)} and {dashboards_in(instances['qa-fast'])} dashboards")
        fastest = min(complete or [seconds for seconds, _ in peers.values()])
        for label, run in (("verified", first), ("verify: false", fast), ("no changes", second)):
            ratio = fastest / (run.plan_seconds + run.apply_seconds)
            print(f"  fastest peer / reconciler {label}: {ratio:.2f}x")
        return {"verified": first.plan_seconds + first.apply_seconds, "fastest peer": fastest}
    finally:
        for instance in instances.values():
            instance.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--profile", action="store_true", help="profile the first reconciler run of each size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as scratch:
        for size in args.dashboards:
            replicate(size, Path(scratch), args.profile)


if __name__ == "__main__":
    main()
