"""Moved to `reconciler.systems.workloads.rules` (alias kept for sandbox/launch.py)."""

from reconciler.systems.workloads.rules import carriers

__all__ = ["carriers"]
