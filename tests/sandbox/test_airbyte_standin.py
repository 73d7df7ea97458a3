"""Fidelity tests for the Airbyte stand-in, driven by Airbyte's own Python SDK (airbyte-api 1.0.1).

What the SDK can't do against a faithful server is pinned here too, so nobody builds on it:
- a relative `token_url` resolves against the host, not the API base: pass an absolute one;
- its session cache is class-wide, keyed by client id+secret: each test uses its own secret;
- on a 401 it drops the cached token but raises; the next call fetches a fresh token;
- it can't parse a configuration without a type discriminator (the server strips sourceType and
  destinationType before storing), so S3 and HubSpot answers raise ResponseValidationError;
- a partial configuration dict in a PATCH is coerced into the first connector model that fits
  (`{"host": ...}` becomes `{"sourceType": "whisky-hunter"}`), so partial patches go out raw.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import airbyte_api
import httpx
import pytest
from airbyte_api import api, errors, models

from reconciler.sandbox.airbyte_server import AirbyteStandIn

CLIENT_ID = "reconciler"
MASK = "**********"


@pytest.fixture
def secret() -> str:
    return f"sandbox-{uuid.uuid4()}"  # a fresh SDK session per test: its token cache is class-wide


@pytest.fixture
def standin(secret: str) -> Iterator[AirbyteStandIn]:
    with AirbyteStandIn(client_secret=secret) as server:
        yield server


def make_sdk(standin: AirbyteStandIn, secret: str, token_url: str | None = None) -> airbyte_api.AirbyteAPI:
    credentials = models.SchemeClientCredentials(
        client_id=CLIENT_ID, client_secret=secret, token_url=token_url or f"{standin.url}/applications/token"
    )
    return airbyte_api.AirbyteAPI(server_url=standin.url, security=models.Security(client_credentials=credentials))


@pytest.fixture
def sdk(standin: AirbyteStandIn, secret: str) -> airbyte_api.AirbyteAPI:
    return make_sdk(standin, secret)


def token(standin: AirbyteStandIn, secret: str) -> str:
    body = {"client_id": CLIENT_ID, "client_secret": secret, "grant-type": "client_credentials"}
    answer = httpx.post(f"{standin.url}/applications/token", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture
def raw(standin: AirbyteStandIn, secret: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token(standin, secret)}"}
    with httpx.Client(base_url=standin.url, headers=headers, timeout=5.0) as client:
        yield client


def postgres(sdk: airbyte_api.AirbyteAPI, standin: AirbyteStandIn, name: str = "app-postgres") -> str:
    configuration = models.SourcePostgres(
        host="db.internal",
        database="app",
        username="reader",
        password="pg-secret",
        ssl_mode=models.SourcePostgresRequire(),
        tunnel_method=models.SourcePostgresPasswordAuthentication(
            tunnel_host="bastion", tunnel_user="jump", tunnel_user_password="tunnel-secret"
        ),
    )
    request = models.SourceCreateRequest(name=name, workspace_id=standin.workspace_id, configuration=configuration)
    created = sdk.sources.create_source(request=request).source_response
    assert created is not None
    return created.source_id


S3_CONFIGURATION: dict[str, Any] = {
    "destinationType": "s3",
    "s3_bucket_name": "acme-lake",
    "s3_bucket_path": "raw",
    "s3_bucket_region": "eu-west-1",
    "access_key_id": "AKIA-secret",
    "secret_access_key": "s3-secret",
    "format": {"format_type": "Parquet", "compression_codec": "SNAPPY"},
}


def s3(raw: httpx.Client, standin: AirbyteStandIn, name: str = "lake") -> str:
    body = {"name": name, "workspaceId": standin.workspace_id, "configuration": S3_CONFIGURATION}
    answer = raw.post("/destinations", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["destinationId"])


def connect(
    sdk: airbyte_api.AirbyteAPI, source_id: str, destination_id: str, **fields: Any
) -> models.ConnectionResponse:
    request = models.ConnectionCreateRequest(source_id=source_id, destination_id=destination_id, **fields)
    created = sdk.connections.create_connection(request=request).connection_response
    assert created is not None
    return created


def problem(error: errors.AirbyteAPIError) -> dict[str, Any]:
    assert error.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(error.body)
    assert set(body) >= {"type", "title", "status", "detail", "documentationUrl", "data"}
    return body


# --- auth and SDK setup ---


def test_sdk_needs_an_absolute_token_url(standin: AirbyteStandIn, secret: str) -> None:
    """The SDK urljoins token_url onto the base: "/applications/token" drops /api/public/v1, and
    "applications/token" drops /v1. Both miss the endpoint, as they would on a real self-hosted Airbyte."""
    for relative in ("/applications/token", "applications/token"):
        with pytest.raises(Exception, match="Unexpected status code 404 from token endpoint"):
            make_sdk(standin, secret, token_url=relative).workspaces.list_workspaces(
                request=api.ListWorkspacesRequest()
            )


def test_health_needs_no_token_and_workspaces_list(standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI) -> None:
    assert httpx.get(f"{standin.url}/health").status_code == 200
    assert sdk.health.get_health_check().status_code == 200
    listed = sdk.workspaces.list_workspaces(request=api.ListWorkspacesRequest()).workspaces_response
    assert listed is not None
    assert [(w.workspace_id, w.name) for w in listed.data] == [(standin.workspace_id, "Default Workspace")]


def test_token_endpoint_takes_json_or_form_and_rejects_bad_credentials(standin: AirbyteStandIn, secret: str) -> None:
    url = f"{standin.url}/applications/token"
    form = httpx.post(url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret})
    assert form.json()["token_type"] == "Bearer"
    assert form.json()["expires_in"] == 900
    wrong = httpx.post(url, json={"client_id": CLIENT_ID, "client_secret": "nope", "grant-type": "client_credentials"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Unauthorized")
    unauthenticated = httpx.get(f"{standin.url}/sources")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/json"
    assert unauthenticated.json()["message"] == "Unauthorized"


def test_expired_tokens_get_401_then_the_sdk_fetches_a_new_one(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI
) -> None:
    request = api.ListSourcesRequest()
    sdk.sources.list_sources(request=request)
    standin.expire_tokens()
    with pytest.raises(errors.SDKError) as raised:
        sdk.sources.list_sources(request=request)  # the SDK forgets the token but does not retry
    assert raised.value.status_code == 401
    assert json.loads(raised.value.body)["message"] == "Unauthorized"
    assert sdk.sources.list_sources(request=request).status_code == 200
    assert standin.stats.by_route["POST /applications/token"] == 2


def test_token_ttl_is_enforced(secret: str) -> None:
    now = [1000.0]  # the stand-in's clock, moved by the test: no wall-clock race on a loaded machine
    with AirbyteStandIn(client_secret=secret, token_ttl_seconds=180, clock=lambda: now[0]) as server:
        headers = {"Authorization": f"Bearer {token(server, secret)}"}
        assert httpx.get(f"{server.url}/sources", headers=headers).status_code == 200
        now[0] += 179.9
        assert httpx.get(f"{server.url}/sources", headers=headers).status_code == 200
        now[0] += 0.1
        assert httpx.get(f"{server.url}/sources", headers=headers).status_code == 401
        fresh = {"Authorization": f"Bearer {token(server, secret)}"}
        assert httpx.get(f"{server.url}/sources", headers=fresh).status_code == 200


# --- sources and destinations ---


def test_source_secrets_are_masked_on_every_read_and_stored_for_real(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    source_id = postgres(sdk, standin)
    got = sdk.sources.get_source(request=api.GetSourceRequest(source_id=source_id)).source_response
    assert isinstance(got, models.SourceResponse)
    assert isinstance(got.configuration, models.SourcePostgres)
    assert got.configuration.password == MASK
    assert (got.source_type, got.definition_id) == ("postgres", "decd338e-5647-4c0b-adf4-da0e75f5a750")
    answer = raw.get(f"/sources/{source_id}").json()
    assert answer["configuration"]["tunnel_method"]["tunnel_user_password"] == MASK
    assert "sourceType" not in answer["configuration"]  # stripped on write, like the real server
    [stored] = standin.stored("sources")
    assert stored["configuration"]["password"] == "pg-secret"
    assert stored["configuration"]["tunnel_method"]["tunnel_user_password"] == "tunnel-secret"


def test_a_custom_connector_reads_back_without_a_type(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    """Like SourceReadMapper: only definitions the server knows by id are named; the definition id always is."""
    custom = "0b7cbd2c-7c55-4d5a-9c8f-3e1d2f6a1b11"
    body = {"name": "gong", "workspaceId": standin.workspace_id, "definitionId": custom}
    created = raw.post("/sources", json={**body, "configuration": {"sourceType": "gong-custom", "api_key": "k"}})
    assert created.status_code == 200, created.text
    source_id = created.json()["sourceId"]
    got = sdk.sources.get_source(request=api.GetSourceRequest(source_id=source_id)).source_response
    assert got is not None
    assert (got.source_type, got.definition_id) == ("", custom)
    answer = raw.get(f"/sources/{source_id}").json()
    assert answer["configuration"] == {"api_key": MASK}  # the type is not kept in the configuration
    [listed] = raw.get("/sources").json()["data"]
    assert (listed["sourceType"], listed["definitionId"]) == ("", custom)
    known = sdk.sources.get_source(request=api.GetSourceRequest(source_id=postgres(sdk, standin))).source_response
    assert known is not None and known.source_type == "postgres"


def test_sdk_cannot_parse_configurations_without_a_discriminator(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI
) -> None:
    """The resource is created; only the SDK's parsing of the answer fails (airbyte-api-python-sdk#114)."""
    request = models.DestinationCreateRequest(
        name="lake", workspace_id=standin.workspace_id, configuration=S3_CONFIGURATION
    )
    with pytest.raises(errors.ResponseValidationError) as raised:
        sdk.destinations.create_destination(request=request)
    answer = raised.value.raw_response.json()
    assert answer["destinationType"] == "s3"
    assert answer["configuration"]["secret_access_key"] == MASK
    assert [d["configuration"]["secret_access_key"] for d in standin.stored("destinations")] == ["s3-secret"]
    hubspot = {
        "sourceType": "hubspot",
        "credentials": {"credentials_title": "Private App Credentials", "access_token": "t"},
    }
    with pytest.raises(ValueError, match="Could not find discriminator field auth_type"):  # building the request
        models.SourceCreateRequest(name="crm", workspace_id=standin.workspace_id, configuration=hubspot)


def test_patch_deep_merges_and_put_replaces_keeping_masked_secrets(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI
) -> None:
    source_id = postgres(sdk, standin)
    partial = models.SourcePatchRequest.model_construct(name="renamed", configuration={"host": "db2.internal"})  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns that a dict is not one of the connector models
        patched = sdk.sources.patch_source(
            request=api.PatchSourceRequest(source_id=source_id, source_patch_request=partial)
        )
    assert patched.source_response is not None
    [stored] = standin.stored("sources")
    assert stored["name"] == "renamed"
    assert stored["configuration"]["host"] == "db2.internal"
    assert stored["configuration"]["ssl_mode"] == {"mode": "require"}  # merged, not replaced
    assert stored["configuration"]["password"] == "pg-secret"

    replacement = models.SourcePostgres(host="db3.internal", database="app", username="reader", password=MASK)
    put = models.SourcePutRequest(name="app-postgres", configuration=replacement)
    sdk.sources.put_source(request=api.PutSourceRequest(source_id=source_id, source_put_request=put))
    [stored] = standin.stored("sources")
    assert stored["configuration"]["password"] == "pg-secret"  # the mask kept the stored value
    assert "ssl_mode" not in stored["configuration"] and "tunnel_method" not in stored["configuration"]


def test_sdk_coerces_a_partial_patch_dict_into_another_connector(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    source_id = postgres(sdk, standin)
    request = models.SourcePatchRequest(configuration={"host": "lost.internal"})
    assert type(request.configuration).__name__ == "SourceWhiskyHunter"
    sdk.sources.patch_source(request=api.PatchSourceRequest(source_id=source_id, source_patch_request=request))
    assert raw.get(f"/sources/{source_id}").json()["configuration"]["host"] == "db.internal"


def test_validation_problems_name_the_field(standin: AirbyteStandIn, raw: httpx.Client) -> None:
    base = {"name": "pg", "workspaceId": standin.workspace_id}
    missing_host = raw.post("/sources", json={**base, "configuration": {"sourceType": "postgres", "port": 5432}})
    assert missing_host.status_code == 400
    assert "$.host: is missing but it is required" in missing_host.json()["data"]["message"]
    untyped = raw.post("/sources", json={**base, "configuration": {"host": "h"}})
    assert (untyped.status_code, untyped.json()["title"]) == (422, "unprocessable-entity")
    s3_id = s3(raw, standin)
    put = raw.put(f"/destinations/{s3_id}", json={"name": "lake", "configuration": {"s3_bucket_name": "b"}})
    assert put.status_code == 400 and "s3_bucket_path" in put.json()["data"]["message"]


def test_names_are_not_unique(standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI) -> None:
    first, second = postgres(sdk, standin, "same"), postgres(sdk, standin, "same")
    assert first != second
    assert [s["name"] for s in standin.stored("sources")] == ["same", "same"]


def test_not_found_is_a_problem(sdk: airbyte_api.AirbyteAPI, raw: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(errors.SDKError) as raised:
        sdk.sources.get_source(request=api.GetSourceRequest(source_id=missing))
    assert raised.value.status_code == 404
    body = problem(raised.value)
    assert body["type"] == "https://reference.airbyte.com/reference/errors#resource-not-found"
    assert body["data"]["resourceId"] == missing
    assert raw.get("/no/such/route").status_code == 404


def test_delete_is_soft_and_takes_the_connections_along(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    source_id = postgres(sdk, standin)
    connection = connect(sdk, source_id, s3(raw, standin))
    deleted = sdk.sources.delete_source(request=api.DeleteSourceRequest(source_id=source_id))
    assert (deleted.status_code, deleted.raw_response.content) == (204, b"")
    assert raw.get(f"/sources/{source_id}").status_code == 404
    assert raw.get("/sources").json()["data"] == []
    assert [s["sourceId"] for s in raw.get("/sources", params={"includeDeleted": "true"}).json()["data"]] == [source_id]
    assert raw.get(f"/connections/{connection.connection_id}").json()["status"] == "deprecated"
    assert raw.get("/connections").json()["data"] == []


# --- connections ---


def test_connection_defaults_and_read_quirks(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    schedule = models.AirbyteAPIConnectionSchedule(
        schedule_type=models.ScheduleTypeEnum.CRON, cron_expression="0 0 2 * * ?"
    )
    created = connect(sdk, postgres(sdk, standin), s3(raw, standin), schedule=schedule)
    assert created.name == "app-postgres → lake"
    assert (created.status, created.namespace_definition, created.prefix) == ("active", "destination", "")
    assert created.non_breaking_schema_updates_behavior == "ignore"
    assert created.schedule.cron_expression == "0 0 2 * * ? UTC"
    assert standin.stored("connections")[0]["schedule"]["cronExpression"] == "0 0 2 * * ?"
    streams = created.configurations.streams or []
    assert sorted(s.name for s in streams) == ["orders", "payments", "users"]
    assert all(s.sync_mode == "full_refresh_overwrite" and s.selected_fields == [] for s in streams)
    answer = raw.get(f"/connections/{created.connection_id}").json()
    assert answer["dataResidency"] == "auto" and answer["tags"] == []
    orders = {
        tuple(s["name"] for s in raw.get(f"/connections/{created.connection_id}").json()["configurations"]["streams"])
        for _ in range(8)
    }
    assert len(orders) > 1  # stream order is not stable between reads
    echoed = models.AirbyteAPIConnectionSchedule(
        schedule_type=models.ScheduleTypeEnum.CRON, cron_expression="0 0 3 * * ? UTC"
    )
    request = api.PatchConnectionRequest(
        connection_id=created.connection_id, connection_patch_request=models.ConnectionPatchRequest(schedule=echoed)
    )
    sdk.connections.patch_connection(request=request)
    assert standin.stored("connections")[0]["schedule"]["cronExpression"] == "0 0 3 * * ?"


def test_patch_applies_sent_fields_and_streams_replace_the_catalog(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    created = connect(sdk, postgres(sdk, standin), s3(raw, standin), name="pg-to-lake", prefix="app_")

    def patch(**fields: Any) -> models.ConnectionResponse:
        body = models.ConnectionPatchRequest(**fields)
        request = api.PatchConnectionRequest(connection_id=created.connection_id, connection_patch_request=body)
        answer = sdk.connections.patch_connection(request=request).connection_response
        assert answer is not None
        return answer

    users = models.StreamConfiguration(
        name="users", sync_mode=models.ConnectionSyncModeEnum.INCREMENTAL_APPEND, cursor_field=["updated_at"]
    )
    after = patch(configurations=models.StreamConfigurations(streams=[users]))
    assert [(s.name, s.namespace, s.sync_mode, s.cursor_field) for s in after.configurations.streams or []] == [
        ("users", "public", "incremental_append", ["updated_at"])
    ]
    after = patch(name="renamed", configurations=models.StreamConfigurations(streams=[]))  # [] changes nothing
    assert (after.name, after.prefix, [s.name for s in after.configurations.streams or []]) == (
        "renamed",
        "app_",
        ["users"],
    )


def test_sent_streams_are_rebuilt_so_settings_left_out_are_reset(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    """Like toAirbyteStreamConfiguration: a stream sent without selected fields, mappers or a destination
    object name loses what it had (the UI's settings included). The SDK parses only encryption mappers back."""
    created = connect(sdk, postgres(sdk, standin), s3(raw, standin), name="pg-to-lake")
    encrypt_email = models.ConfiguredStreamMapper(
        type=models.StreamMapperType.ENCRYPTION,
        mapper_configuration=models.EncryptionMapperRSAConfiguration(
            algorithm=models.EncryptionMapperAlgorithm.RSA,
            field_name_suffix="_enc",
            public_key="3082010a0282010100",
            target_field="email",
        ),
    )
    tuned = models.StreamConfiguration(
        name="users",
        selected_fields=[models.SelectedFieldInfo(field_path=["id"]), models.SelectedFieldInfo(field_path=["email"])],
        mappers=[encrypt_email],
        destination_object_name="app_users",
    )

    def patch(stream: models.StreamConfiguration) -> models.StreamConfiguration:
        body = models.ConnectionPatchRequest(configurations=models.StreamConfigurations(streams=[stream]))
        request = api.PatchConnectionRequest(connection_id=created.connection_id, connection_patch_request=body)
        answer = sdk.connections.patch_connection(request=request).connection_response
        assert answer is not None
        [configured] = answer.configurations.streams or []
        return configured

    kept = patch(tuned)
    assert [f.field_path for f in kept.selected_fields or []] == [["id"], ["email"]]
    assert [m.type for m in kept.mappers or []] == ["encryption"] and (kept.mappers or [])[0].id
    assert kept.destination_object_name == "app_users"
    reset = patch(models.StreamConfiguration(name="users"))
    assert (reset.selected_fields, reset.mappers, reset.destination_object_name) == ([], [], None)


def test_primary_key_for_a_source_defined_key_is_rejected(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    source_id, destination_id = postgres(sdk, standin), s3(raw, standin)
    dedup = models.ConnectionSyncModeEnum.INCREMENTAL_DEDUPED_HISTORY

    def streams(**fields: Any) -> models.StreamConfigurations:
        return models.StreamConfigurations(
            streams=[models.StreamConfiguration(name="users", sync_mode=dedup, **fields)]
        )

    with pytest.raises(errors.SDKError) as raised:
        connect(
            sdk, source_id, destination_id, configurations=streams(cursor_field=["updated_at"], primary_key=[["email"]])
        )
    assert raised.value.status_code == 400
    assert "already pre-defined" in problem(raised.value)["data"]["message"]
    same = connect(
        sdk, source_id, destination_id, configurations=streams(cursor_field=["updated_at"], primary_key=[["id"]])
    )
    assert [s.primary_key for s in same.configurations.streams or []] == [[["id"]]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"configurations": {"streams": [{"name": "nope"}]}}, "Invalid stream found"),
        ({"configurations": {"streams": [{"name": "users"}, {"name": "users"}]}}, "Duplicate stream"),
        ({"configurations": {"streams": [{"name": "users", "syncMode": "bogus"}]}}, "Invalid syncMode"),
        (
            {"configurations": {"streams": [{"name": "users", "syncMode": "incremental_update"}]}},
            "Cannot set sync mode",
        ),
        ({"configurations": {"streams": [{"name": "users", "syncMode": "incremental_append"}]}}, "No default cursor"),
        ({"configurations": {"streams": [{"name": "users", "selectedFields": []}]}}, "No fields selected"),
        ({"schedule": {"scheduleType": "cron", "cronExpression": "0 0 2 * *"}}, "is not valid"),
        ({"schedule": {"scheduleType": "cron", "cronExpression": "* 0 2 * * ?"}}, "one hour minimum"),
        ({"schedule": {"scheduleType": "cron"}}, "Missing cron expression"),
        ({"namespaceDefinition": "elsewhere"}, "namespaceDefinition"),
    ],
)
def test_bad_connection_requests_are_400_problems(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client, body: dict[str, Any], message: str
) -> None:
    ends = {"sourceId": postgres(sdk, standin), "destinationId": s3(raw, standin)}
    answer = raw.post("/connections", json={**ends, **body})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert message in answer.json()["data"]["message"]


def test_connections_have_no_put(standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client) -> None:
    created = connect(sdk, postgres(sdk, standin), s3(raw, standin))
    answer = raw.put(f"/connections/{created.connection_id}", json={"name": "x"})
    assert (answer.status_code, answer.headers["content-type"]) == (405, "application/problem+json")
    assert "PUT" not in answer.headers["allow"]


def test_listing_pages_until_an_empty_page(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    source_id, destination_id = postgres(sdk, standin), s3(raw, standin)
    for index in range(45):  # raw posts: the SDK's model building costs ~50 ms a call
        body = {"sourceId": source_id, "destinationId": destination_id, "name": f"c{index:02d}"}
        assert raw.post("/connections", json=body).status_code == 200
    names, offset, pages = [], 0, []
    while True:
        request = api.ListConnectionsRequest(limit=20, offset=offset, workspace_ids=[standin.workspace_id])
        page = sdk.connections.list_connections(request=request).connections_response
        assert page is not None
        pages.append((len(page.data), bool(page.next), bool(page.previous)))
        if not page.data:
            break
        names += [c.name for c in page.data]
        offset += 20
    assert names == [f"c{index:02d}" for index in range(45)]
    assert pages == [(20, True, False), (20, True, True), (5, True, True), (0, False, True)]
    link = raw.get("/connections", params={"limit": 20}).json()["next"]
    assert link.startswith(f"{standin.url}/connections?") and "offset=20" in link
    assert raw.get("/connections", params={"limit": 101}).status_code == 400
    other = raw.get("/connections", params={"workspaceIds": str(uuid.uuid4())}).json()
    assert other["data"] == []


def test_streams_and_jobs(standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client) -> None:
    source_id, destination_id = postgres(sdk, standin), s3(raw, standin)
    request = api.GetStreamPropertiesRequest(source_id=source_id, destination_id=destination_id)
    properties = sdk.streams.get_stream_properties(request=request).stream_properties_response or []
    assert [(p.stream_name, p.streamnamespace, p.source_defined_primary_key) for p in properties] == [
        ("users", "public", [["id"]]),
        ("orders", "public", [["id"]]),
        ("payments", "public", [["id"]]),
    ]
    connection = connect(sdk, source_id, destination_id)
    job_request = models.JobCreateRequest(connection_id=connection.connection_id, job_type=models.JobTypeEnum.SYNC)
    job = sdk.jobs.create_job(request=job_request).job_response
    assert job is not None and job.status == "succeeded"
    got = sdk.jobs.get_job(request=api.GetJobRequest(job_id=job.job_id)).job_response
    assert got is not None and got.connection_id == connection.connection_id
    listed = sdk.jobs.list_jobs(request=api.ListJobsRequest(connection_id=connection.connection_id)).jobs_response
    assert listed is not None and [j.job_id for j in listed.data] == [job.job_id]


# --- test controls: hand edits, faults, counters, persistence, latency, concurrency ---


def test_hand_edit_is_visible_and_not_counted(
    standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client
) -> None:
    created = connect(sdk, postgres(sdk, standin), s3(raw, standin))
    before = standin.stats.total
    standin.edit(
        "connection", created.connection_id, {"schedule": {"scheduleType": "cron", "cronExpression": "0 0 5 * * ?"}}
    )
    assert standin.stats.total == before
    assert raw.get(f"/connections/{created.connection_id}").json()["schedule"]["cronExpression"] == "0 0 5 * * ? UTC"


def test_rate_limit_and_server_error_faults(standin: AirbyteStandIn, raw: httpx.Client) -> None:
    standin.set_faults(rate_limit=1, server_error=1)
    limited = raw.get("/sources")
    assert (limited.status_code, limited.json()["detail"]) == (429, "You are being rate limited.")
    assert "retry-after" not in limited.headers
    assert limited.headers["content-type"] == "application/problem+json"
    assert raw.get("/sources").status_code == 500
    assert raw.get("/sources").status_code == 200


def test_token_requests_do_not_consume_faults(standin: AirbyteStandIn, secret: str) -> None:
    standin.set_faults(rate_limit=1)
    headers = {"Authorization": f"Bearer {token(standin, secret)}"}
    assert httpx.get(f"{standin.url}/sources", headers=headers).status_code == 429


def test_lost_response_still_creates_the_resource(standin: AirbyteStandIn, raw: httpx.Client) -> None:
    standin.set_faults(lose_response=1)
    body = {"name": "lake", "workspaceId": standin.workspace_id, "configuration": S3_CONFIGURATION}
    with pytest.raises(httpx.RemoteProtocolError):
        raw.post("/destinations", json=body)
    assert [d["name"] for d in standin.stored("destinations")] == ["lake"]


def test_timeout_fault_outlasts_the_client(standin: AirbyteStandIn, raw: httpx.Client) -> None:
    standin.set_faults(timeout=1)
    standin.hang_seconds = 60.0  # far past the client's timeout, whatever the machine's load
    with pytest.raises(httpx.ReadTimeout):
        raw.get("/sources", timeout=1.0)
    assert raw.get("/sources").status_code == 200


def test_probability_faults_are_seeded(standin: AirbyteStandIn, raw: httpx.Client) -> None:
    standin.hang_seconds = 60.0  # a hang is a ReadTimeout, an answer a status: never mixed up by a slow answer

    def run() -> list[int | str]:
        standin.set_faults(probability=0.5, seed=7)
        outcomes: list[int | str] = []
        for _ in range(12):
            try:
                outcomes.append(raw.get("/sources", timeout=1.0).status_code)
            except httpx.HTTPError as error:
                outcomes.append(type(error).__name__)
        return outcomes

    first = run()
    assert first == run()
    assert 200 in first and any(outcome != 200 for outcome in first)


def test_counters(standin: AirbyteStandIn, sdk: airbyte_api.AirbyteAPI, raw: httpx.Client) -> None:
    standin.stats.reset()
    source_id = postgres(sdk, standin)
    raw.get(f"/sources/{source_id}")
    raw.get("/connections")
    raw.put(f"/connections/{uuid.uuid4()}", json={})
    assert standin.stats.writes == 1  # neither the SDK's token request nor a 405 is a write
    assert standin.stats.by_route == {
        "POST /applications/token": 1,
        "POST /sources": 1,
        "GET /sources/{sourceId}": 1,
        "GET /connections": 1,
        "PUT /connections/{connectionId}": 1,
    }
    assert standin.stats.total == 5
    standin.stats.reset()
    assert (standin.stats.total, standin.stats.by_route) == (0, {})


def test_state_file_survives_a_restart(tmp_path: Any, secret: str) -> None:
    state = tmp_path / "airbyte.json"
    with AirbyteStandIn(client_secret=secret, state_file=state) as first:
        headers = {"Authorization": f"Bearer {token(first, secret)}"}
        body = {"name": "lake", "workspaceId": first.workspace_id, "configuration": S3_CONFIGURATION}
        destination_id = httpx.post(f"{first.url}/destinations", json=body, headers=headers).json()["destinationId"]
    assert os.stat(state).st_mode & 0o777 == 0o600
    with AirbyteStandIn(client_secret=secret, state_file=state) as second:
        headers = {"Authorization": f"Bearer {token(second, secret)}"}
        answer = httpx.get(f"{second.url}/destinations/{destination_id}", headers=headers)
        assert answer.json()["name"] == "lake"
        assert second.stored("destinations")[0]["configuration"]["secret_access_key"] == "s3-secret"


def test_latency_is_added_per_request(secret: str) -> None:
    with AirbyteStandIn(client_secret=secret, latency_seconds=0.05) as server:
        started = time.monotonic()
        for _ in range(4):
            httpx.get(f"{server.url}/health")
        assert time.monotonic() - started >= 0.2


def test_concurrent_creates_are_all_kept(standin: AirbyteStandIn, raw: httpx.Client) -> None:
    headers = dict(raw.headers)
    body = {"name": "lake", "workspaceId": standin.workspace_id, "configuration": S3_CONFIGURATION}

    statuses: list[int | str] = []

    def create() -> None:
        try:
            statuses.append(httpx.post(f"{standin.url}/destinations", json=body, headers=headers).status_code)
        except httpx.HTTPError as exc:  # a failure in a thread must fail the test, not vanish with the thread
            statuses.append(repr(exc))

    threads = [threading.Thread(target=create) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    assert len({d["destinationId"] for d in standin.stored("destinations")}) == 16
