"""Sandbox, after the demo's Superset chapter: PNGs of dashboards as headless Chromium renders them.

Chromium cannot sign in, so while it renders, the instance's `Public` role (what an anonymous
visitor gets) holds the Admin role's permissions; its own are put back afterwards. Sandbox
servers only: they listen on 127.0.0.1 and sign in with admin/admin anyway.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import ReconcilerError
from reconciler.systems.superset.client import SupersetClient

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1500, 520)
RENDER_BUDGET_MS = 20000  # virtual time for the page's scripts and chart queries
TIMEOUT_SECONDS = 120


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ReconcilerError("screenshots need Chromium on PATH (Debian: apt-get install -y chromium)")


@contextmanager
def anonymous_viewing(client: SupersetClient) -> Iterator[None]:
    """Let an anonymous visitor see everything while the block runs; restore the Public role after."""
    roles = {role.name: role.id for role in client.list_roles()}
    public, admin = roles["Public"], roles["Admin"]
    kept = [p.id for p in client.role_permissions(public)]
    client.set_role_permissions(public, [p.id for p in client.role_permissions(admin)])
    try:
        yield
    finally:
        client.set_role_permissions(public, kept)


def dashboard_url(base_url: str, slug: str) -> str:
    return f"{base_url}/superset/dashboard/{slug}/?standalone=1&expand_filters=0"


def screenshot_dashboard(chromium: str, base_url: str, slug: str, target: Path) -> Path:
    """Render one dashboard (standalone, filter bar folded) into a PNG at `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="reconciler-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--virtual-time-budget={RENDER_BUDGET_MS}",
            f"--screenshot={target}",
            dashboard_url(base_url, slug),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise ReconcilerError(f"Chromium did not render {slug} within {TIMEOUT_SECONDS} s") from exc
    if not target.exists() or target.stat().st_size == 0:
        raise ReconcilerError(
            f"Chromium wrote no screenshot of {slug} (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )
    return target
