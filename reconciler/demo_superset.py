"""`reconcile demo --with superset`: the Superset chapter, on two real servers (prod and qa) started by the sandbox.

prod's dashboards, built by hand in its UI (through the API at start-up) -> `reconcile pull
superset --env prod` writes them into git -> QA replicates them onto its own warehouse: plan,
apply, verify every chart -> one chart's rows, read from each warehouse -> a chart renamed by hand
in QA: the plan names the field, apply puts it back -> a permission granted by hand to a role:
shown, then removed -> one plan for all of QA's systems. Optionally, PNGs of both dashboards.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.demo import Echo, _apply, _indent, _plan
from reconciler.render.text import render_plan
from reconciler.sandbox.screenshots import anonymous_viewing, find_chromium, screenshot_dashboard
from reconciler.sandbox.superset import SupersetPair, SupersetServer
from reconciler.systems.superset.client import SupersetClient
from reconciler.systems.superset.commands import pull_superset, verify_superset
from reconciler.systems.superset.loading import ASSET_FOLDERS
from reconciler.systems.superset.rendering import render_verification

SUPERSET = ("superset",)
SHOWN_CHART = "Sales by region"
SHOWN_DASHBOARD = "sales-overview"
HAND_TITLE = "Sales by region (edited in QA)"
HAND_PERMISSION = ("can_read", "Log")
HAND_ROLE = "sales-viewer"
# Called after each step with its name and the servers, so a test can check the outcome through the API.
StepHook = Callable[[str, dict[str, SupersetServer]], None]
STEPS = ("pulled", "planned", "applied", "renamed", "restored", "granted", "revoked", "screenshots")


def _no_hook(_step: str, _servers: dict[str, SupersetServer]) -> None:
    pass


def client_for(server: SupersetServer) -> SupersetClient:
    return SupersetClient(server.url, username=server.username, password=server.password)


def _tree(project: Path) -> list[str]:
    base = project / "specs" / "superset"
    return [f"    specs/superset/{p.relative_to(base).as_posix()}" for p in sorted(base.rglob("*")) if p.is_file()]


def _actions_only(plan_text: str) -> str:
    return "\n".join(line for line in plan_text.splitlines() if not line.startswith(" "))


def chart_rows(client: SupersetClient, name: str) -> list[dict[str, Any]]:
    """The rows a chart shows, by running its saved query in that instance."""
    chart = next(c for c in client.list_charts() if c.name == name)
    rows: list[dict[str, Any]] = client.chart_data(chart.id, force=True)["result"][0]["data"]
    return rows


def _rows_line(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{row['region']} {row['total_amount']:g}" for row in rows)


def rename_chart_by_hand(client: SupersetClient, name: str, title: str) -> int:
    chart = next(c for c in client.list_charts() if c.name == name)
    client.update_chart(chart.id, {"slice_name": title})
    return chart.id


def grant_by_hand(client: SupersetClient, role_name: str, permission: tuple[str, str]) -> None:
    role = next(r for r in client.list_roles() if r.name == role_name)
    pvm = next(p for p in client.list_permission_view_menus() if (p.permission, p.view_menu) == permission)
    client.set_role_permissions(role.id, [*(p.id for p in client.role_permissions(role.id)), pvm.id])


def role_has(client: SupersetClient, role_name: str, permission: tuple[str, str]) -> bool:
    role = next(r for r in client.list_roles() if r.name == role_name)
    return permission in {(p.permission, p.view_menu) for p in client.role_permissions(role.id)}


def take_screenshots(servers: dict[str, SupersetServer], directory: Path, echo: Echo) -> list[Path]:
    chromium = find_chromium()
    saved = []
    for env in ("prod", "qa"):
        with client_for(servers[env]) as client, anonymous_viewing(client):
            target = directory / f"{env}-{SHOWN_DASHBOARD}.png"
            saved.append(screenshot_dashboard(chromium, servers[env].url, SHOWN_DASHBOARD, target))
        echo(f"    {env}: {target}")
    return saved


def superset_chapter(
    project: Path,
    environ: dict[str, str],
    pair: SupersetPair,
    echo: Echo,
    screenshots: Path | None = None,
    after: StepHook = _no_hook,
) -> None:
    servers = pair.wait()
    prod, qa = servers["prod"], servers["qa"]
    echo(f"\n10. Superset: prod at {prod.url}, qa at {qa.url} (admin / admin), up after {pair.seconds_to_start:.0f} s.")
    echo("    Prod's dashboards were built by hand in its UI and never committed; each instance reads a")
    echo("    warehouse of its own (QA's rows say so: a region QA-ONLY-REGION, customers named qa-customer-N).")
    for folder in ASSET_FOLDERS:
        shutil.rmtree(project / "specs" / "superset" / folder, ignore_errors=True)
    echo("    `reconcile pull superset --env prod` turns them into reviewable files:")
    for line in pull_superset(project, "prod", environ):
        echo(f"    {line}")
    for line in _tree(project):
        echo(line)
    after("pulled", servers)

    echo("\n11. QA replicates prod's dashboards onto QA's warehouse (environments/qa.yaml: replicate from prod,")
    echo("    database warehouse -> QA's own). The plan, one line per action (`reconcile plan` lists every field):")
    echo(_indent(_actions_only(render_plan(_plan(project, "qa", environ, SUPERSET)))))
    after("planned", servers)
    echo("\n12. Apply QA: one bundle import, then every chart runs its query (verify: true):")
    _apply(project, "qa", environ, echo, SUPERSET)

    after("applied", servers)
    echo("\n13. `reconcile verify superset --env qa` runs every chart again, whenever you like:")
    echo(_indent(render_verification(verify_superset(project, "qa", environ))))

    echo(f"\n14. The same chart, {SHOWN_CHART!r}, in each environment reads its own warehouse:")
    with client_for(prod) as prod_client, client_for(qa) as qa_client:
        echo(f"    prod: {_rows_line(chart_rows(prod_client, SHOWN_CHART))}")
        echo(f"    qa:   {_rows_line(chart_rows(qa_client, SHOWN_CHART))}")

        echo(f"\n15. Someone renames the chart in QA's UI to {HAND_TITLE!r}. The next plan names the field:")
        chart_id = rename_chart_by_hand(qa_client, SHOWN_CHART, HAND_TITLE)
        after("renamed", servers)
        echo(_indent(render_plan(_plan(project, "qa", environ, SUPERSET))))
        echo("    Apply puts it back:")
        _apply(project, "qa", environ, echo, SUPERSET)
        echo(f"    QA's chart is called {qa_client.get_chart(chart_id)['slice_name']!r} again.")
        after("restored", servers)

        echo(f"\n16. Someone grants the {HAND_ROLE} role {HAND_PERMISSION[0]} on {HAND_PERMISSION[1]} by hand in QA:")
        grant_by_hand(qa_client, HAND_ROLE, HAND_PERMISSION)
        after("granted", servers)
        echo(_indent(render_plan(_plan(project, "qa", environ, SUPERSET))))
        _apply(project, "qa", environ, echo, SUPERSET)
        still = "still has it" if role_has(qa_client, HAND_ROLE, HAND_PERMISSION) else "no longer has it"
        echo(f"    The role {still}.")
        after("revoked", servers)

    echo("\n17. One plan for all of QA's systems (`reconcile plan --env qa`, no --system): Superset and Airbyte")
    echo("    match git; the broken analytics release from step 9 is still pinned there until someone reverts it.")
    echo(_indent(render_plan(_plan(project, "qa", environ, ()))))

    if screenshots is not None:
        echo(f"\n18. Screenshots of {SHOWN_DASHBOARD} as each environment renders it (headless Chromium):")
        take_screenshots(servers, screenshots, echo)
        after("screenshots", servers)
