"""Moved to `reconciler.systems.superset.rules.desired` (alias kept for bench/replicate_superset.py)."""

from reconciler.systems.superset.rules.desired import desired_bundle

__all__ = ["desired_bundle"]
