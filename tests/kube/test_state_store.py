"""State in ConfigMaps: survives a restart, two writers lose nothing, 5,000 resources fit, a kill loses nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.alerts import AlertRecord, FileAlertStore
from reconciler.clients.kube.alert_store import KubeAlertStore
from reconciler.clients.kube.client import KubeClient, KubeError
from reconciler.clients.kube.state_store import JOURNAL_LIMIT, KubeStateStore
from reconciler.core.model import OwnershipRecord, PendingCreate, ResourceKey
from reconciler.errors import ApiError, ReconcilerError
from reconciler.sandbox.kube_server import KubeStandIn
from tests.kube.conftest import NAMESPACE

NAME = "reconciler-state-qa"


def store(kube: KubeClient, environment: str = "qa") -> KubeStateStore:
    return KubeStateStore(kube, NAMESPACE, NAME, environment)


def rec(system: str, kind: str, name: str, *, secret: str | None = None) -> OwnershipRecord:
    key = ResourceKey(system, kind, name)
    fingerprints = {}
    if secret is not None:
        fingerprints = {"configuration.password": "hmac-sha256:" + hashlib.sha256(secret.encode()).hexdigest()}
    return OwnershipRecord(key, str(uuid.uuid5(uuid.NAMESPACE_URL, str(key))), fingerprints)


def records(*items: OwnershipRecord) -> dict[ResourceKey, OwnershipRecord]:
    return {item.key: item for item in items}


def config_maps(standin: KubeStandIn) -> dict[str, dict[str, Any]]:
    """Every ConfigMap of the state namespace, by name, as stored."""
    with standin.store.lock:
        return {
            key[2]: json.loads(json.dumps(obj))
            for key, obj in standin.store.objects.items()
            if key[0] == "configmaps" and key[1] == NAMESPACE
        }


def data_bytes(config_map: dict[str, Any]) -> int:
    """What the API server counts against its 1 MiB: data values plus decoded binaryData."""
    total = sum(len(str(v).encode()) for v in (config_map.get("data") or {}).values())
    return total + sum(len(base64.b64decode(v)) for v in (config_map.get("binaryData") or {}).values())


A = rec("airbyte", "source", "app-postgres", secret="hunter2")
B = rec("airbyte", "destination", "lake", secret="aws")
C = rec("airbyte", "connection", "app-postgres-to-lake")
D = rec("superset", "dashboard", "revenue")


def test_records_survive_a_new_store_and_a_new_process(
    standin: KubeStandIn, kube: KubeClient, kubeconfig: Path
) -> None:
    first = store(kube)
    assert first.load() == {}
    first.save(records(A, B))
    first.record(C.key, C)
    first.record(A.key, None)

    assert store(kube).load() == records(B, C)  # journal replayed over the shard, before any compaction
    first.compact()
    assert store(kube).load() == records(B, C)
    assert sorted(config_maps(standin)) == [NAME, f"{NAME}-2"]  # the head, and one shard (the first was replaced)

    script = (
        "import json, sys\n"
        "from reconciler.clients.kube.client import KubeClient\n"
        "from reconciler.clients.kube.state_store import KubeStateStore\n"
        f"kube = KubeClient.from_kubeconfig({str(kubeconfig)!r})\n"
        f"found = KubeStateStore(kube, {NAMESPACE!r}, {NAME!r}, 'qa').load()\n"
        "print(json.dumps(sorted([str(k), r.id, r.fingerprints] for k, r in found.items())))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    expected = sorted([str(r.key), r.id, dict(r.fingerprints)] for r in (B, C))
    assert json.loads(done.stdout) == expected


def test_record_writes_only_the_small_head_whatever_the_number_of_records(
    standin: KubeStandIn, kube: KubeClient
) -> None:
    big = {r.key: r for r in (rec("airbyte", "connection", f"conn-{i:04d}", secret=str(i)) for i in range(3000))}
    writer = store(kube)
    writer.save(big)
    writer.load()
    standin.stats.reset()

    for i in range(5):
        writer.record(ResourceKey("airbyte", "connection", f"new-{i}"), rec("airbyte", "connection", f"new-{i}"))

    assert standin.stats.by_route == {"PUT configmaps/{name}": 5}  # the head only: no read, no shard rewritten
    head = config_maps(standin)[NAME]
    assert data_bytes(head) < 4096
    assert len(store(kube).load()) == 3005


def test_the_journal_is_folded_into_the_shards_past_its_limit(standin: KubeStandIn, kube: KubeClient) -> None:
    writer = store(kube)
    writer.load()
    for i in range(JOURNAL_LIMIT + 3):
        writer.record(ResourceKey("airbyte", "connection", f"c{i}"), rec("airbyte", "connection", f"c{i}"))
    head = config_maps(standin)[NAME]
    journal = base64.b64decode(head["binaryData"]["journal.jsonl.gz"])
    assert 0 < len(journal) < 2048  # folded once at the limit; three entries since
    assert len(store(kube).load()) == JOURNAL_LIMIT + 3


def test_two_writers_with_stale_resource_versions_lose_no_record(standin: KubeStandIn, kube: KubeClient) -> None:
    store(kube).save(records(A, B))
    one, two = store(kube), store(kube)
    assert one.load() == two.load() == records(A, B)

    one.record(C.key, C)  # two's head is stale from here on
    two.record(D.key, D)  # 409, re-read, appended after one's entry
    changed_b = OwnershipRecord(B.key, B.id, {"configuration.secret_access_key": "hmac-sha256:" + "0" * 64})
    one.save({**records(A, C), B.key: changed_b})  # one never saw D: D is kept, B changed
    two.save({C.key: C, D.key: D, B.key: B})  # two drops A, never changed B or saw one's change: B stays one's

    assert store(kube).load() == {B.key: changed_b, C.key: C, D.key: D}
    one.compact()
    two.compact()
    assert store(kube).load() == {B.key: changed_b, C.key: C, D.key: D}


def test_a_write_refused_by_a_forced_conflict_is_merged_and_retried(standin: KubeStandIn, kube: KubeClient) -> None:
    writer = store(kube)
    writer.save(records(A))
    standin.force_conflicts(3)  # someone else wrote first, three times
    writer.record(B.key, B)
    writer.save(records(A, B, C))
    assert store(kube).load() == records(A, B, C)


def test_5000_resources_fit_well_within_the_object_limit(standin: KubeStandIn, kube: KubeClient) -> None:
    teams = ["finance", "growth", "marketing", "platform", "product", "sales"]
    many: dict[ResourceKey, OwnershipRecord] = {}
    for i in range(5000):
        team = teams[i % len(teams)]
        kind, system = [
            ("connection", "airbyte"),
            ("source", "airbyte"),
            ("destination", "airbyte"),
            ("dataset", "superset"),
            ("chart", "superset"),
        ][i % 5]
        name = f"{team}-{kind}-postgres-replica-{i:05d}-to-bigquery-warehouse"
        item = rec(system, kind, name, secret=f"s{i}" if i % 3 == 0 else None)
        if system == "superset":
            item = OwnershipRecord(item.key, str(10_000 + i), item.fingerprints)
        many[item.key] = item
    writer = store(kube)
    writer.save(many)

    sizes = {name: data_bytes(cm) for name, cm in config_maps(standin).items()}
    biggest = max(sizes.values())
    print(f"\n5,000 resources: {len(sizes)} ConfigMaps, biggest object {biggest:,} bytes of data")
    assert biggest < 512 * 1024  # well within the API server's 1 MiB (1,048,576 bytes)
    assert store(kube).load() == many


def test_the_stand_in_refuses_data_over_1_mib_as_the_api_server_does(core: client.CoreV1Api) -> None:
    def body(name: str, binary: bytes) -> client.V1ConfigMap:
        return client.V1ConfigMap.model_validate(
            {"metadata": {"name": name}, "binaryData": {"blob": base64.b64encode(binary).decode()}}
        )

    core.create_namespaced_config_map(NAMESPACE, body("exactly", b"x" * 1024 * 1024))  # 1 MiB decoded: accepted
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_config_map(NAMESPACE, body("over", b"x" * (1024 * 1024 + 1)))
    assert refused.value.status == 422
    message = json.loads(str(refused.value.body))["message"]
    assert message == 'ConfigMap "over" is invalid: []: Too long: must have at most 1048576 bytes'

    with pytest.raises(ApiException) as too_large:
        core.create_namespaced_config_map(NAMESPACE, body("huge", os.urandom(3 * 1024 * 1024)))
    assert too_large.value.status == 413
    assert json.loads(str(too_large.value.body))["message"] == "Request entity too large: limit is 3145728"


class KilledAt:
    """A KubeClient whose process dies (an exception nobody catches) at one call: a kill at that point."""

    def __init__(self, kube: KubeClient, call: str, *, nth: int = 1) -> None:
        self.kube, self.call, self.left = kube, call, nth
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.kube, name)
        if name != self.call or not self.armed:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.left -= 1
            if self.left == 0:
                raise SystemExit(f"killed at {name}")
            return attribute(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    ("call", "nth"),
    [
        ("create_config_map", 1),  # the first new shard
        ("create_config_map", 2),  # the second new shard
        ("replace_config_map", 1),  # the swap of the head
        ("list_config_maps", 1),  # after the swap, before the old shards are deleted
        ("delete_config_map", 1),  # half-way through deleting them
    ],
)
def test_a_kill_at_any_point_of_a_fold_loses_nothing_and_a_rerun_converges(
    standin: KubeStandIn, kube: KubeClient, call: str, nth: int
) -> None:
    base = {r.key: r for r in (rec("airbyte", "connection", f"c{i:04d}", secret=str(i)) for i in range(4000))}
    store(kube).save(base)
    writer = store(kube)
    writer.load()
    writer.record(A.key, A)
    writer.record(ResourceKey("airbyte", "connection", "c0001"), None)
    expected = {**base, A.key: A}
    del expected[ResourceKey("airbyte", "connection", "c0001")]

    killer = KilledAt(kube, call, nth=nth)
    doomed = KubeStateStore(killer, NAMESPACE, NAME, "qa")  # type: ignore[arg-type]
    doomed.load()
    doomed.record(B.key, B)
    expected[B.key] = B
    killer.armed = True
    with pytest.raises(SystemExit):
        doomed.save({**expected, C.key: C})

    assert store(kube).load() in (expected, {**expected, C.key: C})  # before the swap, or after it
    rerun = store(kube)
    rerun.load()
    rerun.save({**expected, C.key: C})
    rerun.compact()
    assert store(kube).load() == {**expected, C.key: C}
    named = json.loads(config_maps(standin)[NAME]["data"]["index.json"])["shards"]
    leftovers = sorted(set(config_maps(standin)) - {NAME, *named})
    assert leftovers == []  # orphans of the killed fold collected


def test_a_state_of_another_environment_is_refused(kube: KubeClient) -> None:
    store(kube, "prod").save(records(A))
    with pytest.raises(ReconcilerError, match="belongs to environment 'prod', not 'qa'"):
        store(kube, "qa").load()


def test_an_unreachable_api_server_is_a_temporary_api_error(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.disrupt("configmaps", status=503)
    with pytest.raises(ApiError) as failed:
        store(kube).load()
    assert failed.value.retryable and "state of environment qa (configmap data/reconciler-state-qa)" in str(
        failed.value
    )
    assert not isinstance(failed.value, KubeError)


def alert(key: str, ts: str, digest: str = "d1") -> AlertRecord:
    return AlertRecord(key, "C0123", ts, digest, extra={"revision": "abc123"})


@pytest.mark.parametrize("where", ["kubernetes", "file"])
def test_alert_records_of_two_writers_are_merged_per_key(kube: KubeClient, tmp_path: Path, where: str) -> None:
    def open_store() -> Any:
        if where == "kubernetes":
            return KubeAlertStore(kube, NAMESPACE, NAME, "qa")
        return FileAlertStore(tmp_path / "qa.alerts.json", "qa")

    first = open_store()
    first.save({"drift/qa/airbyte/connection/a": alert("drift/qa/airbyte/connection/a", "1.1")})
    one, two = open_store(), open_store()
    seen = one.load()
    assert two.load() == seen
    one.save({**seen, "apply/qa": alert("apply/qa", "2.2")})
    resolved = AlertRecord("drift/qa/airbyte/connection/a", "C0123", "1.1", "d2", resolved=True)
    two.save({"drift/qa/airbyte/connection/a": resolved})  # two never saw apply/qa: it is kept

    assert open_store().load() == {"drift/qa/airbyte/connection/a": resolved, "apply/qa": alert("apply/qa", "2.2")}
    again = open_store()
    again.save(again.load())  # nothing changed: nothing to write, nothing lost
    assert len(open_store().load()) == 2


def test_a_fold_of_another_writers_records_does_not_make_them_ours_to_drop(kube: KubeClient) -> None:
    store(kube).save(records(A))
    one, two = store(kube), store(kube)
    one.load()
    two.load()
    two.save(records(A, D))  # one has not seen D
    one.record(B.key, B)
    one.compact()  # folds D in with one's B: D is still not something one knows about
    one.save(records(A, B, C))  # one's view: A, B, C; it never dropped D
    assert store(kube).load() == records(A, B, C, D)


def test_a_pending_create_is_carried_across_folds_until_it_settles(kube: KubeClient) -> None:
    now = [1_800_000_000.0]
    writer = KubeStateStore(kube, NAMESPACE, NAME, "qa", clock=lambda: now[0])
    writer.load()
    late = ResourceKey("airbyte", "connection", "late")
    writer.intend(PendingCreate(late, now[0], now[0] + 60))
    for i in range(JOURNAL_LIMIT + 3):  # folds once at the limit, with the create still in flight
        writer.record(ResourceKey("airbyte", "connection", f"c{i}"), rec("airbyte", "connection", f"c{i}"))
    writer.compact()
    reader = store(kube)
    assert len(reader.load()) == JOURNAL_LIMIT + 3 and set(reader.pending()) == {late}
    now[0] += 61
    writer.record(ResourceKey("airbyte", "connection", "x"), rec("airbyte", "connection", "x"))
    writer.compact()  # settled by time: not carried
    reader.load()
    assert reader.pending() == {}
    writer.intend(PendingCreate(late, now[0], now[0] + 60))
    writer.record(late, rec("airbyte", "connection", "late"))  # answered: settled by its record
    reader.load()
    assert reader.pending() == {}
