"""Spec layer: what the cyclic garbage collector does with loaded specs, a choice of the process.

A spec of 5,000 connections is some 300,000 objects without a cycle among them; every full
collection after loading walks them all again (a third of a plan's CPU at 5,000), and at Python's
default young threshold (700 allocations) a plan's own 200,000 lasting objects cost a tenth more.
`loaded()` runs after each load that was not taken from the cache, by the process's policy:

- one-shot (the CLI, `freeze_after_load()`): what is alive is frozen (`gc.freeze`) for good: the
  process ends after one command;
- long-running (the controller, `long_running()`): the earlier freeze is undone, one full collection
  frees whatever became cyclic garbage since, and what is alive now is frozen. Nothing is kept from
  the collector for longer than until the next load that is not from the cache (a new commit), so an
  earlier load's objects are collected once they are garbage; a drift check on an unchanged spec
  walks none of the kept specs;
- neither (a library, the tests by default): the collector is left as it is.

Both policies collect young objects every `YOUNG_THRESHOLD` allocations.
"""

from __future__ import annotations

import enum
import gc

YOUNG_THRESHOLD = 20_000
"""Allocations between young collections under either policy (Python's default: 700)."""


class Policy(enum.Enum):
    NONE = "none"
    ONE_SHOT = "one-shot"
    LONG_RUNNING = "long-running"


_policy = Policy.NONE


def freeze_after_load(enabled: bool = True) -> None:
    """Called once by a short-lived process's entry point (the CLI); `False` undoes it."""
    global _policy
    _policy = Policy.ONE_SHOT if enabled else Policy.NONE


def long_running() -> None:
    """Called once by a long-running process's entry point (the controller)."""
    global _policy
    _policy = Policy.LONG_RUNNING


def loaded() -> None:
    """The loader has finished a load (not one from the cache): apply the process's policy."""
    if _policy is Policy.NONE:
        return
    if _policy is Policy.LONG_RUNNING:
        gc.unfreeze()  # the previous load's freeze: what became garbage since is collected just below
        gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
