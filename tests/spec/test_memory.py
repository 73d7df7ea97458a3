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
    """A process that has not asked to freeze (CLI runs in this test process may have asked before)."""
    memory.freeze_after_load(False)
    gc.unfreeze()
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])  # Python's default
    yield
    memory.freeze_after_load(False)
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_long_running_process_never_freezes_what_it_loads(tmp_path: Path, unfrozen: None) -> None:
    root = copy_example(tmp_path)
    load_environments(read_spec_tree(root), {})
    assert gc.get_freeze_count() == 0  # a controller's earlier loads stay collectable
    assert gc.get_threshold()[0] == 700  # and its young objects are collected as often as Python's default
    memory.freeze_after_load()
    load_environments(read_spec_tree(root), {})
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == memory.YOUNG_THRESHOLD  # a one-shot command collects its young objects less
