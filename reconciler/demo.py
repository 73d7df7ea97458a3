"""`reconcile demo`: the product's main job, narrated, on local stand-ins in a scratch copy of the specs.

validate -> plan -> apply -> plan again (no changes, zero writes) -> a hand edit in the live
system -> the next plan catches the drift -> images promoted qa -> prod -> a broken release
stopped by the health gate and rolled back -> the controller (demo_controller.py): a merged
commit applied by webhook, a hand edit told once on a local Slack, put back by `enforce`.
Runs in well under a minute.

With `superset=True` (`reconcile demo --with superset`), two real Superset servers start in the
background at the beginning and a last chapter (demo_superset.py) shows prod's dashboards pulled
into git, replicated onto QA's warehouse, verified, and hand edits caught and put back.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reconciler import service
from reconciler.core.plan import Plan
from reconciler.errors import ReconcilerError
from reconciler.render.report import ConsoleListener, apply_summary
from reconciler.render.text import render_plan
from reconciler.sandbox.launch import running_standins
from reconciler.systems.workloads.commands import promote
from reconciler.systems.workloads.promotion import rewrite_image_pins
from reconciler.systems.workloads.spec import ImageVersion

Echo = Callable[[str], None]
# The systems the local stand-ins serve. Superset needs real servers (`--with superset` starts
# two), so the first chapters plan and apply without it; `reconcile plan --system ...` does the same.
STANDIN_SYSTEMS = ("airbyte", "workloads")


def _copy_project(root: Path, target: Path) -> Path:
    for part in ("specs", "environments"):
        if not (root / part).is_dir():
            raise ReconcilerError(f"{root} has no {part}/ directory; run the demo from the repository root")
        shutil.copytree(root / part, target / part)
    return target


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _plan(root: Path, env: str, environ: dict[str, str], systems: Sequence[str] = STANDIN_SYSTEMS) -> Plan:
    return service.ReconcileService.of_folder(root, environ).plan(env, systems=systems)


def _apply(root: Path, env: str, environ: dict[str, str], echo: Echo, systems: Sequence[str] = STANDIN_SYSTEMS) -> None:
    console = ConsoleListener(echo, lambda message: echo(f"    Warning: {message}"), prefix="    ", show_plan=False)
    reconcile = service.ReconcileService.of_folder(root, environ, listeners=[console])
    report = reconcile.apply(env, systems=systems, command="reconcile demo")
    echo("    " + apply_summary(report.done, report.failed, cancelled=report.cancelled, error=report.exception))
    service.raise_for(report)


def _images_demo(project: Path, environ: dict[str, str], echo: Echo) -> None:
    echo("\n8. dbt and each Dagster code location ship on their own. QA already runs the new dbt and")
    echo("   ingestion images (step 3 rolled them out and Dagster loaded ingestion). Promote them to prod:")
    result = promote(project, "qa", "prod", [], environ)
    for line in result.diff:
        echo(f"    {line}")
    echo("   The pull request shows one line per image. Once merged, prod applies it:")
    _apply(project, "prod", environ, echo)

    echo("\n9. A broken Dagster release reaches QA: its code location fails to import.")
    env_file = project / "environments" / "qa.yaml"
    env_file.write_text(
        rewrite_image_pins(
            env_file.read_text(), "environments/qa.yaml", {"analytics": ImageVersion(tag="2026.11.21-broken")}
        )
    )
    try:
        _apply(project, "qa", environ, echo)
    except ReconcilerError as exc:
        echo(f"    Error: {exc}")
    echo("   The health gate failed the apply and rolled the Deployment back; prod never saw it, and")
    echo("   `reconcile promote` refuses to promote from an environment that fails its health check.")


def run_demo(
    root: Path,
    echo: Echo,
    *,
    keep: bool = False,
    superset: bool = False,
    screenshots: Path | None = None,
    after_superset_step: Callable[[str, Any], None] | None = None,
    after_controller_step: Callable[[str, Any], None] | None = None,
) -> None:
    """Run the demo; `after_superset_step(step, servers)` is called after each Superset step and
    `after_controller_step(step, facts)` after each of the controller's (tests check them through the stand-ins)."""
    started = time.monotonic()
    if superset:
        echo("Starting Superset prod and qa in the background (real servers; the first run installs them).")
    with (
        tempfile.TemporaryDirectory(prefix="reconciler-demo-") as scratch,
        running_standins(root, superset=superset, say=lambda line: echo(f"    {line}")) as standins,
    ):
        project = _copy_project(root, Path(scratch))
        environ = standins.environment()
        qa = standins.airbyte["qa"]
        echo("reconciler demo: git is the source of truth; the live systems are made to match it.")
        echo(f"Local stand-ins: Airbyte prod at {standins.airbyte['prod'].url}, Airbyte qa at {qa.url}")
        echo(f"Specs: a scratch copy of {root}/specs and environments (your files are not touched).")
        if standins.superset is None:
            echo("Superset needs real servers: `reconcile demo --with superset` adds its chapter.\n")
        else:
            echo("Superset's chapter comes last, once its servers answer (until then: airbyte and workloads).\n")

        echo("1. Validate the specs offline (schema, references, cron, no inline secrets):")
        for name, env in service.validate(project, environ).items():
            assert env.airbyte is not None
            echo(f"    {name}: {len(env.airbyte.sources)} sources, {len(env.airbyte.connections)} connections")

        echo("\n2. Plan QA: QA runs only what has a QA analog (the app database) plus opted-in singletons.")
        echo(_indent(render_plan(_plan(project, "qa", environ))))

        echo("\n3. Apply QA, in dependency order (sources and destinations before connections):")
        _apply(project, "qa", environ, echo)

        echo("\n4. Plan QA again: nothing to do, and an apply now makes zero write calls.")
        echo(_indent(render_plan(_plan(project, "qa", environ))))
        writes_before = qa.stats.writes
        _apply(project, "qa", environ, echo)
        echo(f"    write calls made by the second apply: {qa.stats.writes - writes_before}")

        echo("\n5. Someone edits QA by hand in the Airbyte UI: the sync schedule and a stream's sync mode.")
        connection = next(c for c in qa.stored("connections") if c["name"] == "app-postgres-to-lake")
        streams = connection["configurations"]["streams"]
        edited = [dict(s, syncMode="full_refresh_append") if s["name"] == "users" else s for s in streams]
        qa.edit(
            "connections",
            connection["connectionId"],
            {
                "schedule": {"scheduleType": "cron", "cronExpression": "0 15 * * * ?"},
                "configurations": {"streams": edited},
            },
        )
        echo("\n6. The next plan catches the drift, field by field (this is what the controller alerts on):")
        echo(_indent(render_plan(_plan(project, "qa", environ))))

        echo("\n7. Apply puts it back, then prod gets the full set of connections:")
        _apply(project, "qa", environ, echo)
        _apply(project, "prod", environ, echo)

        if standins.kube is not None:
            _images_demo(project, environ, echo)

        from reconciler.demo_controller import controller_chapter

        controller_chapter(root, Path(scratch), environ, qa, echo, after_controller_step)

        if standins.superset is not None:
            from reconciler.demo_superset import superset_chapter

            hook = after_superset_step or (lambda _step, _servers: None)
            superset_chapter(project, environ, standins.superset, echo, screenshots, hook)

        elapsed = time.monotonic() - started
        if standins.superset is None:
            echo(f"\nDone in {elapsed:.1f}s. Next: `reconcile sandbox` in one shell; in another, its export lines,")
            echo("then `reconcile plan --env qa --system airbyte --system workloads` (the stand-ins serve no Superset;")
            echo("`reconcile demo --with superset` and `reconcile sandbox --with superset` run real ones).")
        else:
            echo(f"\nDone in {elapsed:.1f}s. Next: `reconcile sandbox --with superset` in one shell; in another,")
            echo("its export lines, then `reconcile plan --env qa`: Airbyte, workloads and Superset in one plan.")
        if keep:
            echo("Stand-ins still running (Ctrl-C to stop).")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
