"""The workloads commands (git -> git `promote`, live -> screen `health`): the I/O shells above the service.

`reconcile promote --from qa --to prod` copies validated image pins into the target environment file.

Guarded by the source environment's live state: promotion refuses when the source cluster does
not run exactly what its spec pins (someone changed it by hand, or an apply is pending) or when
one of the promoted Dagster code locations fails its health check. The rewrite itself is pure
text surgery (`promotion`), so the pull request shows one changed line per image.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.errors import ReconcilerError
from reconciler.registry import Invocation
from reconciler.render.table import render_table
from reconciler.spec.loader import Environment
from reconciler.systems.workloads.loading import WorkloadsSelection
from reconciler.systems.workloads.promotion import rewrite_image_pins
from reconciler.systems.workloads.rules import SYSTEM, component_of
from reconciler.systems.workloads.spec import ImageVersion


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed: the target file, its diff lines, and the components moved."""

    file: str
    diff: list[str]
    promoted: dict[str, tuple[str, str]]
    unchanged: list[str]


def _pins(env: Environment) -> Mapping[str, ImageVersion] | None:
    selection = env.section(SYSTEM, WorkloadsSelection)
    return selection.images if selection is not None else None


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
    from reconciler import service
    from reconciler.systems.workloads.provider import connect, describe

    with service.open_provider(root, env_name, environ, SYSTEM, connect) as (session, provider):
        plan = service.make_plan(session)
        pending = [a for a in plan.actions if component_of(a.key) in components]
        if pending:
            lines = "; ".join(f"{a.key.name}: {a.changes[0].old} -> {a.changes[0].new}" for a in pending if a.changes)
            raise ReconcilerError(
                f"{env_name}'s live state does not match its spec ({lines}); apply {env_name} (or find out who changed "
                "it) before promoting from it"
            )
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
    from reconciler import service

    environments = service.validate(root, environ)
    for name in (source, target):
        if name not in environments:
            raise ReconcilerError(f"no environment {name!r}")
    source_env, target_env = environments[source], environments[target]
    source_pins, target_pins = _pins(source_env), _pins(target_env)
    if source_pins is None or target_pins is None:
        raise ReconcilerError("both environments need a workloads section to promote images")
    names = _choose(source_pins, target_pins, components)
    moving = [n for n in names if source_pins[n] != target_pins[n]]
    if moving and check_live:
        _check_source(root, source, moving, environ)
    path = root / target_env.file
    before = path.read_text(encoding="utf-8")
    after = rewrite_image_pins(before, target_env.file, {n: source_pins[n] for n in moving})
    if after != before:
        path.write_text(after, encoding="utf-8")
    diff = [
        line
        for line in difflib.unified_diff(
            before.splitlines(), after.splitlines(), target_env.file, target_env.file, n=0, lineterm=""
        )
    ]
    promoted = {n: (target_pins[n].tag, source_pins[n].tag) for n in moving}
    return Promotion(target_env.file, diff, promoted, [n for n in names if n not in moving])


pass_invocation = click.make_pass_decorator(Invocation)


@click.command(name="promote")
@click.option("--from", "source", required=True, help="Environment whose pins were validated (e.g. qa).")
@click.option("--to", "target", required=True, help="Environment file to rewrite (e.g. prod).")
@click.option("--component", "components", multiple=True, help="Only this component; repeatable. Default: all.")
@click.option("--skip-live-check", is_flag=True, help="Do not check the source's live state and health first.")
@pass_invocation
def promote_command(
    invocation: Invocation, source: str, target: str, components: tuple[str, ...], skip_live_check: bool
) -> None:
    """Copy image versions from one environment file to another (git -> git, one line per image), after checking
    the source."""
    result = promote(invocation.root, source, target, components, dict(os.environ), check_live=not skip_live_check)
    if not result.promoted:
        click.echo(f"Nothing to promote: {target} already pins what {source} runs.")
        return
    for line in result.diff:
        click.echo(line)
    moved = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in sorted(result.promoted.items()))
    click.echo(f"Promoted {moved} into {result.file}. Review and commit it; the merge applies it to {target}.")


@click.command(name="health")
@click.option("--env", "env_name", required=True)
@pass_invocation
def health_command(invocation: Invocation, env_name: str) -> None:
    """Ask Dagster whether each code location loaded, and Kubernetes whether each rollout completed (live -> screen;
    exit 1 if any is not healthy, a pinned location Dagster does not list included)."""
    from reconciler import service
    from reconciler.systems.workloads.provider import connect

    with service.open_provider(invocation.root, env_name, dict(os.environ), SYSTEM, connect) as (_session, provider):
        rows = provider.health_report()
    click.echo(render_table(["what", "status"], [(row.what, row.status) for row in rows]))
    failed = [row.what for row in rows if not row.ok]
    if failed:
        raise ReconcilerError(f"{len(failed)} not healthy in {env_name}: {', '.join(failed)}")


COMMANDS: list[tuple[str | None, click.Command]] = [(None, promote_command), (None, health_command)]
