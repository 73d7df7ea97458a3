"""Moved to `reconciler.systems.workloads.spec` (alias kept for sandbox/launch.py)."""

from reconciler.systems.workloads.spec import ConfigMapKey, ContainerEnv, ContainerImage

__all__ = ["ConfigMapKey", "ContainerEnv", "ContainerImage"]
