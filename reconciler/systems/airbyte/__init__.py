"""Airbyte sources, destinations and connections: the registry's `airbyte` entry (spec -> rules -> provider).

This package's own module names only what `reconcile --help` shows (`DECLARATION`); the system itself
(`SYSTEM`: spec models, loader, provider) is in `system.py`, imported when a command needs it.
"""

from __future__ import annotations

from reconciler.registry import Command, Declaration

NAME = "airbyte"

PULL = Command(
    "airbyte",
    "Adopt resources that already exist in Airbyte into spec YAML and the environment file (live -> git; secrets "
    "become references).",
    "reconciler.systems.airbyte.commands:pull_command",
    verb="pull",
)
IMPORT = Command(
    "airbyte",
    "Alias of `reconcile pull airbyte` (live -> git), kept for a release.",
    "reconciler.systems.airbyte.commands:import_command",
    verb="import",
)

DECLARATION = Declaration(
    name=NAME,
    system="reconciler.systems.airbyte.system",
    schema_kinds=("airbyte",),
    commands=(PULL, IMPORT),
    spec_files="specs/airbyte/",
)
