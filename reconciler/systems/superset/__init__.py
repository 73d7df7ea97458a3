"""Superset databases, datasets, charts, dashboards and roles: the registry's `superset` entry.

This package's own module names only what `reconcile --help` shows (`DECLARATION`); the system itself
(`SYSTEM`: spec models, loader, provider) is in `system.py`, imported when a command needs it.
"""

from __future__ import annotations

from reconciler.registry import Command, Declaration

NAME = "superset"

PULL = Command(
    "superset",
    "Write live dashboards into specs/ (live -> git; deterministic files, connections go to the environment file).",
    "reconciler.systems.superset.commands:pull_command",
    verb="pull",
)
VERIFY = Command(
    "superset",
    "Run every chart of the environment's dashboards (live -> screen; exit 1 naming the charts that fail).",
    "reconciler.systems.superset.commands:verify_command",
    verb="verify",
)

DECLARATION = Declaration(
    name=NAME,
    system="reconciler.systems.superset.system",
    schema_kinds=("superset-roles",),
    commands=(PULL, VERIFY),
    spec_files="specs/superset/",
)
