"""The `superset` system for the registry: its section, loader, provider, summary and diff-env rows (`SYSTEM`)."""

from __future__ import annotations

from pathlib import Path

from reconciler.providers.base import Provider
from reconciler.registry import System
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.systems.superset import DECLARATION
from reconciler.systems.superset.compare import superset_rows
from reconciler.systems.superset.loading import (
    SUPERSET_SPEC_DIR,
    SupersetSelection,
    load_superset_section,
    read_superset_specs,
)
from reconciler.systems.superset.spec import RolesFile, SupersetEnvironment


def _connect(root: Path, env: Environment, resolver: SecretResolver) -> Provider:
    from reconciler.systems.superset.provider import connect

    return connect(root, env, resolver)


def _summary(selection: SupersetSelection) -> str:
    replicated = f", replicated from {selection.source.environment}" if selection.source else ""
    return f"{len(selection.dashboards)} spec dashboards{replicated}, {len(selection.roles)} roles"


SYSTEM = System(
    name=DECLARATION.name,
    section=SupersetEnvironment,
    read_specs=read_superset_specs,
    spec_files=SUPERSET_SPEC_DIR,
    load=load_superset_section,
    connect=_connect,
    schemas={"superset-roles": RolesFile},
    summary=_summary,
    diff_rows=superset_rows,
    commands=DECLARATION.commands,
)
