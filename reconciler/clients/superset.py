"""Moved to `reconciler.systems.superset.client` (alias kept for bench/replicate_superset.py)."""

from reconciler.systems.superset.client import SupersetClient

__all__ = ["SupersetClient"]
