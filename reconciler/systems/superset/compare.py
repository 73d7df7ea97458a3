"""Core: the Superset rows of `reconcile diff-env`: dashboards one environment has and the other lacks.

Pure and offline. An environment's dashboards are its spec selection plus what it replicates:
a replication of everything from the other environment being compared counts as that
environment's dashboards; one by slug counts those slugs; one by tag or owner, or from a third
environment, is only known live, so it is shown as its own row. What one side has and the other
does not is a dashboard not replicated (or not selected) there.
"""

from __future__ import annotations

from reconciler.core.model import ABSENT
from reconciler.registry import Row
from reconciler.spec.loader import Environment
from reconciler.systems.superset.loading import SupersetSelection
from reconciler.systems.superset.spec import DashboardSelector


def _selection(env: Environment) -> SupersetSelection | None:
    return env.section("superset", SupersetSelection)


def _replication(env: Environment) -> str | None:
    selection = _selection(env)
    source = selection.settings.replicate if selection is not None else None
    if source is None:
        return ABSENT
    chosen = source.dashboards
    if not isinstance(chosen, DashboardSelector):
        return f"all from {source.source}"
    parts = [f"{name} {', '.join(values)}" for name, values in chosen.model_dump().items() if values]
    return f"from {source.source}: {'; '.join(parts)}"


def _dashboards(env: Environment, other: Environment) -> dict[str, str]:
    """Slug -> how it gets there (`spec`, `replicated from prod`), as far as the files tell."""
    selection, other_selection = _selection(env), _selection(other)
    if selection is None:
        return {}
    found = {slug: "spec" for slug in selection.dashboards}
    replicate = selection.settings.replicate
    if replicate is not None:
        label = f"replicated from {replicate.source}"
        if isinstance(replicate.dashboards, DashboardSelector):
            found.update({slug: label for slug in replicate.dashboards.slugs if slug not in found})
        elif replicate.source == other.name and other_selection is not None:
            found.update({slug: label for slug in other_selection.dashboards if slug not in found})
    return found


def _roles(env: Environment) -> set[str]:
    selection = _selection(env)
    return {role.name for role in selection.roles} if selection is not None else set()


def superset_rows(left: Environment, right: Environment) -> list[Row]:
    rows: list[Row] = []
    a, b = _replication(left), _replication(right)
    if a != b:
        rows.append(("superset replication", "dashboards", a, b))
    left_dashboards, right_dashboards = _dashboards(left, right), _dashboards(right, left)
    for slug in sorted(set(left_dashboards) ^ set(right_dashboards)):
        rows.append(("superset dashboard", slug, left_dashboards.get(slug, ABSENT), right_dashboards.get(slug, ABSENT)))
    left_roles, right_roles = _roles(left), _roles(right)
    for name in sorted(left_roles ^ right_roles):
        rows.append(
            (
                "superset role",
                name,
                "present" if name in left_roles else ABSENT,
                "present" if name in right_roles else ABSENT,
            )
        )
    return rows
