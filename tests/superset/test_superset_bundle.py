"""The Superset bundle core with plain data, then replication prod -> QA through two real Superset servers."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any

import pytest
import yaml

from reconciler.systems.superset.client import SupersetClient
from reconciler.systems.superset.rules.bundle import (
    Asset,
    Bundle,
    BundleError,
    DatabaseTarget,
    build_import_zip,
    database_file,
    from_files,
    normalise,
    normalise_bundle,
    read_bundle,
    rewrite_databases,
    rewrite_dataset_uuids,
    to_files,
)
from tests.superset.conftest import SupersetPair
from tests.testbeds.superset_bed import QA_ONLY_REGION
from tests.testbeds.superset_fixtures import FixtureIds, QaBaseline

DB_UUID = "d0000000-0000-4000-8000-000000000001"
DS_UUID = "da000000-0000-4000-8000-000000000002"
CHART_A = "c0000000-0000-4000-8000-00000000000a"
CHART_B = "c0000000-0000-4000-8000-00000000000b"
CHART_LONELY = "c0000000-0000-4000-8000-00000000000c"
DASH_1 = "b0000000-0000-4000-8000-000000000001"
DASH_2 = "b0000000-0000-4000-8000-000000000002"


def database(uri: str = "postgresql://reporter:XXXXXXXXXX@warehouse.prod:5432/analytics") -> dict[str, Any]:
    return {"database_name": "analytics", "sqlalchemy_uri": uri, "uuid": DB_UUID, "version": "1.0.0"}


def dataset(columns: tuple[str, ...] = ("amount", "region")) -> dict[str, Any]:
    return {
        "table_name": "sales",
        "schema": "public",
        "uuid": DS_UUID,
        "database_uuid": DB_UUID,
        "metrics": [{"metric_name": "total", "expression": "SUM(amount)"}],
        "columns": [{"column_name": name, "type": "TEXT"} for name in columns],
        "version": "1.0.0",
    }


def chart(uuid: str, name: str, dataset_id: int, chart_id: int, metric: str = "total") -> dict[str, Any]:
    context = {
        "datasource": {"id": dataset_id, "type": "table"},
        "queries": [{"columns": ["region"], "metrics": [metric], "datasource": {"id": dataset_id, "type": "table"}}],
        "form_data": {"datasource": f"{dataset_id}__table", "slice_id": chart_id, "metrics": [metric]},
    }
    return {
        "slice_name": name,
        "viz_type": "table",
        "params": {"datasource": f"{dataset_id}__table", "slice_id": chart_id, "metrics": [metric]},
        "query_context": json.dumps(context),
        "uuid": uuid,
        "dataset_uuid": DS_UUID,
        "version": "1.0.0",
    }


def chart_node(node_id: str, chart_id: int, uuid: str, width: int = 4) -> dict[str, Any]:
    return {
        "type": "CHART",
        "id": node_id,
        "children": [],
        "parents": ["ROOT_ID", "GRID_ID", "ROW-1"],
        "meta": {"chartId": chart_id, "uuid": uuid, "width": width, "height": 50},
    }


def dashboard(uuid: str, slug: str, charts: dict[str, int], width: int = 4) -> dict[str, Any]:
    """A dashboard placing `charts` (uuid -> this instance's chart id), with a native filter."""
    nodes = {f"CHART-{n}": chart_node(f"CHART-{n}", cid, cu, width) for n, (cu, cid) in enumerate(charts.items())}
    first_id = next(iter(charts.values()))
    return {
        "dashboard_title": slug.replace("-", " ").title(),
        "slug": slug,
        "uuid": uuid,
        "version": "1.0.0",
        "position": {
            "DASHBOARD_VERSION_KEY": "v2",
            "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
            "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": ["ROW-1"], "parents": ["ROOT_ID"]},
            "ROW-1": {"type": "ROW", "id": "ROW-1", "children": list(nodes), "parents": ["ROOT_ID", "GRID_ID"]},
            **nodes,
        },
        "metadata": {
            "native_filter_configuration": [
                {
                    "id": "NATIVE_FILTER-1",
                    "targets": [{"datasetUuid": DS_UUID, "column": {"name": "region"}}],
                    "scope": {"rootPath": ["ROOT_ID"], "excluded": [first_id]},
                    "chartsInScope": sorted(charts.values()),
                }
            ],
            "chart_configuration": {
                str(first_id): {"id": first_id, "crossFilters": {"scope": "global", "chartsInScope": [first_id]}}
            },
            "timed_refresh_immune_slices": [first_id],
        },
    }


def export_zip(files: dict[str, dict[str, Any]], root: str = "dashboard_export_20240101T000000") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        meta = {"version": "1.0.0", "type": "Dashboard", "timestamp": "2024-01-01T00:00:00+00:00"}
        prefix = f"{root}/" if root else ""
        archive.writestr(f"{prefix}metadata.yaml", yaml.safe_dump(meta))
        for path, content in files.items():
            archive.writestr(f"{prefix}{path}", yaml.safe_dump(content, sort_keys=False))
    return buffer.getvalue()


def prod_like(dataset_id: int = 21, ids: tuple[int, int, int] = (1, 2, 3)) -> dict[str, dict[str, Any]]:
    """An export: two dashboards sharing chart A, chart B on the second, and a chart on none."""
    a, b, lonely = ids
    return {
        "databases/analytics.yaml": database(),
        "datasets/analytics/sales_21.yaml": dataset(),
        f"charts/Sales_{a}.yaml": chart(CHART_A, "Sales", dataset_id, a),
        f"charts/Sales_by_region_{b}.yaml": chart(CHART_B, "Sales by region", dataset_id, b),
        f"charts/Lonely_{lonely}.yaml": chart(CHART_LONELY, "Lonely", dataset_id, lonely),
        "dashboards/Overview_1.yaml": dashboard(DASH_1, "overview", {CHART_A: a}),
        "dashboards/Regions_2.yaml": dashboard(DASH_2, "regions", {CHART_B: b, CHART_A: a}),
    }


# ---- reading ----------------------------------------------------------------------------------


def test_read_bundle_keys_assets_by_kind_and_uuid_without_the_export_folder() -> None:
    files = prod_like() | {"themes/Dark.yaml": {"uuid": "t1", "theme_name": "Dark"}}
    bundle = read_bundle(export_zip(files))
    assert sorted(bundle.assets["charts"]) == [CHART_A, CHART_B, CHART_LONELY]
    assert bundle.assets["databases"][DB_UUID].path == "databases/analytics.yaml"
    assert bundle.assets["datasets"][DS_UUID].path == "datasets/analytics/sales_21.yaml"
    assert bundle.assets["dashboards"][DASH_2].content["position"]["ROW-1"]["children"] == ["CHART-0", "CHART-1"]
    assert bundle.find("charts", "Sales by region") is bundle.assets["charts"][CHART_B]
    assert list(bundle.other_files) == ["themes/Dark.yaml"]
    rootless = read_bundle(export_zip(files, root=""))
    assert rootless.assets["databases"][DB_UUID].path == "databases/analytics.yaml"
    assert sorted(rootless.assets["charts"]) == sorted(bundle.assets["charts"])


def test_read_bundle_refuses_a_non_zip_an_asset_without_uuid_and_a_duplicate_uuid() -> None:
    with pytest.raises(BundleError, match="not a ZIP"):
        read_bundle(b"<!doctype html>")
    with pytest.raises(BundleError, match=r"charts/x.yaml: no uuid"):
        read_bundle(export_zip({"charts/x.yaml": {"slice_name": "x"}}))
    twice = {"charts/a.yaml": chart(CHART_A, "a", 1, 1), "charts/b.yaml": chart(CHART_A, "b", 1, 2)}
    with pytest.raises(BundleError, match=r"also in charts/a\.yaml"):
        read_bundle(export_zip(twice))


# ---- normalising --------------------------------------------------------------------------------


def test_the_same_assets_with_another_instances_ids_normalise_equal() -> None:
    prod = read_bundle(export_zip(prod_like(dataset_id=21, ids=(1, 2, 3))))
    qa = read_bundle(export_zip(prod_like(dataset_id=5, ids=(40, 41, 42))))
    assert prod.assets["charts"][CHART_A].content != qa.assets["charts"][CHART_A].content
    assert prod.assets["dashboards"][DASH_2].content != qa.assets["dashboards"][DASH_2].content
    assert normalise_bundle(prod) == normalise_bundle(qa)


def test_normalised_dashboards_name_charts_by_uuid_and_drop_derived_scopes() -> None:
    asset = Asset("dashboards", DASH_2, "dashboards/x.yaml", dashboard(DASH_2, "regions", {CHART_B: 2, CHART_A: 1}))
    content = normalise(asset)
    native_filter = content["metadata"]["native_filter_configuration"][0]
    assert native_filter["scope"]["excluded"] == [CHART_B]
    assert "chartsInScope" not in native_filter
    assert list(content["metadata"]["chart_configuration"]) == [CHART_B]
    assert content["metadata"]["timed_refresh_immune_slices"] == [CHART_B]
    assert content["position"]["CHART-0"]["meta"] == {"uuid": CHART_B, "width": 4, "height": 50}
    assert "version" not in content


def test_real_changes_survive_normalising() -> None:
    base = read_bundle(export_zip(prod_like()))
    wider = prod_like()
    wider["dashboards/Regions_2.yaml"] = dashboard(DASH_2, "regions", {CHART_B: 2, CHART_A: 1}, width=6)
    other_metric = prod_like()
    other_metric["charts/Sales_1.yaml"] = chart(CHART_A, "Sales", 21, 1, metric="count")
    for changed in (wider, other_metric):
        assert normalise_bundle(read_bundle(export_zip(changed))) != normalise_bundle(base)


def test_rows_an_export_invents_for_charts_missing_from_the_layout_normalise_equal() -> None:
    """Superset appends such charts in `ROW-N-<random>` with `CHART-<random>` ids, in set order."""

    def with_appended(row: str, chart_nodes: list[tuple[str, str, int]]) -> Asset:
        content = dashboard(DASH_1, "overview", {CHART_A: 1})
        position = content["position"]
        position["GRID_ID"]["children"].append(row)
        position[row] = {
            "type": "ROW",
            "id": row,
            "children": [node for node, _, _ in chart_nodes],
            "meta": {"0": "ROOT_ID", "background": "BACKGROUND_TRANSPARENT"},
            "parents": ["ROOT_ID", "GRID_ID"],
        }
        for node, uuid, chart_id in chart_nodes:
            position[node] = chart_node(node, chart_id, uuid) | {"parents": ["ROOT_ID", "GRID_ID", row]}
        return Asset("dashboards", DASH_1, "dashboards/x.yaml", content)

    first = with_appended("ROW-N-AAAA1111", [("CHART-KRCYSND3", CHART_B, 2), ("CHART-JSGX5N9U", CHART_LONELY, 3)])
    second = with_appended("ROW-N-ZZZZ9999", [("CHART-141RU8PH", CHART_LONELY, 3), ("CHART-Q0Q0Q0Q0", CHART_B, 2)])
    assert normalise(first) == normalise(second)


def test_datasets_normalise_regardless_of_column_order_and_databases_of_the_password() -> None:
    one = Asset("datasets", DS_UUID, "d.yaml", dataset(("amount", "region")))
    other = Asset("datasets", DS_UUID, "d.yaml", dataset(("region", "amount")))
    assert normalise(one) == normalise(other)
    masked = Asset("databases", DB_UUID, "db.yaml", database())
    real = Asset(
        "databases", DB_UUID, "db.yaml", database("postgresql://reporter:s3cret@warehouse.prod:5432/analytics")
    )
    assert normalise(masked) == normalise(real)
    assert "s3cret" not in json.dumps(normalise(real))


# ---- files for git ------------------------------------------------------------------------------


def test_to_files_lays_out_dashboards_with_their_charts_deterministically() -> None:
    bundle = read_bundle(export_zip(prod_like()))
    files = to_files(bundle)
    assert sorted(files) == [
        "charts/lonely_c0000000.yaml",
        "dashboards/overview/charts/sales_c0000000.yaml",
        "dashboards/overview/dashboard.yaml",
        "dashboards/regions/charts/sales-by-region_c0000000.yaml",
        "dashboards/regions/dashboard.yaml",
        "databases/analytics.yaml",
        "datasets/analytics/public/sales.yaml",
    ]
    assert to_files(read_bundle(export_zip(dict(reversed(prod_like().items()))))) == files
    chart_file = yaml.safe_load(files["dashboards/overview/charts/sales_c0000000.yaml"])
    assert chart_file["query_context"]["queries"][0]["metrics"] == ["total"]  # YAML, not a JSON string
    assert "version" not in chart_file
    text = files["dashboards/regions/dashboard.yaml"]
    assert text.index("dashboard_title:") < text.index("metadata:") < text.index("uuid:")  # sorted keys


def test_from_files_reads_back_an_importable_bundle_equal_to_the_export() -> None:
    exported = read_bundle(export_zip(prod_like() | {"themes/Dark.yaml": {"uuid": "t1"}}))
    back = from_files(to_files(exported))
    assert normalise_bundle(back) == normalise_bundle(exported)
    assert back.assets["charts"][CHART_B].path == "charts/sales-by-region_c0000000.yaml"
    assert back.assets["dashboards"][DASH_1].path == "dashboards/overview.yaml"
    assert isinstance(back.assets["charts"][CHART_B].content["query_context"], str)
    assert back.assets["charts"][CHART_B].content["version"] == "1.0.0"
    assert back.other_files == {"themes/Dark.yaml": "uuid: t1\n"}


def unsaved_layout_export(row: str, nodes: list[tuple[str, str]], dataset_id: int, ids: dict[str, int]) -> bytes:
    """What Superset exports for a dashboard without `position_json` (created through the API): a
    default layout with its charts appended in a `ROW-N-<random>` row, as `CHART-<random>` nodes
    in set order, carrying this instance's chart and dataset ids."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"children": ["GRID_ID"], "id": "ROOT_ID", "type": "ROOT"},
        "GRID_ID": {"children": [row], "id": "GRID_ID", "parents": ["ROOT_ID"], "type": "GRID"},
        "HEADER_ID": {"id": "HEADER_ID", "meta": {"text": "Made by API"}, "type": "HEADER"},
        row: {
            "children": [node for node, _ in nodes],
            "id": row,
            "meta": {"0": "ROOT_ID", "background": "BACKGROUND_TRANSPARENT"},
            "parents": ["ROOT_ID", "GRID_ID"],
            "type": "ROW",
        },
    }
    for node, uuid in nodes:
        position[node] = chart_node(node, ids[uuid], uuid) | {"parents": ["ROOT_ID", "GRID_ID", row]}
    made = {"dashboard_title": "Made by API", "slug": "made-by-api", "uuid": DASH_1, "version": "1.0.0"}
    return export_zip(
        {
            "databases/analytics.yaml": database(),
            "datasets/analytics/sales.yaml": dataset(),
            "charts/Sales.yaml": chart(CHART_A, "Sales", dataset_id, ids[CHART_A]),
            "charts/Region.yaml": chart(CHART_B, "Sales by region", dataset_id, ids[CHART_B]),
            "dashboards/Made.yaml": made | {"position": position},
        }
    )


def test_a_dashboard_without_a_saved_layout_is_written_to_the_same_bytes_without_instance_ids() -> None:
    first = unsaved_layout_export(
        "ROW-N-APRY9XRX", [("CHART-M1CYNET7", CHART_A), ("CHART-0KQ2LX9A", CHART_B)], 21, {CHART_A: 1, CHART_B: 2}
    )
    again = unsaved_layout_export(
        "ROW-N-Q7T3ZB1C", [("CHART-JX5V2W8D", CHART_B), ("CHART-H4N6P0RS", CHART_A)], 21, {CHART_A: 1, CHART_B: 2}
    )
    elsewhere = unsaved_layout_export(
        "ROW-N-8B8B8B8B", [("CHART-7C7C7C7C", CHART_A), ("CHART-6D6D6D6D", CHART_B)], 5, {CHART_A: 40, CHART_B: 41}
    )
    files = to_files(read_bundle(first))
    assert to_files(read_bundle(again)) == files
    assert to_files(read_bundle(elsewhere)) == files
    text = "".join(files.values())
    for instance_id in ("chartId", "__table", "slice_id", "datasource", "CHART-M1CYNET7", "ROW-N-APRY9XRX"):
        assert instance_id not in text
    assert to_files(from_files(files)) == files  # what pull wrote is what pull writes


def test_an_import_of_files_without_ids_gives_each_chart_one_id_in_the_layout_and_the_metadata() -> None:
    """Superset's import maps `chartId`s to the target's ids (a node without one fails it) and rewrites
    the metadata's chart ids through that map: the ids must agree with each other."""
    exported = read_bundle(export_zip(prod_like(dataset_id=5, ids=(40, 41, 42))))
    files = to_files(exported)
    assert "chartId" not in files["dashboards/regions/dashboard.yaml"]
    imported = read_bundle(build_import_zip(from_files(files)))
    regions = imported.assets["dashboards"][DASH_2].content
    ids = {node["meta"]["uuid"]: node["meta"]["chartId"] for node in regions["position"].values() if "meta" in node}
    region_id = ids[CHART_B]
    assert sorted(ids.values()) == [1, 2]
    metadata = regions["metadata"]
    assert metadata["native_filter_configuration"][0]["scope"]["excluded"] == [region_id]
    assert metadata["chart_configuration"] == {str(region_id): {"id": region_id, "crossFilters": {"scope": "global"}}}
    assert metadata["timed_refresh_immune_slices"] == [region_id]
    assert normalise_bundle(imported) == normalise_bundle(exported)


def test_to_files_keeps_two_dashboards_without_slug_and_the_same_title_apart() -> None:
    one = dashboard(DASH_1, "same", {CHART_A: 1}) | {"slug": None}
    two = dashboard(DASH_2, "same", {CHART_B: 2}) | {"slug": None}
    files = to_files(read_bundle(export_zip({"dashboards/a.yaml": one, "dashboards/b.yaml": two})))
    assert sorted(path for path in files if path.endswith("dashboard.yaml")) == [
        f"dashboards/same_{DASH_1}/dashboard.yaml",
        f"dashboards/same_{DASH_2}/dashboard.yaml",
    ]


# ---- rewriting and import bundles ----------------------------------------------------------------


def test_rewrite_databases_moves_the_database_and_its_datasets_to_the_target() -> None:
    bundle = read_bundle(export_zip(prod_like()))
    qa_uuid = "d0000000-0000-4000-8000-0000000000aa"
    target = DatabaseTarget(uuid=qa_uuid, name="analytics_qa", sqlalchemy_uri="postgresql://r:pw@warehouse.qa/a")
    moved = rewrite_databases(bundle, {"analytics": target})
    assert list(moved.assets["databases"]) == [qa_uuid]
    qa_db = moved.assets["databases"][qa_uuid]
    assert (qa_db.name, qa_db.path, qa_db.content["sqlalchemy_uri"]) == (
        "analytics_qa",
        "databases/analytics-qa.yaml",
        "postgresql://r:pw@warehouse.qa/a",
    )
    assert moved.assets["datasets"][DS_UUID].content["database_uuid"] == qa_uuid
    assert bundle.assets["datasets"][DS_UUID].content["database_uuid"] == DB_UUID  # the input is untouched


def test_rewrite_databases_refuses_to_leave_a_database_pointing_at_the_source() -> None:
    bundle = read_bundle(export_zip(prod_like()))
    with pytest.raises(BundleError, match=r"'analytics'.*no target database"):
        rewrite_databases(bundle, {"some-other-db": DatabaseTarget(name="x")})
    assert rewrite_databases(bundle, {}, require_all=False) == bundle


def test_rewrite_dataset_uuids_repoints_charts_and_native_filters() -> None:
    bundle = read_bundle(export_zip(prod_like()))
    qa_dataset = "da000000-0000-4000-8000-0000000000aa"
    moved = rewrite_dataset_uuids(bundle, {DS_UUID: qa_dataset})
    assert list(moved.assets["datasets"]) == [qa_dataset]
    assert {c.content["dataset_uuid"] for c in moved.of("charts")} == {qa_dataset}
    targets = moved.assets["dashboards"][DASH_1].content["metadata"]["native_filter_configuration"][0]["targets"]
    assert targets[0]["datasetUuid"] == qa_dataset


def test_build_import_zip_makes_a_deterministic_assets_bundle_with_uri_overrides() -> None:
    bundle = read_bundle(export_zip(prod_like()))
    qa_uri = "postgresql://reporter:real-password@warehouse.qa:5432/analytics"
    first = build_import_zip(bundle, {"analytics": qa_uri})
    assert build_import_zip(copy.deepcopy(bundle), {DB_UUID: qa_uri}) == first
    archive = zipfile.ZipFile(io.BytesIO(first))
    names = archive.namelist()
    assert all(name.startswith("reconciler_import/") for name in names)
    assert yaml.safe_load(archive.read("reconciler_import/metadata.yaml")) == {"version": "1.0.0", "type": "assets"}
    assert yaml.safe_load(archive.read("reconciler_import/databases/analytics.yaml"))["sqlalchemy_uri"] == qa_uri
    assert normalise_bundle(read_bundle(build_import_zip(bundle))) == normalise_bundle(bundle)
    assert database_file(bundle, "analytics") == "databases/analytics.yaml"  # the key of the `passwords` field
    with pytest.raises(BundleError, match="not in the bundle: warehouse"):
        build_import_zip(bundle, {"warehouse": qa_uri})


def test_build_import_zip_turns_query_contexts_from_files_back_into_json_strings() -> None:
    back = from_files(to_files(read_bundle(export_zip(prod_like()))))
    edited = back.assets["charts"][CHART_A]
    content = edited.content | {"query_context": json.loads(edited.content["query_context"])}
    assets = {kind: dict(by_uuid) for kind, by_uuid in back.assets.items()}
    assets["charts"][CHART_A] = Asset("charts", CHART_A, edited.path, content)
    archive = zipfile.ZipFile(io.BytesIO(build_import_zip(Bundle(assets))))
    written = yaml.safe_load(archive.read(f"reconciler_import/{edited.path}"))
    assert json.loads(written["query_context"])["queries"][0]["metrics"] == ["total"]


# ---- against two real Superset servers -------------------------------------------------------------


def export_by_slug(client: SupersetClient, slugs: list[str]) -> bytes:
    ids = [d.id for d in client.list_dashboards() if d.slug in slugs]
    assert len(ids) == len(slugs)
    return client.export_dashboards(ids)


def test_a_prod_dashboard_replicated_to_qa_compares_equal_and_queries_qa_data(
    superset_pair: SupersetPair,
    prod_client: SupersetClient,
    qa_client: SupersetClient,
    prod_fixtures: FixtureIds,
    qa_baseline: QaBaseline,
) -> None:
    slugs = sorted(prod_fixtures.dashboard_ids)
    prod_bundle = read_bundle(export_by_slug(prod_client, slugs))
    assert normalise_bundle(read_bundle(export_by_slug(prod_client, slugs))) == normalise_bundle(prod_bundle)
    assert to_files(read_bundle(export_by_slug(prod_client, slugs))) == to_files(prod_bundle)

    # Replicate: prod's `warehouse` becomes QA's own `warehouse` connection (its uuid, QA's file).
    replicated = rewrite_databases(
        prod_bundle, {prod_fixtures.database_uuid: DatabaseTarget(uuid=qa_baseline.database_uuid)}
    )
    qa_client.import_assets(build_import_zip(replicated, {"warehouse": superset_pair.qa.warehouse_uri}), {})

    qa_bundle = read_bundle(export_by_slug(qa_client, slugs))
    prod_sales = prod_bundle.find("charts", "Sales by region")
    qa_sales = qa_bundle.find("charts", "Sales by region")
    assert prod_sales is not None and qa_sales is not None
    assert prod_sales.content["params"]["datasource"] != qa_sales.content["params"]["datasource"]  # ids differ
    expected = normalise_bundle(
        rewrite_databases(
            prod_bundle,
            {
                prod_fixtures.database_uuid: DatabaseTarget(
                    uuid=qa_baseline.database_uuid, sqlalchemy_uri=superset_pair.qa.warehouse_uri
                )
            },
        )
    )
    assert normalise_bundle(qa_bundle) == expected

    qa_databases = qa_client.list_databases()
    assert [(d.name, d.uuid) for d in qa_databases] == [("warehouse", qa_baseline.database_uuid)]
    qa_chart = next(c for c in qa_client.list_charts() if c.uuid == qa_sales.uuid)
    regions = {row["region"] for row in qa_client.chart_data(qa_chart.id)["result"][0]["data"]}
    assert QA_ONLY_REGION in regions
    prod_rows = prod_client.chart_data(prod_fixtures.chart_ids["Sales by region"])["result"][0]["data"]
    assert QA_ONLY_REGION not in {row["region"] for row in prod_rows}


def test_importing_a_new_database_uuid_under_an_existing_name_takes_the_existing_row_over(
    qa_client: SupersetClient, superset_pair: SupersetPair
) -> None:
    """The UUID trap `rewrite_databases` exists for: the import does not add a database, it
    rewrites the uuid of the one with the same name."""
    existing_id = qa_client.create_database("trap-check", superset_pair.qa.warehouse_uri)
    before = str(qa_client.get_database(existing_id)["uuid"])
    newcomer = "d0000000-0000-4000-8000-00000000beef"
    content = {"database_name": "trap-check", "sqlalchemy_uri": superset_pair.qa.warehouse_uri, "uuid": newcomer}
    bundle = Bundle({"databases": {newcomer: Asset("databases", newcomer, "databases/trap-check.yaml", content)}})
    qa_client.import_assets(build_import_zip(bundle), {})
    rows = [d for d in qa_client.list_databases() if d.name == "trap-check"]
    assert [(d.id, d.uuid) for d in rows] == [(existing_id, newcomer)]
    assert before != newcomer
    qa_client.delete_database(existing_id)


def test_files_pulled_from_prod_import_back_into_prod_unchanged(
    prod_client: SupersetClient, prod_fixtures: FixtureIds
) -> None:
    """pull -> git -> apply: the files `to_files` writes are a bundle Superset accepts, and applying
    them to the instance they came from changes nothing."""
    slugs = sorted(prod_fixtures.dashboard_ids)
    before = read_bundle(export_by_slug(prod_client, slugs))
    files = to_files(before)
    assert all(not path.startswith("charts/") for path in files)  # every fixture chart is on a dashboard
    prod_client.import_assets(build_import_zip(from_files(files)), {})
    after = read_bundle(export_by_slug(prod_client, slugs))
    assert normalise_bundle(after) == normalise_bundle(before)
    assert {c.name: c.id for c in prod_client.list_charts()} == prod_fixtures.chart_ids  # updated in place
