"""Moved to `reconciler.systems.superset.api.client` (alias kept for bench/replicate_superset.py)."""

from reconciler.systems.superset.api.client import SupersetClient

__all__ = ["SupersetClient"]
