"""Loaded specs are frozen out of the cyclic collector only when the process asks (the CLI), never by default."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.spec import memory
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import load_environments
from tests.helpers import copy_example


@pytest.fixture
def unfrozen() -> Iterator[None]:
    memory.freeze_after_load(False)  # an in-process CLI run in an earlier test asked for freezing
    gc.unfreeze()
    yield
    memory.freeze_after_load(False)
    gc.unfreeze()


def test_a_long_running_process_never_freezes_what_it_loads(tmp_path: Path, unfrozen: None) -> None:
    root = copy_example(tmp_path)
    load_environments(read_spec_tree(root), {})
    assert gc.get_freeze_count() == 0  # a controller's earlier loads stay collectable
    memory.freeze_after_load()
    load_environments(read_spec_tree(root), {})
    assert gc.get_freeze_count() > 0
