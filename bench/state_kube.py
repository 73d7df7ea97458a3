"""Benchmark: the Kubernetes state store at 5,000 resources, on the Kubernetes stand-in through the official client.

    python bench/state_kube.py [RESOURCES]

Prints the time of a full save, a load, one `record` (mean over 200 actions, each one PUT of the head),
a fold of 200 journal entries into the shards, and the size of the biggest ConfigMap (its data as the
API server counts it against the 1 MiB limit). Figures, not assertions: the machine's load shows in them.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import tempfile
import time
import uuid
from pathlib import Path

from reconciler.clients.kube.client import KubeClient
from reconciler.clients.kube.state_store import JOURNAL_LIMIT, KubeStateStore
from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.sandbox.kube_server import KubeStandIn

NAMESPACE = "reconciler"
NAME = "reconciler-state-bench"


def records(count: int) -> dict[ResourceKey, OwnershipRecord]:
    found: dict[ResourceKey, OwnershipRecord] = {}
    kinds = [("airbyte", "connection"), ("airbyte", "source"), ("airbyte", "destination"), ("superset", "chart")]
    for i in range(count):
        system, kind = kinds[i % len(kinds)]
        key = ResourceKey(system, kind, f"team-{i % 12}-{kind}-postgres-replica-{i:05d}-to-warehouse")
        fingerprints = {"configuration.password": "hmac-sha256:" + hashlib.sha256(str(i).encode()).hexdigest()}
        found[key] = OwnershipRecord(key, str(uuid.uuid4()), fingerprints if i % 3 == 0 else {})
    return found


def biggest_object(standin: KubeStandIn) -> tuple[int, int]:
    with standin.store.lock:
        sizes = [
            sum(len(str(v).encode()) for v in (obj.get("data") or {}).values())
            + sum(len(base64.b64decode(v)) for v in (obj.get("binaryData") or {}).values())
            for key, obj in standin.store.objects.items()
            if key[0] == "configmaps"
        ]
    return max(sizes), len(sizes)


def main(count: int) -> None:
    with KubeStandIn() as standin, tempfile.TemporaryDirectory() as scratch:
        kube = KubeClient.from_kubeconfig(str(standin.write_kubeconfig(Path(scratch) / "kubeconfig")))
        many = records(count)
        store = KubeStateStore(kube, NAMESPACE, NAME, "bench")
        store.load()
        started = time.perf_counter()
        store.save(many)
        saved = time.perf_counter() - started

        started = time.perf_counter()
        fresh = KubeStateStore(kube, NAMESPACE, NAME, "bench")
        assert len(fresh.load()) == count
        loaded = time.perf_counter() - started

        extra = list(records(JOURNAL_LIMIT).values())
        started = time.perf_counter()
        for item in extra[:-1]:
            fresh.record(ResourceKey(item.key.system, item.key.kind, "new-" + item.key.name), item)
        per_record = (time.perf_counter() - started) / (len(extra) - 1)
        started = time.perf_counter()
        fresh.compact()
        folded = time.perf_counter() - started
        size, objects = biggest_object(standin)
        kube.close()
    print(f"{count:,} resources: save {saved:.2f} s, load {loaded:.2f} s, record {per_record * 1000:.1f} ms each,")
    print(f"fold of {len(extra) - 1} journal entries {folded:.2f} s; {objects} ConfigMaps, biggest {size:,} B of data")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
