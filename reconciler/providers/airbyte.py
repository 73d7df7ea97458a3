"""Moved to `reconciler.systems.airbyte.provider` (alias kept for bench/plan_airbyte.py)."""

from reconciler.systems.airbyte.provider import AirbyteProvider

__all__ = ["AirbyteProvider"]
