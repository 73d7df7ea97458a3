"""The Superset rules with plain data: keys, comparable fields, roles, replication, imports, verification, pull."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any

import pytest
import yaml

from reconciler.core.diff import diff_resource
from reconciler.core.model import LiveResource, ResourceKey, SecretSlot
from reconciler.spec.secrets import SecretField
from reconciler.systems.superset.rules.assets import desired_assets, fields_of, names_of, trim_live
from reconciler.systems.superset.rules.bundle import (
    Asset,
    Bundle,
    BundleError,
    from_files,
    normalise,
    read_bundle,
    to_files,
)
from reconciler.systems.superset.rules.chart_batches import (
    BatchSizer,
    ChartQuery,
    batch_context,
    chart_query,
    groups,
    split_answer,
)
from reconciler.systems.superset.rules.chart_query import UncheckableChart, query_context_from_params
from reconciler.systems.superset.rules.desired import ListedDashboard, masked_uri, merge, replicated, select_dashboards
from reconciler.systems.superset.rules.importing import import_request
from reconciler.systems.superset.rules.pull import connection_entries, replace_assets, without_connections
from reconciler.systems.superset.rules.roles import (
    LiveDataset,
    PermissionView,
    UnknownPermissionError,
    desired_roles,
    resolve_permissions,
    role_fields,
)
from reconciler.systems.superset.rules.verify import (
    ChartResult,
    Outcome,
    Verification,
    charts_to_verify,
    result_error,
)
from reconciler.systems.superset.spec import DashboardSelector, DatabaseConnection, DatasetAccess, RoleSpec
from tests.superset.test_superset_bundle import (
    CHART_A,
    CHART_B,
    CHART_LONELY,
    DASH_1,
    DASH_2,
    DB_UUID,
    DS_UUID,
    export_zip,
    prod_like,
)

QA_DB_UUID = "d0000000-0000-4000-8000-0000000000aa"
QA_DS_UUID = "da000000-0000-4000-8000-0000000000aa"


def prod() -> Bundle:
    return read_bundle(export_zip(prod_like()))


def qa_copy() -> Bundle:
    """The same assets as another instance exports them: other ids, its own database and dataset uuids."""
    files = prod_like(dataset_id=5, ids=(40, 41, 42))
    text = json.dumps(files).replace(DB_UUID, QA_DB_UUID).replace(DS_UUID, QA_DS_UUID)
    return read_bundle(export_zip(json.loads(text)))


def by_key(bundle: Bundle) -> dict[ResourceKey, Any]:
    return {resource.key: resource for resource in desired_assets(bundle, {})}


def live_of(bundle: Bundle) -> dict[ResourceKey, LiveResource]:
    names = names_of(bundle)
    return {names.key(a): LiveResource(names.key(a), a.uuid, fields_of(a, names)) for a in bundle.all_assets()}


def test_resources_have_readable_keys_and_depend_on_what_they_use() -> None:
    resources = by_key(prod())
    keys = {str(key) for key in resources}
    assert keys == {
        "superset.database/analytics",
        "superset.dataset/analytics.public.sales",
        "superset.chart/sales_c0000000",
        "superset.chart/sales-by-region_c0000000",
        "superset.chart/lonely_c0000000",
        "superset.dashboard/overview",
        "superset.dashboard/regions",
    }
    regions = resources[ResourceKey("superset", "dashboard", "regions")]
    assert {str(k) for k in regions.depends_on} == {
        "superset.chart/sales-by-region_c0000000",
        "superset.chart/sales_c0000000",
        "superset.dataset/analytics.public.sales",  # its native filter reads it
    }
    chart = resources[ResourceKey("superset", "chart", "sales_c0000000")]
    assert [str(k) for k in chart.depends_on] == ["superset.dataset/analytics.public.sales"]
    assert chart.fields["dataset"] == "analytics.public.sales" and "dataset_uuid" not in chart.fields


def test_another_instances_export_of_the_same_assets_is_no_change() -> None:
    live = live_of(qa_copy())
    for key, resource in by_key(prod()).items():
        assert diff_resource(resource, live[key], None) == [], key


def test_a_chart_parameter_added_in_the_ui_is_a_change_but_a_field_a_newer_server_exports_is_not() -> None:
    desired = by_key(prod())[ResourceKey("superset", "chart", "sales_c0000000")]
    live = copy.deepcopy(dict(live_of(qa_copy())[desired.key].fields))
    live["params"]["color_scheme"] = "bnbColors"
    live["theme_uuid"] = None
    live["query_context_generation"] = True
    changes = diff_resource(desired, LiveResource(desired.key, "x", trim_live(desired.fields, live)), None)
    assert [(c.name, c.old, c.new) for c in changes] == [("params.color_scheme", "bnbColors", None)]


def test_a_filter_added_to_a_dashboard_in_the_ui_is_a_change() -> None:
    desired = by_key(prod())[ResourceKey("superset", "dashboard", "overview")]
    live = copy.deepcopy(dict(live_of(qa_copy())[desired.key].fields))
    live["metadata"]["native_filter_configuration"]["NATIVE_FILTER-2"] = {"id": "NATIVE_FILTER-2", "name": "Year"}
    changes = diff_resource(desired, LiveResource(desired.key, "x", live), None)
    assert [c.name for c in changes] == ["metadata.native_filter_configuration.NATIVE_FILTER-2"]


@pytest.mark.parametrize("absent", ["no metadata", "null metadata", "empty metadata", "null filters"])
def test_a_dashboard_without_metadata_is_no_change_against_the_empty_filter_list_an_import_stores(
    absent: str,
) -> None:
    """Superset exports a dashboard created without metadata with no `metadata`, and stores
    `{"native_filter_configuration": []}` once it is imported: the same, whichever side has which."""
    files = prod_like()
    content = files["dashboards/Overview_1.yaml"]
    content.pop("metadata")
    if absent != "no metadata":
        content["metadata"] = {"null metadata": None, "empty metadata": {}, "null filters": {}}[absent]
        if absent == "null filters":
            content["metadata"]["native_filter_configuration"] = None
    bare = read_bundle(export_zip(files))
    stored = copy.deepcopy(files)
    stored["dashboards/Overview_1.yaml"]["metadata"] = {"native_filter_configuration": []}
    imported = read_bundle(export_zip(stored))
    key = ResourceKey("superset", "dashboard", "overview")
    for desired, live in ((bare, imported), (imported, bare)):
        assert diff_resource(by_key(desired)[key], live_of(live)[key], None) == []


def test_the_database_exports_spelling_of_file_upload_is_the_same_field() -> None:
    dashboard_export = {"database_name": "w", "uuid": DB_UUID, "allow_file_upload": False, "extra": {}}
    database_export = {"database_name": "w", "uuid": DB_UUID, "allow_csv_upload": False, "extra": {}}
    dashboard_export["extra"] = {"schemas_allowed_for_file_upload": []}
    database_export["extra"] = {"schemas_allowed_for_csv_upload": []}
    as_asset = [
        Asset("databases", DB_UUID, "databases/w.yaml", content) for content in (dashboard_export, database_export)
    ]
    assert normalise(as_asset[0]) == normalise(as_asset[1])


def test_a_database_password_is_compared_by_fingerprint_only() -> None:
    slot = SecretSlot(("password",), "env:W", "hmac-sha256:abc")
    desired = {r.key: r for r in desired_assets(prod(), {"analytics": slot})}
    database = desired[ResourceKey("superset", "database", "analytics")]
    assert database.secrets == (slot,)
    assert "password" not in database.fields and database.fields["sqlalchemy_uri"].count("XXXXXXXXXX") == 1


# ---- roles ----------------------------------------------------------------------------------------


def analyst(*extra: list[str]) -> RoleSpec:
    return RoleSpec.model_validate(
        {
            "name": "analyst",
            "permissions": [["can_read", "Dashboard"], *extra],
            "datasets": [{"database": "warehouse", "table": "sales"}],
            "databases": ["warehouse"],
        }
    )


def test_role_changes_list_every_permission_gained_and_lost_and_ignore_instance_ids() -> None:
    (desired,) = desired_roles([analyst(["can_write", "Chart"])])
    live_pairs = [
        ("can_read", "Dashboard"),
        ("can_read", "Log"),
        ("datasource_access", "[warehouse].[sales](id:7)"),
        ("database_access", "[warehouse].(id:3)"),
    ]
    live = LiveResource(desired.key, "4", role_fields("analyst", live_pairs))
    changes = {(c.name, c.old, c.new) for c in diff_resource(desired, live, None)}
    assert changes == {
        ("permissions.can_write on Chart", None, "granted"),
        ("permissions.can_read on Log", "granted", None),
    }
    assert [str(k) for k in desired.depends_on] == ["superset.dataset/warehouse.sales"]


def test_permissions_resolve_by_name_to_this_instances_ids() -> None:
    available = [
        PermissionView(1, "can_read", "Dashboard"),
        PermissionView(2, "can_write", "Chart"),
        PermissionView(9, "datasource_access", "[warehouse].[sales](id:31)"),
        PermissionView(10, "database_access", "[warehouse].(id:2)"),
    ]
    assert resolve_permissions(analyst(["can_write", "Chart"]), available, []) == [1, 2, 9, 10]
    with pytest.raises(UnknownPermissionError, match="can_fly on Dashboard \\(no such permission\\)"):
        resolve_permissions(analyst(["can_fly", "Dashboard"]), available, [])
    twice = [*available, PermissionView(11, "datasource_access", "[warehouse].[sales](id:32)")]
    with pytest.raises(UnknownPermissionError, match="2 match; name the schema"):
        resolve_permissions(analyst(), twice, [])
    in_schema_b = analyst().model_copy(
        update={"datasets": [DatasetAccess.model_validate({"database": "warehouse", "schema": "b", "table": "sales"})]}
    )
    datasets = [LiveDataset(31, "warehouse", "a", "sales"), LiveDataset(32, "warehouse", "b", "sales")]
    assert resolve_permissions(in_schema_b, twice, datasets) == [1, 10, 11]


# ---- replication ----------------------------------------------------------------------------------


def test_a_selector_takes_dashboards_by_slug_tag_or_owner() -> None:
    listed = [
        ListedDashboard(1, "sales", ("finance",), ("ada@example.com", "Ada Admin")),
        ListedDashboard(2, "ops", (), ("bob@example.com",)),
        ListedDashboard(3, None, ("kpi",), ()),
    ]
    assert [d.id for d in select_dashboards(listed, "all")] == [1, 2, 3]
    by = DashboardSelector.model_validate
    assert [d.id for d in select_dashboards(listed, by({"slugs": ["ops"]}))] == [2]
    assert [d.id for d in select_dashboards(listed, by({"tags": ["kpi", "finance"]}))] == [1, 3]
    assert [d.id for d in select_dashboards(listed, by({"owners": ["Ada Admin"]}))] == [1]


def connection(uri: str, password: bool = False) -> DatabaseConnection:
    secret = SecretField.model_validate({"secretRef": {"env": "X"}}) if password else None
    return DatabaseConnection.model_validate({"sqlalchemyUri": uri, "password": secret})


def test_replicated_dashboards_point_at_this_environments_connection_or_are_refused() -> None:
    qa = {"lake": connection("postgresql://reporter@warehouse.qa:5432/analytics", password=True)}
    with pytest.raises(BundleError, match=r"use database 'analytics', which superset\.replicate\.databases"):
        replicated(prod(), {}, qa, "prod")
    bundle = replicated(prod(), {"analytics": "lake"}, qa, "prod")
    (database,) = bundle.of("databases")
    assert database.name == "lake"
    assert database.content["sqlalchemy_uri"] == "postgresql://reporter:XXXXXXXXXX@warehouse.qa:5432/analytics"
    assert masked_uri(connection("sqlite:////srv/w.db")) == "sqlite:////srv/w.db"


def test_merge_keeps_the_spec_asset_and_repoints_what_referred_to_the_replicated_copy() -> None:
    spec = qa_copy()  # the same database and dataset by name, under other uuids
    source = prod()
    spec_only = Bundle({kind: dict(spec.assets[kind]) for kind in ("databases", "datasets")})
    merged = merge(spec_only, source)
    assert [a.uuid for a in merged.of("databases")] == [QA_DB_UUID]
    assert [a.uuid for a in merged.of("datasets")] == [QA_DS_UUID]
    assert {a.content["dataset_uuid"] for a in merged.of("charts")} == {QA_DS_UUID}
    targets = merged.assets["dashboards"][DASH_1].content["metadata"]["native_filter_configuration"][0]["targets"]
    assert targets[0]["datasetUuid"] == QA_DS_UUID


# ---- import -------------------------------------------------------------------------------------


def test_an_import_carries_what_it_needs_under_the_targets_uuids_with_passwords_by_file() -> None:
    request = import_request(
        prod(),
        [CHART_B],
        {"analytics": QA_DB_UUID},
        {"analytics.public.sales": QA_DS_UUID},
        lambda name: "s3cret" if name == "analytics" else None,
    )
    assert request.describe() == "1 chart, 1 dataset, 1 database"
    assert request.passwords == {"databases/analytics.yaml": "s3cret"}
    (chart,) = request.bundle.of("charts")
    assert chart.content["dataset_uuid"] == QA_DS_UUID
    archive = zipfile.ZipFile(io.BytesIO(request.zip_bytes))
    database = yaml.safe_load(archive.read("reconciler_import/databases/analytics.yaml"))
    assert database["uuid"] == QA_DB_UUID  # never a new uuid under an existing name
    assert "s3cret" not in b"".join(archive.read(name) for name in archive.namelist()).decode()

    whole = import_request(prod(), [DASH_2], {}, {}, lambda _name: None)
    assert whole.describe() == "1 dashboard, 2 charts, 1 dataset, 1 database"  # every chart of the dashboard


# ---- verification ---------------------------------------------------------------------------------


def test_charts_to_verify_are_every_chart_of_each_touched_dashboard() -> None:
    bundle = prod()
    everything = charts_to_verify(bundle)
    assert {c.uuid for c in everything} == {CHART_A, CHART_B, CHART_LONELY}
    shared = next(c for c in everything if c.uuid == CHART_A)
    assert shared.dashboards == ("Overview", "Regions")
    assert {c.uuid for c in charts_to_verify(bundle, [CHART_B])} == {CHART_A, CHART_B}  # all of Regions
    assert {c.uuid for c in charts_to_verify(bundle, [DS_UUID])} == {CHART_A, CHART_B, CHART_LONELY}
    assert [c.uuid for c in charts_to_verify(bundle, [CHART_LONELY])] == [CHART_LONELY]


def test_a_verification_names_failing_charts_by_dashboard_and_reads_errors_inside_a_200() -> None:
    (chart,) = [c for c in charts_to_verify(prod()) if c.uuid == CHART_B]
    results = (ChartResult(chart, Outcome.FAILED, "no such column: region"),)
    verification = Verification("qa", results)
    assert not verification.ok
    assert verification.failure_message() == (
        "1 of 1 chart(s) failed in qa:\n  Regions / Sales by region: no such column: region"
    )
    assert result_error({"result": [{"data": [], "error": "boom"}]}) == "boom"
    assert result_error({"result": [{"data": [{"x": 1}]}]}) is None
    assert result_error({"result": []}) == "the answer holds no query result"


def test_a_chart_that_could_not_be_checked_fails_the_verification_by_name() -> None:
    charts = {c.uuid: c for c in charts_to_verify(prod())}
    results = (
        ChartResult(charts[CHART_A], Outcome.OK),
        ChartResult(charts[CHART_B], Outcome.UNCHECKED, "no saved query context, and its params name no metric"),
    )
    verification = Verification("qa", results)
    assert not verification.ok
    assert (
        verification.summary() == "verified 2 chart(s) on 2 dashboard(s) in qa: no query failed, 1 could not be checked"
    )
    assert verification.failure_message() == (
        "1 of 2 chart(s) could not be checked in qa:\n"
        "  Regions / Sales by region: no saved query context, and its params name no metric"
    )


def api_chart(params: dict[str, Any] | str, datasource_id: int | None = 7) -> dict[str, Any]:
    """A chart as `GET /api/v1/chart/{id}` shows one created through the API: no query context."""
    text = params if isinstance(params, str) else json.dumps(params)
    return {"params": text, "query_context": None, "datasource_id": datasource_id, "datasource_type": "table"}


def test_a_chart_without_a_saved_query_context_is_queried_from_its_own_params() -> None:
    table = api_chart(
        {
            "viz_type": "table",
            "datasource": "99__table",
            "groupby": ["region"],
            "metrics": ["total_amount"],
            "row_limit": 50,
            "adhoc_filters": [
                {
                    "expressionType": "SIMPLE",
                    "clause": "WHERE",
                    "subject": "region",
                    "operator": "IN",
                    "comparator": ["EU"],
                },
                {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": "amount > 0"},
                {"expressionType": "SQL", "clause": "HAVING", "sqlExpression": "SUM(amount) > 10"},
            ],
        }
    )
    context = query_context_from_params(table)
    assert context["datasource"] == {"id": 7, "type": "table"}  # the chart's dataset, not a stale id in params
    assert context["form_data"]["datasource"] == "7__table"
    (query,) = context["queries"]
    assert query["columns"] == ["region"] and query["metrics"] == ["total_amount"] and query["row_limit"] == 50
    assert query["filters"] == [{"col": "region", "op": "IN", "val": ["EU"]}]
    assert query["extras"] == {"where": "(amount > 0)", "having": "(SUM(amount) > 10)"}

    big_number = query_context_from_params(api_chart({"viz_type": "big_number_total", "metric": "total_amount"}))
    assert big_number["queries"][0]["metrics"] == ["total_amount"] and big_number["queries"][0]["columns"] == []
    bar = query_context_from_params(api_chart({"x_axis": "product", "metrics": ["total_amount"], "groupby": []}))
    assert bar["queries"][0]["columns"] == ["product"]
    raw = query_context_from_params(api_chart({"query_mode": "raw", "all_columns": ["id", "name"], "metrics": ["x"]}))
    assert raw["queries"][0]["columns"] == ["id", "name"] and raw["queries"][0]["metrics"] == []


@pytest.mark.parametrize(
    ("chart", "reason"),
    [
        (api_chart({"viz_type": "markdown", "code": "# hello"}), "its params name no metric and no column"),
        (api_chart("{not json"), "its params are not JSON"),
        (api_chart({"metrics": ["x"]}, datasource_id=None), "it has no dataset"),
    ],
)
def test_a_chart_whose_params_give_no_query_cannot_be_checked(chart: dict[str, Any], reason: str) -> None:
    with pytest.raises(UncheckableChart, match=reason):
        query_context_from_params(chart)


def exported_chart(viz_type: str, columns: list[str], saved: bool = True, **form: Any) -> dict[str, Any]:
    """A chart as an export holds it: params as a mapping, the saved query context as a JSON string."""
    params = {"viz_type": viz_type, "datasource": "3__table", "groupby": columns, "metrics": ["total_amount"], **form}
    content: dict[str, Any] = {"slice_name": "x", "viz_type": viz_type, "params": params}
    if saved:
        query = {"columns": columns, "metrics": ["total_amount"], "row_limit": 7, "datasource": {"id": 3}}
        query["post_processing"] = [{"operation": "pivot", "options": {"index": columns}}]
        context = {"datasource": {"id": 3, "type": "table"}, "queries": [query], "form_data": params}
        content["query_context"] = json.dumps(context)
    return content


def test_a_chart_runs_its_saved_query_objects_on_the_dataset_the_target_chart_points_at() -> None:
    saved = chart_query(exported_chart("table", ["region"]), dataset_id=11)
    assert saved.datasource == {"id": 11, "type": "table"} and not saved.from_params  # not the source's id 3
    (query,) = saved.queries
    assert query["row_limit"] == 7 and query["post_processing"][0]["operation"] == "pivot" and "datasource" not in query
    built = chart_query(exported_chart("table", ["region"], saved=False, row_limit=5), dataset_id=11)
    assert built.from_params and built.datasource == {"id": 11, "type": "table"}
    assert built.queries[0]["row_limit"] == 5 and built.queries[0]["columns"] == ["region"]
    with pytest.raises(UncheckableChart, match="no metric and no column"):
        chart_query({"params": {"viz_type": "markdown"}}, dataset_id=11)


def test_charts_share_a_request_only_on_one_dataset_and_one_query_building_form_data() -> None:
    sales = [(n, chart_query(exported_chart("table", ["region"], row_limit=n), 1)) for n in range(5)]
    other_dataset = [(9, chart_query(exported_chart("table", ["region"]), 2))]
    other_axis = [(8, chart_query(exported_chart("echarts_timeseries_bar", [], x_axis="order_date"), 1))]
    grouped = groups([*sales[:3], *other_dataset, *sales[3:], *other_axis])
    assert [[n for n, _ in group] for group in grouped] == [[0, 1, 2, 3, 4], [9], [8]]

    queries = [query for _, query in sales[:2]]
    body = batch_context(queries)
    assert body["force"] is True and body["datasource"] == {"id": 1, "type": "table"}
    assert len(body["queries"]) == 2 and body["form_data"]["datasource"] == "1__table"
    with pytest.raises(ValueError, match="cannot share a request"):
        batch_context([sales[0][1], other_dataset[0][1]])


def test_a_batch_holds_as_many_charts_as_the_slowest_query_seen_fits_in_the_budget() -> None:
    sizer = BatchSizer(budget=10.0, largest=20, first=5)
    assert sizer.size() == 5  # nothing answered yet
    sizer.ended(10, 0.4)  # 40 ms a query
    assert sizer.size() == 20
    sizer.ended(5, 15.0)  # a slow warehouse: 3 s a query
    assert sizer.size() == 3
    sizer.ended(4, 1.0)  # a faster request later does not undo what the slowest showed
    assert sizer.size() == 3
    sizer.ended(1, 45.0)  # one query past the budget: one chart a request
    assert sizer.size() == 1
    instant = BatchSizer(budget=10.0, largest=20, first=1)
    instant.ended(3, 0.0)
    assert instant.size() == 20
    for bad in ((0.0, 20, 5), (10.0, 0, 1), (10.0, 20, 21), (10.0, 20, 0)):
        with pytest.raises(ValueError):
            BatchSizer(*bad)


def test_a_batch_answer_is_split_back_by_chart_or_not_at_all() -> None:
    two_queries = ChartQuery({"id": 1, "type": "table"}, ({"a": 1}, {"b": 2}), {}, from_params=False)
    one_query = ChartQuery({"id": 1, "type": "table"}, ({"c": 3},), {}, from_params=False)
    answer = {"result": [{"n": 1}, {"n": 2}, {"n": 3, "error": "boom"}]}
    parts = split_answer(answer, [two_queries, one_query])
    assert parts == [{"result": [{"n": 1}, {"n": 2}]}, {"result": [{"n": 3, "error": "boom"}]}]
    assert result_error(parts[0]) is None and result_error(parts[1]) == "boom"  # the error is the second chart's
    assert split_answer({"result": [{"n": 1}]}, [two_queries, one_query]) is None  # counts differ: nothing attributed
    assert split_answer({"message": "Error: no such column"}, [one_query]) is None


# ---- pull ---------------------------------------------------------------------------------------


def test_pull_replaces_assets_by_identity_and_drops_charts_only_a_replaced_dashboard_showed() -> None:
    existing = from_files(to_files(without_connections(prod())))
    pulled = without_connections(qa_copy())  # the same dashboards re-created elsewhere: other db/dataset uuids
    regions = pulled.assets["dashboards"][DASH_2]
    content = copy.deepcopy(regions.content)
    content["uuid"] = "b0000000-0000-4000-8000-0000000000ff"
    del content["position"]["CHART-0"]  # chart B is no longer on it
    content["position"]["ROW-1"]["children"] = ["CHART-1"]
    new_regions = Asset("dashboards", content["uuid"], regions.path, content)
    only_regions = Bundle(
        {
            "databases": pulled.assets["databases"],
            "datasets": pulled.assets["datasets"],
            "charts": {CHART_A: pulled.assets["charts"][CHART_A]},
            "dashboards": {new_regions.uuid: new_regions},
        }
    )
    result = replace_assets(existing, only_regions)
    assert sorted(a.content["slug"] for a in result.of("dashboards")) == ["overview", "regions"]
    assert [a.uuid for a in result.of("databases")] == [QA_DB_UUID]
    assert [a.uuid for a in result.of("datasets")] == [QA_DS_UUID]
    assert CHART_B not in result.assets["charts"] and CHART_LONELY in result.assets["charts"]
    assert "sqlalchemy_uri" not in result.of("databases")[0].content


def test_pull_declares_new_connections_without_their_password() -> None:
    (entry,) = connection_entries(prod(), [], "prod")
    assert entry.sqlalchemy_uri == "postgresql://reporter@warehouse.prod:5432/analytics"
    assert entry.password_variable == "SUPERSET_PROD_ANALYTICS_PASSWORD"
    assert connection_entries(prod(), ["analytics"], "prod") == []
