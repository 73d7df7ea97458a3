"""The workloads commands (git -> git `promote`, live -> screen `health`): the I/O shells above the service.

`reconcile promote --from qa --to prod` copies validated image pins into the target environment file.

Guarded by the source environment's live state: promotion refuses when the source cluster does
not run exactly what its spec pins (someone changed it by hand, or an apply is pending), when a
Deployment carrying a promoted component has not finished rolling out or has a pod waiting
(`CrashLoopBackOff`), or when one of the promoted Dagster code locations fails its health check.
The rewrite itself changes only the promoted pins' text (`promotion`); the result is read back
by the loader and must differ from the old file in exactly those pins, to exactly the source's
values, before it replaces the file atomically. Otherwise the file is left as it was.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.errors import ReconcilerError, SpecError
from reconciler.registry import Invocation
from reconciler.render.table import render_table
from reconciler.spec.editing import read_exactly, replace_exactly
from reconciler.spec.loader import Environment
from reconciler.systems.workloads import HEALTH, PROMOTE
from reconciler.systems.workloads.promotion import PromotionRefused, check_promoted, pins_of, rewrite_image_pins
from reconciler.systems.workloads.rules import SYSTEM, carriers, component_of
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
    """Refuse unless the source's live images match its pins, every Deployment carrying them is rolled out with
    no pod waiting, and its promoted Dagster code locations are healthy."""
    from reconciler import service
    from reconciler.systems.workloads.provider import connect, describe
    from reconciler.systems.workloads.readiness import rollout_problems

    with service.open_provider(root, env_name, environ, SYSTEM, connect) as (session, provider):
        plan = service.make_plan(session)
        # Images first: a live image that is not the pin is a pending change; a carrier that only reads degraded
        # (its rollout or location) is told by what makes it so, below.
        pending = [
            (action, change)
            for action in plan.actions
            if component_of(action.key) in components
            for change in action.changes[:1]
            if change.name != "health"
        ]
        if pending:
            lines = "; ".join(f"{action.key.name}: {change.old} -> {change.new}" for action, change in pending)
            raise ReconcilerError(
                f"{env_name}'s live state does not match its spec ({lines}); apply {env_name} (or find out who changed "
                "it) before promoting from it"
            )
        refs = [ref for ref in carriers(provider.selection) if ref.component in components]
        stuck = rollout_problems(provider.kube, refs)
        if stuck:
            raise ReconcilerError(
                f"{env_name} runs the pinned images but they are not rolled out and healthy: {'; '.join(stuck)}; "
                f"fix {env_name} (or roll it back) before promoting from it"
            )
        degraded = [
            f"{action.key.name}: {change.old}"
            for action in plan.actions
            if component_of(action.key) in components
            for change in action.changes
            if change.name == "health"
        ]
        if degraded:
            raise ReconcilerError(
                f"{env_name} runs the pinned images but they are degraded ({'; '.join(degraded)}); "
                f"apply {env_name} (it finishes or rolls back the rollout) before promoting from it"
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


@dataclass(frozen=True)
class _Edited:
    """The project's specs as on disk, but for one file's new text (a `service.SpecSource`)."""

    root: Path
    file: str
    text: str

    def read(self) -> dict[str, str]:
        from reconciler import service

        files = service.FolderSource(self.root).read()
        files[self.file] = self.text.replace("\r\n", "\n").replace("\r", "\n")  # as read from disk
        return files


def _read_back(
    root: Path, target: Environment, text: str, pins: Mapping[str, ImageVersion], environ: Mapping[str, str]
) -> None:
    """Load the project with the edited target file and refuse unless exactly `pins` changed in it."""
    from reconciler import service

    try:
        after = service.validate(_Edited(root, target.file, text), environ, target.name)[target.name]
    except SpecError as exc:
        raise PromotionRefused(
            f"{target.file} would not validate after the promotion, so it is left untouched:\n{exc}"
        ) from None
    check_promoted(target, after, pins)


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
    if SYSTEM not in source_env.sections or SYSTEM not in target_env.sections:
        raise ReconcilerError("both environments need a workloads section to promote images")
    source_pins, target_pins = pins_of(source_env), pins_of(target_env)
    names = _choose(source_pins, target_pins, components)
    moving = {n: source_pins[n] for n in names if source_pins[n] != target_pins[n]}
    if moving and check_live:
        _check_source(root, source, list(moving), environ)
    path = root / target_env.file
    before = read_exactly(path)
    after = rewrite_image_pins(before, target_env.file, moving)
    if after != before:
        _read_back(root, target_env, after, moving, environ)
        try:
            replace_exactly(path, before, after)
        except OSError as exc:  # a read-only directory, a full disk: the temporary copy is gone, the file as it was
            raise PromotionRefused(
                f"cannot write {target_env.file}: {exc.strerror or exc}; it is left as it was"
            ) from None
    diff = [
        line
        for line in difflib.unified_diff(
            before.splitlines(), after.splitlines(), target_env.file, target_env.file, n=0, lineterm=""
        )
    ]
    promoted = {n: (target_pins[n].label, source_pins[n].label) for n in moving}
    return Promotion(target_env.file, diff, promoted, [n for n in names if n not in moving])


pass_invocation = click.make_pass_decorator(Invocation)


@click.command(name=PROMOTE.name, help=PROMOTE.help)
@click.option("--from", "source", required=True, help="Environment whose pins were validated (e.g. qa).")
@click.option("--to", "target", required=True, help="Environment file to rewrite (e.g. prod).")
@click.option("--component", "components", multiple=True, help="Only this component; repeatable. Default: all.")
@click.option("--skip-live-check", is_flag=True, help="Do not check the source's live state and health first.")
@pass_invocation
def promote_command(
    invocation: Invocation, source: str, target: str, components: tuple[str, ...], skip_live_check: bool
) -> None:
    result = promote(invocation.root, source, target, components, dict(os.environ), check_live=not skip_live_check)
    if not result.promoted:
        click.echo(f"Nothing to promote: {target} already pins what {source} runs.")
        return
    for line in result.diff:
        click.echo(line)
    moved = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in sorted(result.promoted.items()))
    click.echo(f"Promoted {moved} into {result.file}. Review and commit it; the merge applies it to {target}.")


@click.command(name=HEALTH.name, help=HEALTH.help)
@click.option("--env", "env_name", required=True)
@pass_invocation
def health_command(invocation: Invocation, env_name: str) -> None:
    from reconciler import service
    from reconciler.systems.workloads.provider import connect

    with service.open_provider(invocation.root, env_name, dict(os.environ), SYSTEM, connect) as (_session, provider):
        rows = provider.health_report()
    click.echo(render_table(["what", "status"], [(row.what, row.status) for row in rows]))
    failed = [row.what for row in rows if not row.ok]
    if failed:
        raise ReconcilerError(f"{len(failed)} not healthy in {env_name}: {', '.join(failed)}")
