"""Core rules for Airbyte with plain data: no phantom changes, secrets by fingerprint, payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.core.diff import SECRET_CHANGED, diff_resource
from reconciler.core.model import LiveResource, OwnershipRecord
from reconciler.spec.secrets import SecretRef
from reconciler.systems.airbyte import rules
from reconciler.systems.airbyte.loading import AirbyteSelection
from reconciler.systems.airbyte.spec import ConnectionSpec, SourceSpec


def fixed_fingerprints(ref: SecretRef) -> str:
    return f"fp-{ref.describe()}"


def connection_spec(**overrides: Any) -> ConnectionSpec:
    body: dict[str, Any] = {
        "name": "pg-to-lake",
        "source": "pg",
        "destination": "lake",
        "schedule": {"cron": "0 0 2 * * ?"},
        "streams": [
            {"name": "users", "namespace": "public", "syncMode": "incremental_append", "cursorField": ["updated_at"]},
            {"name": "orders", "namespace": "public", "syncMode": "full_refresh_overwrite"},
        ],
    }
    body.update(overrides)
    return ConnectionSpec.model_validate(body)


def live_connection(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "connectionId": "c1",
        "name": "pg-to-lake",
        "sourceId": "s1",
        "destinationId": "d1",
        "status": "active",
        "schedule": {"scheduleType": "cron", "cronExpression": "0 0 2 * * ? UTC"},
        "namespaceDefinition": "destination",
        "prefix": "",
        "configurations": {
            "streams": [  # reversed order, server-filled keys, null selectedFields
                {
                    "name": "orders",
                    "namespace": "public",
                    "syncMode": "full_refresh_overwrite",
                    "selectedFields": None,
                    "primaryKey": [["id"]],
                    "cursorField": [],
                },
                {
                    "name": "users",
                    "namespace": "public",
                    "syncMode": "incremental_append",
                    "cursorField": ["updated_at"],
                    "primaryKey": [["id"]],
                    "selectedFields": [],
                },
            ]
        },
    }
    answer.update(overrides)
    return answer


def desired_connection(spec: ConnectionSpec) -> Any:
    selection = AirbyteSelection(sources=(), destinations=(), connections=(spec,))
    return rules.desired_resources(selection, fixed_fingerprints)[0]


def live_resource(answer: dict[str, Any], desired: Any) -> Any:
    from reconciler.core.model import LiveResource

    fields = rules.live_connection_fields(answer, {"s1": "pg", "d1": "lake"}, desired)
    return LiveResource(desired.key, answer["connectionId"], fields)


def test_no_phantom_changes_from_utc_suffix_stream_order_null_selected_fields_and_server_defaults() -> None:
    desired = desired_connection(connection_spec())
    assert diff_resource(desired, live_resource(live_connection(), desired), None) == []


def test_a_real_cron_change_is_one_field_change() -> None:
    desired = desired_connection(connection_spec(schedule={"cron": "0 0 3 * * ?"}))
    changes = diff_resource(desired, live_resource(live_connection(), desired), None)
    assert [(c.name, c.old, c.new) for c in changes] == [("schedule.cronExpression", "0 0 2 * * ?", "0 0 3 * * ?")]


def test_a_stream_only_live_is_a_change_and_one_only_desired_too() -> None:
    spec = connection_spec(
        streams=[
            {"name": "users", "namespace": "public", "syncMode": "incremental_append"},
            {"name": "payments", "namespace": "public"},
        ]
    )
    desired = desired_connection(spec)
    names = {c.name: (c.old, c.new) for c in diff_resource(desired, live_resource(live_connection(), desired), None)}
    assert names["streams.public/orders"][1] is None
    assert names["streams.public/payments"] == (None, {})


def test_streams_without_namespace_in_the_spec_match_live_streams_with_one() -> None:
    spec = connection_spec(
        streams=[
            {"name": "users", "syncMode": "incremental_append"},
            {"name": "orders", "syncMode": "full_refresh_overwrite"},
        ]
    )
    desired = desired_connection(spec)
    assert diff_resource(desired, live_resource(live_connection(), desired), None) == []


def test_changing_the_source_of_a_connection_forces_a_replace() -> None:
    desired = desired_connection(connection_spec(source="other"))
    live = live_resource(live_connection(), desired)
    assert [c.name for c in diff_resource(desired, live, None)] == ["source"]
    assert "source" in desired.replace_on


def source_spec(password_env: str = "PG_PASSWORD") -> SourceSpec:
    return SourceSpec.model_validate(
        {
            "name": "pg",
            "type": "postgres",
            "configuration": {
                "host": "db",
                "port": 5432,
                "password": {"secretRef": {"env": password_env}},
                "tunnel_method": {"tunnel_method": "NO_TUNNEL"},
            },
        }
    )


def source_resources(spec: SourceSpec) -> Any:
    selection = AirbyteSelection(sources=(spec,), destinations=(), connections=())
    return rules.desired_resources(selection, fixed_fingerprints)[0]


def test_masked_secret_is_not_a_change_when_its_fingerprint_matches_the_last_applied() -> None:
    from reconciler.core.model import LiveResource

    desired = source_resources(source_spec())
    answer = {
        "sourceId": "s1",
        "name": "pg",
        "sourceType": "postgres",
        "configuration": {
            "sourceType": "postgres",
            "host": "db",
            "port": 5432,
            "password": rules.MASK,
            "tunnel_method": {"tunnel_method": "NO_TUNNEL"},
            "ssl_mode": {"mode": "prefer"},
        },
    }
    live = LiveResource(desired.key, "s1", rules.live_connector_fields(rules.SOURCE, answer, desired))
    record = OwnershipRecord(desired.key, "s1", {"configuration.password": "fp-env:PG_PASSWORD"})
    assert diff_resource(desired, live, record) == []

    rotated = OwnershipRecord(desired.key, "s1", {"configuration.password": "fp-of-the-old-value"})
    [change] = diff_resource(desired, live, rotated)
    assert change.secret and change.new == SECRET_CHANGED and change.name == "configuration.password"


def test_payloads_carry_secret_values_only_where_asked() -> None:
    desired = source_resources(source_spec())
    full = rules.connector_payload(rules.SOURCE, desired, {("configuration", "password"): "s3cret"}, "ws", full=True)
    assert full["configuration"]["password"] == "s3cret" and full["workspaceId"] == "ws"
    assert full["configuration"]["sourceType"] == "postgres"
    patch = rules.connector_payload(rules.SOURCE, desired, {}, None, full=False)
    assert "password" not in patch["configuration"] and "workspaceId" not in patch


def test_connection_payload_uses_live_ids_and_field_paths() -> None:
    desired = desired_connection(
        connection_spec(streams=[{"name": "users", "namespace": "public", "selectedFields": ["id", "address.city"]}])
    )
    ids = {rules.key(rules.SOURCE, "pg"): "s1", rules.key(rules.DESTINATION, "lake"): "d1"}
    body = rules.connection_payload(desired.fields, ids, full=True)
    assert body["sourceId"] == "s1" and body["destinationId"] == "d1"
    assert body["configurations"]["streams"] == [
        {
            "name": "users",
            "namespace": "public",
            "selectedFields": [{"fieldPath": ["address", "city"]}, {"fieldPath": ["id"]}],
        }
    ]
    assert body["schedule"] == {"scheduleType": "cron", "cronExpression": "0 0 2 * * ?"}


CUSTOM_DEFINITION = "0b7cbd2c-7c55-4d5a-9c8f-3e1d2f6a1b11"


def custom_source(**identity: str) -> Any:
    spec = SourceSpec.model_validate({"name": "gong", **identity, "configuration": {"region": "eu"}})
    return source_resources(spec)


def custom_answer(definition_id: str = CUSTOM_DEFINITION, source_type: str = "") -> dict[str, Any]:
    """A custom connector as Airbyte answers it: no type, the definition id, the type stripped from the config."""
    return {
        "sourceId": "s9",
        "name": "gong",
        "sourceType": source_type,
        "definitionId": definition_id,
        "configuration": {"region": "eu"},
    }


def test_an_unreadable_live_type_is_never_a_replace_and_the_plan_says_what_it_cannot_compare() -> None:
    desired = custom_source(type="gong-custom")
    live = LiveResource(desired.key, "s9", rules.live_connector_fields(rules.SOURCE, custom_answer(), desired))
    assert diff_resource(desired, live, None) == []
    warning = rules.unreadable_type(rules.SOURCE, custom_answer(), desired)
    assert warning is not None and "definitionId" in warning and CUSTOM_DEFINITION in warning
    assert rules.unreadable_type(rules.SOURCE, custom_answer(source_type="postgres"), desired) is None


def test_a_connector_with_a_definition_id_is_compared_by_it() -> None:
    for identity in ({"definitionId": CUSTOM_DEFINITION}, {"definitionId": CUSTOM_DEFINITION, "type": "gong-custom"}):
        desired = custom_source(**identity)
        assert rules.unreadable_type(rules.SOURCE, custom_answer(), desired) is None
        same = LiveResource(desired.key, "s9", rules.live_connector_fields(rules.SOURCE, custom_answer(), desired))
        assert diff_resource(desired, same, None) == []
        other = custom_answer(definition_id="11111111-2222-3333-4444-555555555555")
        moved = LiveResource(desired.key, "s9", rules.live_connector_fields(rules.SOURCE, other, desired))
        assert [c.name for c in diff_resource(desired, moved, None)] == ["definitionId"]
        assert "definitionId" in desired.replace_on


def test_a_readable_type_that_differs_is_still_a_change() -> None:
    desired = custom_source(type="gong-custom")
    answer = custom_answer(definition_id="decd338e-5647-4c0b-adf4-da0e75f5a750", source_type="postgres")
    live = LiveResource(desired.key, "s9", rules.live_connector_fields(rules.SOURCE, answer, desired))
    [change] = diff_resource(desired, live, None)
    assert (change.name, change.old, change.new) == ("sourceType", "postgres", "gong-custom")


def test_a_definition_id_only_spec_creates_by_definition_id_without_a_type() -> None:
    desired = custom_source(definitionId=CUSTOM_DEFINITION)
    body = rules.connector_payload(rules.SOURCE, desired, {}, "ws", full=True)
    assert body["definitionId"] == CUSTOM_DEFINITION and "sourceType" not in body["configuration"]


def test_a_connector_needs_a_type_or_a_definition_id() -> None:
    with pytest.raises(ValidationError, match="give `type`"):
        SourceSpec.model_validate({"name": "gong", "configuration": {}})


def test_import_writes_a_custom_connector_by_its_definition_id() -> None:
    from reconciler.systems.airbyte.pull import connector_entry

    entry = connector_entry(rules.SOURCE, custom_answer(), "gong", "qa", [])
    assert entry == {"name": "gong", "definitionId": CUSTOM_DEFINITION, "configuration": {"region": "eu"}}
    SourceSpec.model_validate(entry)


def test_sent_streams_carry_the_live_settings_the_spec_leaves_out() -> None:
    live = [
        {
            "name": "users",
            "namespace": "public",
            "syncMode": "incremental_append",
            "cursorField": ["updated_at"],
            "primaryKey": [["id"]],
            "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["updated_at"]}],
            "mappers": [{"id": "m1", "type": "hashing", "mapperConfiguration": {"targetField": "id"}}],
            "includeFiles": False,
        },
        {"name": "orders", "namespace": "public", "selectedFields": [], "destinationObjectName": "app_orders"},
    ]
    sent = [
        {"name": "users", "namespace": "public", "syncMode": "full_refresh_append"},
        {"name": "orders", "selectedFields": [{"fieldPath": ["id"]}]},  # no namespace in the spec
        {"name": "payments", "namespace": "public"},  # new: nothing to keep
    ]
    users, orders, payments = rules.keep_live_stream_settings(sent, live)
    assert users == {
        "name": "users",
        "namespace": "public",
        "syncMode": "full_refresh_append",  # declared: the spec wins
        "cursorField": ["updated_at"],
        "primaryKey": [["id"]],
        "selectedFields": [{"fieldPath": ["id"]}, {"fieldPath": ["updated_at"]}],
        "mappers": [{"id": "m1", "type": "hashing", "mapperConfiguration": {"targetField": "id"}}],
    }
    assert orders == {
        "name": "orders",
        "selectedFields": [{"fieldPath": ["id"]}],
        "destinationObjectName": "app_orders",
    }
    assert payments == {"name": "payments", "namespace": "public"}


def test_connections_outside_the_specs_are_found_by_the_managed_ends_they_use() -> None:
    answers = [
        {"connectionId": "c1", "name": "pg-to-lake", "sourceId": "s1", "destinationId": "d1"},  # managed
        {"connectionId": "c7", "name": "hand-made", "sourceId": "s9", "destinationId": "d1"},  # s9: not managed
    ]
    found = rules.unmanaged_connections(answers, {"c1"}, {"s1": "pg", "d1": "lake"})
    assert found == {rules.key(rules.DESTINATION, "lake"): ("connection 'hand-made' (c7)",)}


def test_what_observe_keeps_of_a_listed_answer_holds_nothing_it_never_reads() -> None:
    """Listed pages are turned into these as they arrive, before the specs are known: the raw answers are dropped."""
    answer = live_connection(
        workspaceId="w1",
        createdAt=1795966291,
        dataResidency="auto",
        tags=[{"tagId": "t1"}],
    )
    answer["configurations"]["streams"][0]["mappers"] = [{"type": "hashing", "config": {"fieldName": "email"}}]
    listed = rules.listed_connection("c1", answer)
    kept = repr(listed)
    for unread in ("w1", "1795966291", "dataResidency", "t1", "hashing", "createdAt"):
        assert unread not in kept
    desired = desired_connection(connection_spec())
    assert rules.connection_fields(listed, {"s1": "pg", "d1": "lake"}, desired) == rules.live_connection_fields(
        answer, {"s1": "pg", "d1": "lake"}, desired
    )


def test_listed_connections_hold_one_copy_of_each_repeated_text() -> None:
    texts = rules.Texts()
    first, second = (
        rules.listed_connection(f"c{n}", json.loads(json.dumps(live_connection())), texts.share) for n in (1, 2)
    )
    assert first.streams[0][0] is second.streams[0][0]  # the stream's key
    assert first.streams[0][2]["syncMode"] is second.streams[0][2]["syncMode"]
    assert first.settings["schedule"]["cronExpression"] is second.settings["schedule"]["cronExpression"]
    assert first.source_id is second.source_id
