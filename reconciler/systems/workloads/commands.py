"""`reconcile promote --from qa --to prod`: copy validated image pins into the target environment file.

Guarded by the source environment's live state: promotion refuses when the source cluster does
not run exactly what its spec pins (someone changed it by hand, or an apply is pending) or when
one of the promoted Dagster code locations fails its health check. The rewrite itself is pure
text surgery (`core.promotion`), so the pull request shows one changed line per image.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import engine
from reconciler.errors import ReconcilerError
from reconciler.systems.workloads.promotion import rewrite_image_pins
from reconciler.systems.workloads.provider import WorkloadsProvider, describe
from reconciler.systems.workloads.rules import SYSTEM
from reconciler.systems.workloads.spec import ImageVersion


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed: the target file, its diff lines, and the components moved."""

    file: str
    diff: list[str]
    promoted: dict[str, tuple[str, str]]
    unchanged: list[str]


def _choose(source: Mapping[str, ImageVersion], target: Mapping[str, ImageVersion], wanted: Sequence[str]) -> list[str]:
    names = list(wanted) or sorted(source)
    for name in names:
        if name not in source:
            raise ReconcilerError(f"{name} is not pinned in the source environment")
        if name not in target:
            raise ReconcilerError(f"{name} is not pinned in the target environment; add it there by hand once")
    return names


def _check_source(root: Path, env_name: str, components: Sequence[str], environ: Mapping[str, str]) -> None:
    """Refuse unless the source's live images match its pins and its promoted locations are healthy."""
    with engine.open_session(root, env_name, environ, systems=[SYSTEM]) as session:
        plan = engine.make_plan(session)
        pending = [a for a in plan.actions if a.key.name.split("@", 1)[0] in components]
        if pending:
            lines = "; ".join(f"{a.key.name}: {a.changes[0].old} -> {a.changes[0].new}" for a in pending if a.changes)
            raise ReconcilerError(
                f"{env_name}'s live state does not match its spec ({lines}); apply {env_name} (or find out who changed "
                "it) before promoting from it"
            )
        provider = session.providers[SYSTEM]
        assert isinstance(provider, WorkloadsProvider)
        locations = {provider.selection.components[name].dagster_location for name in components} - {None}
        if locations:
            statuses = {status.name: status for status in provider.health()}
            for location in sorted(loc for loc in locations if loc is not None):
                status = statuses.get(location)
                if status is None:
                    raise ReconcilerError(f"Dagster in {env_name} has no code location {location!r}")
                if not status.healthy:
                    raise ReconcilerError(f"{location} fails its health check in {env_name}: {describe(status)}")


def promote(
    root: Path,
    source: str,
    target: str,
    components: Sequence[str],
    environ: Mapping[str, str],
    *,
    check_live: bool = True,
) -> Promotion:
    environments = engine.validate(root, environ)
    for name in (source, target):
        if name not in environments:
            raise ReconcilerError(f"no environment {name!r}")
    source_env, target_env = environments[source], environments[target]
    if source_env.workloads is None or target_env.workloads is None:
        raise ReconcilerError("both environments need a workloads section to promote images")
    names = _choose(source_env.workloads.images, target_env.workloads.images, components)
    moving = [n for n in names if source_env.workloads.images[n] != target_env.workloads.images[n]]
    if moving and check_live:
        _check_source(root, source, moving, environ)
    path = root / target_env.file
    before = path.read_text(encoding="utf-8")
    after = rewrite_image_pins(before, target_env.file, {n: source_env.workloads.images[n] for n in moving})
    if after != before:
        path.write_text(after, encoding="utf-8")
    diff = [
        line
        for line in difflib.unified_diff(
            before.splitlines(), after.splitlines(), target_env.file, target_env.file, n=0, lineterm=""
        )
    ]
    promoted = {n: (target_env.workloads.images[n].tag, source_env.workloads.images[n].tag) for n in moving}
    return Promotion(target_env.file, diff, promoted, [n for n in names if n not in moving])
