"""Spec layer: whether loaded specs are frozen out of the cyclic garbage collector (and young objects
collected less often after), a choice of the process.

A spec of 5,000 connections is some 300,000 objects without a cycle among them; every full
collection after loading walks them all again (a third of a plan's CPU at 5,000). A one-shot
process (the CLI) freezes them (`gc.freeze`) once loaded. A long-running one (the controller)
must not: everything alive at a freeze leaves the collector for good, so an earlier load's
objects that later become cyclic garbage would never be freed.
"""

from __future__ import annotations

import gc

_freeze_after_load = False


def freeze_after_load(enabled: bool = True) -> None:
    """Called once by a short-lived process's entry point (the CLI)."""
    global _freeze_after_load
    _freeze_after_load = enabled


YOUNG_THRESHOLD = 20_000
"""Allocations between young collections once the specs are frozen (Python's default: 700)."""


def loaded() -> None:
    """The loader has finished: freeze what is alive when the process asked for it, and collect the young
    generation less often: the rest of a one-shot command (desired state, observe, the plan) builds some
    200,000 lasting objects at 5,000 and no cycle to speak of, and at the default 700 their collections (a
    full one each time the survivors outgrow the unfrozen ones) were a tenth of a plan's CPU."""
    if _freeze_after_load:
        gc.freeze()
        gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
