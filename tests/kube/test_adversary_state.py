"""The Kubernetes state store against hand edits and outsized records: a shard ConfigMap deleted by hand, a
head whose JSON was broken by hand, records with very long keys against the API server's 1 MiB per object."""

from __future__ import annotations

import json
import secrets
import threading

import pytest
from kubernetes import client

from reconciler.clients.kube.client import KubeClient
from reconciler.clients.kube.state_store import JOURNAL_LIMIT, KubeStateStore
from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import PermanentError
from reconciler.sandbox.kube_server import KubeStandIn
from tests.kube.conftest import NAMESPACE

NAME = "reconciler-state-qa"
SAFETY_SECONDS = 60  # only so that a broken build fails instead of hanging; nothing is timed


def store(kube: KubeClient) -> KubeStateStore:
    return KubeStateStore(kube, NAMESPACE, NAME, "qa")


def rec(name: str) -> OwnershipRecord:
    return OwnershipRecord(ResourceKey("airbyte", "connection", name), f"id-{name[:40]}", {})


def test_a_shard_deleted_by_hand_is_a_permanent_error_naming_it_not_a_retry_forever(
    kube: KubeClient, core: client.CoreV1Api
) -> None:
    writer = store(kube)
    writer.load()
    writer.save({rec(f"c{n}").key: rec(f"c{n}") for n in range(10)})
    index = json.loads(kube.read_config_map(NAMESPACE, NAME)["data"]["index.json"])  # type: ignore[index]
    shard = next(name for name in index["shards"] if name)
    core.delete_namespaced_config_map(shard, NAMESPACE)
    with pytest.raises(PermanentError) as refused:
        store(kube).load()
    assert shard in str(refused.value) and "missing" in str(refused.value)


def test_a_head_broken_by_hand_is_a_permanent_error_naming_it(kube: KubeClient, core: client.CoreV1Api) -> None:
    writer = store(kube)
    writer.load()
    writer.save({rec("a").key: rec("a")})
    core.patch_namespaced_config_map(NAME, NAMESPACE, {"data": {"index.json": '{"formatVersion": 1, "shards": ['}})
    with pytest.raises(PermanentError, match=f"configmap {NAMESPACE}/{NAME} is unreadable"):
        store(kube).load()


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_records_with_very_long_keys_never_push_the_head_past_the_object_limit(
    standin: KubeStandIn, kube: KubeClient
) -> None:
    """The journal folds at JOURNAL_LIMIT entries; entries of 12 KB of incompressible name reach 1 MiB first."""
    writer = store(kube)
    writer.load()
    names = [secrets.token_urlsafe(9_000) for _ in range(JOURNAL_LIMIT)]
    for name in names:
        writer.record(rec(name).key, rec(name))
    assert {key.name for key in store(kube).load()} == set(names)


def test_a_single_record_larger_than_an_object_is_refused_not_split_forever(kube: KubeClient) -> None:
    huge = rec(secrets.token_urlsafe(1_200_000))
    outcome: list[BaseException | None] = []

    def save() -> None:
        writer = store(kube)
        writer.load()
        try:
            writer.save({huge.key: huge})
            outcome.append(None)
        except BaseException as exc:  # the outcome is what is checked
            outcome.append(exc)

    thread = threading.Thread(target=save, daemon=True)
    thread.start()
    thread.join(timeout=SAFETY_SECONDS)
    assert not thread.is_alive(), "saving one record bigger than a ConfigMap never ends"
    assert isinstance(outcome[0], PermanentError) and "too large" in str(outcome[0])


def test_a_storm_of_writers_with_stale_resource_versions_loses_no_record(kube: KubeClient) -> None:
    """Six writers, each appending its own records as fast as it can, all on one head: every write conflicts
    with the others'; each is merged and retried, and every record is there in the end."""
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(writer_number: int) -> None:
        writer = store(kube)
        writer.load()
        start.wait()
        try:
            for n in range(25):
                record = rec(f"w{writer_number}-{n}")
                writer.record(record.key, record)
        except BaseException as exc:  # any failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(number,), daemon=True) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SAFETY_SECONDS)
    assert errors == []
    assert {key.name for key in store(kube).load()} == {f"w{w}-{n}" for w in range(6) for n in range(25)}
