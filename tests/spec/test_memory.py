"""What the collector does with loaded specs is the process's choice: one-shot freezes, long-running freezes only
until its next new load, and by default nothing changes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.spec import memory
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import LOADED, load_environments
from tests.helpers import copy_example


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """A process that has not asked for a policy (CLI runs in this test process may have asked before)."""
    memory.freeze_after_load(False)
    gc.unfreeze()
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])  # Python's default
    LOADED.clear()
    yield
    memory.freeze_after_load(False)
    gc.unfreeze()
    gc.set_threshold(*threshold)
    LOADED.clear()


class Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_by_default_nothing_is_frozen(tmp_path: Path, unfrozen: None) -> None:
    load_environments(read_spec_tree(copy_example(tmp_path)), {})
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] == 700


def test_a_one_shot_command_freezes_what_it_loaded(tmp_path: Path, unfrozen: None) -> None:
    memory.freeze_after_load()
    load_environments(read_spec_tree(copy_example(tmp_path)), {})
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == memory.YOUNG_THRESHOLD  # a one-shot command collects its young objects less


def test_a_long_running_process_frees_cyclic_garbage_of_an_earlier_load_at_its_next_new_load(
    tmp_path: Path, unfrozen: None
) -> None:
    memory.long_running()
    root = copy_example(tmp_path)
    cycle = Cycle()
    load_environments(read_spec_tree(root), {})
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == memory.YOUNG_THRESHOLD
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert gone() is not None  # frozen with the load: a full collection does not look at it
    load_environments(read_spec_tree(root), {})  # the same inputs: from the cache, no new load, nothing changes
    assert gone() is not None
    (root / "environments" / "qa.yaml").write_text((root / "environments" / "qa.yaml").read_text() + "\n# new\n")
    load_environments(read_spec_tree(root), {})  # a new commit: the earlier freeze is undone and collected
    assert gone() is None
