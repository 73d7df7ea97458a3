"""The `workloads` system for the registry: its section, loader, provider, summary, warnings, diff-env rows and
cluster (`SYSTEM`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconciler.core.model import ABSENT
from reconciler.providers.base import Provider
from reconciler.registry import Row, System
from reconciler.secrets import SecretResolver
from reconciler.spec.environment import ClusterSettings
from reconciler.spec.loader import Environment
from reconciler.systems.workloads import DECLARATION, NAME
from reconciler.systems.workloads.loading import WorkloadsSelection, load_workloads_section, read_workloads_file
from reconciler.systems.workloads.spec import WorkloadsEnvironment, WorkloadsFile


def _connect(root: Path, env: Environment, resolver: SecretResolver) -> Provider:
    from reconciler.systems.workloads.provider import connect

    return connect(root, env, resolver)


def _summary(selection: WorkloadsSelection) -> str:
    return f"{len(selection.images)} pinned images"


def _warnings(selection: WorkloadsSelection) -> Sequence[str]:
    return selection.warnings


def _images(env: Environment) -> dict[str, str]:
    selection = env.section(NAME, WorkloadsSelection)
    if selection is None:
        return {}
    return {name: version.label for name, version in selection.images.items()}


def _diff_rows(left: Environment, right: Environment) -> list[Row]:
    """Image versions that differ per component."""
    rows: list[Row] = []
    left_images, right_images = _images(left), _images(right)
    for name in sorted(set(left_images) | set(right_images)):
        a, b = left_images.get(name, ABSENT), right_images.get(name, ABSENT)
        if a != b:
            rows.append(("image", name, a, b))
    return rows


def _cluster(section: WorkloadsEnvironment) -> ClusterSettings:
    return section.kubernetes


SYSTEM = System(
    name=DECLARATION.name,
    section=WorkloadsEnvironment,
    read_specs=read_workloads_file,
    spec_files="specs/workloads.yaml",
    load=load_workloads_section,
    connect=_connect,
    schemas={"workloads": WorkloadsFile},
    summary=_summary,
    warnings=_warnings,
    diff_rows=_diff_rows,
    commands=DECLARATION.commands,
    cluster=_cluster,
)
