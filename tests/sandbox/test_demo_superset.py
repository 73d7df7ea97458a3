"""`reconcile demo --with superset` end to end, on the real Superset pair it starts: each step's outcome, read back
through Superset's API (never by matching the narration).

The demo calls back after each Superset step; the checks here ask the live servers what that step
should have left behind. The screenshots are checked when Chromium is installed (.ci/run installs it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.demo import run_demo
from reconciler.demo_superset import HAND_PERMISSION, HAND_ROLE, HAND_TITLE, SHOWN_CHART, STEPS, chart_rows
from reconciler.sandbox.screenshots import CHROMIUM_NAMES
from reconciler.sandbox.superset import QA_ONLY_REGION, SupersetServer
from reconciler.sandbox.superset_dashboards import DASHBOARDS
from reconciler.systems.superset.client import SupersetClient
from tests.helpers import REPO
from tests.testbeds.common import CACHE

SLUGS = sorted(spec.slug for spec in DASHBOARDS)
PNG = b"\x89PNG\r\n\x1a\n"


def _client(server: SupersetServer) -> SupersetClient:
    return SupersetClient(server.url, username=server.username, password=server.password)


def _regions(client: SupersetClient) -> set[str]:
    return {row["region"] for row in chart_rows(client, SHOWN_CHART)}


def _chart_titles(client: SupersetClient) -> set[str]:
    return {chart.name for chart in client.list_charts()}


def _role_permissions(client: SupersetClient, name: str) -> set[tuple[str, str]]:
    role = next(r for r in client.list_roles() if r.name == name)
    return {(p.permission, p.view_menu) for p in client.role_permissions(role.id)}


class StepChecks:
    """What each step must leave in the live servers (and in the demo's scratch project, for the pull)."""

    def __init__(self, screenshots: Path | None) -> None:
        self.png_dir = screenshots
        self.seen: list[str] = []

    def __call__(self, step: str, servers: dict[str, SupersetServer]) -> None:
        self.seen.append(step)
        with _client(servers["prod"]) as prod, _client(servers["qa"]) as qa:
            getattr(self, step)(prod, qa, servers)

    def pulled(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert sorted(d.slug or "" for d in prod.list_dashboards()) == SLUGS  # built "by hand" at start-up
        assert qa.list_dashboards() == []

    def planned(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert qa.list_dashboards() == [] and qa.list_charts() == []  # planning wrote nothing

    def applied(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert sorted(d.slug or "" for d in qa.list_dashboards()) == SLUGS
        assert _chart_titles(qa) == _chart_titles(prod)
        assert {c.uuid for c in qa.list_charts()} == {c.uuid for c in prod.list_charts()}  # the same assets
        (database,) = qa.list_databases()
        connection = qa.get_json(f"/api/v1/database/{database.id}/connection")["result"]
        assert connection["sqlalchemy_uri"] == servers["qa"].warehouse_uri  # QA's own warehouse, not prod's
        assert QA_ONLY_REGION in _regions(qa)  # QA's charts read QA's warehouse...
        assert QA_ONLY_REGION not in _regions(prod)  # ...and prod's still read prod's
        assert {"analyst", "sales-viewer"} <= {r.name for r in qa.list_roles()}

    def renamed(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert HAND_TITLE in _chart_titles(qa) and SHOWN_CHART not in _chart_titles(qa)

    def restored(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert SHOWN_CHART in _chart_titles(qa) and HAND_TITLE not in _chart_titles(qa)
        assert QA_ONLY_REGION in _regions(qa)  # the chart put back still reads QA's warehouse

    def granted(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert HAND_PERMISSION in _role_permissions(qa, HAND_ROLE)

    def revoked(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert HAND_PERMISSION not in _role_permissions(qa, HAND_ROLE)
        assert ("can_read", "Dashboard") in _role_permissions(qa, HAND_ROLE)  # the rest of the role kept

    def screenshots(self, prod: SupersetClient, qa: SupersetClient, servers: dict[str, SupersetServer]) -> None:
        assert self.png_dir is not None
        for env in ("prod", "qa"):
            image = (self.png_dir / f"{env}-sales-overview.png").read_bytes()
            assert image.startswith(PNG) and len(image) > 10_000
        for client in (prod, qa):  # anonymous viewing was only for the screenshots
            public = next(r for r in client.list_roles() if r.name == "Public")
            assert client.role_permissions(public.id) == []


@pytest.mark.slow
def test_the_superset_chapter_leaves_each_step_visible_in_superset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(CACHE))  # the test beds' Superset venv, not a second install
    has_chromium = any(shutil.which(name) for name in CHROMIUM_NAMES)
    screenshots = tmp_path / "screenshots" if has_chromium else None
    checks = StepChecks(screenshots)
    lines: list[str] = []

    def echo(line: Any) -> None:
        lines.append(str(line))

    run_demo(REPO, echo, superset=True, screenshots=screenshots, after_superset_step=checks)

    expected = [step for step in STEPS if step != "screenshots" or has_chromium]
    assert checks.seen == expected, "\n".join(lines)
