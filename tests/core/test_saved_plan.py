"""A saved plan against a fresh one, with plain data: a round trip is identical, every edit is named."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from reconciler.core.model import (
    DesiredResource,
    LiveResource,
    OwnershipRecord,
    ResourceKey,
    SecretSlot,
    digest_of,
)
from reconciler.core.plan import Plan, PlanInputs, build_plan
from reconciler.core.plan_codec import plan_from_json, plan_to_json
from reconciler.core.saved_plan import saved_plan_differences
from reconciler.errors import PlanError

SRC = ResourceKey("airbyte", "source", "pg")
OLD = ResourceKey("airbyte", "source", "old")
DST = ResourceKey("airbyte", "destination", "lake")
CONN = ResourceKey("airbyte", "connection", "pg-to-lake")
DASH = ResourceKey("superset", "dashboard", "sales.overview")


def fresh(fingerprint: str = "hmac-sha256:aaa") -> Plan:
    """Creates a connection to an unchanged source, updates a secret, deletes an owned leftover."""
    secret = SecretSlot(("configuration", "password"), "env:PG_PASSWORD", fingerprint)
    desired = [
        DesiredResource(SRC, {"name": "pg", "configuration": {"host": "db"}}, secrets=(secret,)),
        DesiredResource(DST, {"name": "lake"}),
        DesiredResource(CONN, {"name": "pg-to-lake", "source": "pg", "destination": "lake"}, depends_on=(SRC, DST)),
        DesiredResource(DASH, {"metadata": {"a.b": 1}}),
    ]
    live = {
        SRC: LiveResource(SRC, "s1", {"name": "pg", "configuration": {"host": "db"}}),
        DST: LiveResource(DST, "d1", {"name": "lake"}),
        OLD: LiveResource(OLD, "o1", {"name": "old"}),
        DASH: LiveResource(DASH, "7", {"metadata": {"a.b": 2}}),
    }
    records = {
        SRC: OwnershipRecord(SRC, "s1", {"configuration.password": "hmac-sha256:old"}),
        OLD: OwnershipRecord(OLD, "o1"),
        DASH: OwnershipRecord(DASH, "7"),
    }
    return build_plan(PlanInputs("qa", desired, live, records, prune=frozenset({"airbyte", "superset"})))


def saved(edit: object = None) -> Plan:
    """The fresh plan written to a file and read back, after `edit` changed its JSON."""
    body = json.loads(json.dumps(plan_to_json(fresh()), default=str))
    if callable(edit):
        edit(body)
    return plan_from_json(body)


def test_a_plan_read_back_from_its_file_is_identical_to_a_fresh_one() -> None:
    plan = fresh()
    assert [a.kind.value for a in plan.actions] == ["update", "create", "update", "delete"]
    assert plan.adopted == (DST,)
    assert saved_plan_differences(saved(), plan) == []


def test_a_rotated_secret_is_named_by_its_reference() -> None:
    assert saved_plan_differences(saved(), fresh("hmac-sha256:bbb")) == [
        "secret env:PG_PASSWORD of airbyte.source/pg changed since the plan was made"
    ]


def test_an_edited_secret_reference_is_refused() -> None:
    def edit(body: dict[str, object]) -> None:
        body["actions"][0]["desired"]["secrets"][0]["ref"] = "file:/etc/shadow"  # type: ignore[index]

    assert saved_plan_differences(saved(edit), fresh()) == [
        "`update airbyte.source/pg` differs from a fresh plan in desired secrets"
    ]


def test_an_edited_change_kind_or_dependency_is_refused() -> None:
    def changes(body: dict[str, object]) -> None:
        body["actions"][0]["changes"] = []  # type: ignore[index]

    def kind(body: dict[str, object]) -> None:
        body["actions"][3]["action"] = "update"  # type: ignore[index]
        body["summary"] = {**body["summary"], "update": 3, "delete": 0}  # type: ignore[dict-item]  # counted as edited

    def depends(body: dict[str, object]) -> None:
        body["actions"][1]["desired"]["dependsOn"] = []  # type: ignore[index]

    assert saved_plan_differences(saved(changes), fresh()) == [
        "`update airbyte.source/pg` differs from a fresh plan in its changes"
    ]
    assert saved_plan_differences(saved(kind), fresh()) == ["`update airbyte.source/old` is `delete` in a fresh plan"]
    assert saved_plan_differences(saved(depends), fresh()) == [
        "`create airbyte.connection/pg-to-lake` differs from a fresh plan in desired dependsOn"
    ]


def test_an_edited_live_id_of_an_unchanged_or_adopted_resource_is_refused() -> None:
    def edit(body: dict[str, object]) -> None:
        body["liveIds"]["airbyte.destination/lake"] = "o1"  # type: ignore[index]

    assert saved_plan_differences(saved(edit), fresh()) == [
        "the saved plan's live id of airbyte.destination/lake is 'o1', but it is 'd1'"
    ]


def test_adoptions_forgotten_records_duplicates_and_order_are_checked() -> None:
    plan = fresh()
    assert saved_plan_differences(dataclasses.replace(plan, adopted=(DST, OLD)), plan) == [
        "the saved plan adopts airbyte.source/old, a fresh plan does not"
    ]
    assert saved_plan_differences(dataclasses.replace(plan, forgotten=(OLD,)), plan) == [
        "the saved plan forgets airbyte.source/old, a fresh plan does not"
    ]
    doubled = dataclasses.replace(plan, actions=(*plan.actions, plan.actions[-1]))
    assert saved_plan_differences(doubled, plan) == [
        f"the saved plan has `{plan.actions[-1].kind.value} airbyte.source/old`, which a fresh plan does not"
    ]
    assert saved_plan_differences(doubled, doubled) == []  # one key, two actions (a cascade): checked in turn
    assert saved_plan_differences(plan, doubled) == [
        f"a fresh plan has `{plan.actions[-1].kind.value} airbyte.source/old`, which the saved plan does not"
    ]
    reordered = dataclasses.replace(plan, actions=tuple(reversed(plan.actions)))
    assert saved_plan_differences(reordered, plan) == [
        "the saved plan's actions are in another order than a fresh plan's"
    ]


def test_observed_digests_are_the_ones_saved_and_a_saved_digest_must_match_its_resources() -> None:
    plan = fresh()
    read_back = saved()
    assert read_back.observed_digest == plan.observed_digest
    assert dict(read_back.live_digests) == dict(plan.live_digests)
    assert list(plan.live_digests) == sorted(plan.live_digests)  # key order, as saved
    assert fresh().observed_digest == plan.observed_digest  # stable across plans of the same observation

    def edit_one_resource(body: dict[str, Any]) -> None:
        body["liveDigests"][str(SRC)] = "0" * 64  # the digest, not the observedDigest: the two disagree

    with pytest.raises(PlanError, match="observedDigest"):
        saved(edit_one_resource)


def test_a_plan_hashes_what_it_observed_only_when_the_digests_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[ResourceKey] = []

    def counted(resource: LiveResource) -> str:
        hashed.append(resource.key)
        return digest_of({"id": resource.id, "fields": resource.fields})

    monkeypatch.setattr(LiveResource, "digest", property(counted))
    plan = fresh()
    assert hashed == [] and len(plan.live_digests) == 4
    first = plan.observed_digest
    assert sorted(hashed) == sorted([SRC, DST, OLD, DASH])  # each once, then kept
    assert plan.observed_digest == first and len(hashed) == 4
