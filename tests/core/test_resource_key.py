"""ResourceKey: interned, so equal keys are one object; immutable, ordered, and the same after a copy or a pickle."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import threading

import pytest

from reconciler.core.model import ResourceKey


def test_equal_keys_are_one_object_however_they_are_made() -> None:
    key = ResourceKey("airbyte", "source", "app-postgres")
    assert ResourceKey.parse("airbyte.source/app-postgres") is key
    assert copy.copy(key) is key and copy.deepcopy(key) is key
    assert pickle.loads(pickle.dumps(key)) is key
    assert {key: 1}[ResourceKey("airbyte", "source", "app-postgres")] == 1
    assert key != ResourceKey("airbyte", "source", "app-postgres2")
    assert key != "airbyte.source/app-postgres"


def test_a_key_pickled_in_another_process_finds_its_entry_here() -> None:
    """String hashes differ between processes: a key must not carry its hash along."""
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle,sys; from reconciler.core.model import ResourceKey as K; "
            "sys.stdout.buffer.write(pickle.dumps(K('superset', 'chart', 'ünïcode')))",
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert {ResourceKey("superset", "chart", "ünïcode"): "found"}[pickle.loads(made)] == "found"


def test_keys_are_immutable() -> None:
    key = ResourceKey("airbyte", "connection", "orders")
    with pytest.raises(AttributeError):
        key.name = "other"
    with pytest.raises(AttributeError):
        del key.name
    assert key.name == "orders"


def test_keys_order_by_system_kind_then_name() -> None:
    keys = [
        ResourceKey("b", "a", "a"),
        ResourceKey("a", "b", "a"),
        ResourceKey("a", "a", "b"),
        ResourceKey("a", "a", "a"),
    ]
    assert [str(k) for k in sorted(keys)] == ["a.a/a", "a.a/b", "a.b/a", "b.a/a"]
    assert ResourceKey("a", "a", "a") <= ResourceKey("a", "a", "a") < ResourceKey("a", "a", "b")
    assert ResourceKey("a", "a", "b") >= ResourceKey("a", "a", "b") > ResourceKey("a", "a", "a")
    with pytest.raises(TypeError):
        assert ResourceKey("a", "a", "a") < "a.a/a"
    assert repr(ResourceKey("a", "b", "c")) == "ResourceKey(system='a', kind='b', name='c')"


def test_threads_making_the_same_new_key_at_once_all_get_one_object() -> None:
    made: list[ResourceKey] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        made.extend(ResourceKey("race", "kind", f"name-{i}") for i in range(2000))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(key) for key in made}) == 2000
