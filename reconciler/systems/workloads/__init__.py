"""dbt and Dagster image versions in Kubernetes: the registry's `workloads` entry (spec -> rules -> provider).

This package's own module names only what `reconcile --help` shows (`DECLARATION`); the system itself
(`SYSTEM`: spec models, loader, provider) is in `system.py`, imported when a command needs it.
"""

from __future__ import annotations

from reconciler.registry import Command, Declaration

NAME = "workloads"

PROMOTE = Command(
    "promote",
    "Copy image versions from one environment file to another (git -> git, one line per image), after checking the "
    "source.",
    "reconciler.systems.workloads.commands:promote_command",
)
HEALTH = Command(
    "health",
    "Ask Dagster whether each code location loaded, and Kubernetes whether each rollout completed (live -> screen; "
    "exit 1 if any is not healthy, a pinned location Dagster does not list included).",
    "reconciler.systems.workloads.commands:health_command",
)

DECLARATION = Declaration(
    name=NAME,
    system="reconciler.systems.workloads.system",
    schema_kinds=("workloads",),
    commands=(PROMOTE, HEALTH),
    spec_files="specs/workloads.yaml",
)
