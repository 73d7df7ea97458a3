"""Moved to `reconciler.systems.airbyte.client` (alias kept for bench/plan_airbyte.py)."""

from reconciler.systems.airbyte.client import AirbyteClient

__all__ = ["AirbyteClient"]
