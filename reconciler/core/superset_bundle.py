"""Moved to `reconciler.systems.superset.rules.bundle` (alias kept for bench/replicate_superset.py)."""

from reconciler.systems.superset.rules.bundle import Bundle, build_import_zip, read_bundle

__all__ = ["Bundle", "build_import_zip", "read_bundle"]
