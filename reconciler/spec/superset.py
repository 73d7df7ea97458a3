"""Moved to `reconciler.systems.superset.spec` (alias kept for bench/replicate_superset.py)."""

from reconciler.systems.superset.spec import DatabaseConnection

__all__ = ["DatabaseConnection"]
