"""Moved to `reconciler.systems.superset.provider` (alias kept for bench/replicate_superset.py)."""

from reconciler.systems.superset.provider import SupersetProvider

__all__ = ["SupersetProvider"]
