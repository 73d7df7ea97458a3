"""Test bed, under the Dagster client tests: installs Dagster in a venv of its own and runs a real webserver.

- `ensure_dagster_venv(cache_dir)` builds `<cache_dir>/dagster-venv` once (a marker file holds the pins;
  a file lock keeps parallel test processes from racing). Its pins are not the project's, hence the
  separate venv.
- `start_dagster_webserver(tmp_dir)` copies the code locations of `dagster_project/` into `tmp_dir`,
  writes a workspace.yaml (by default `ingestion`, which loads, and `analytics`, which fails on
  import), starts `dagster-webserver` with DAGSTER_HOME in `tmp_dir` and waits until `/server_info`
  answers. The handle can break and fix a location's module file; a reload through GraphQL then
  shows the health gate failing and passing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.testbeds import common
from tests.testbeds.common import CACHE, free_port, log_tail, stop_process_group, wait_answering

PROJECT = Path(__file__).resolve().parent / "dagster_project"
DAGSTER_VERSION = "1.13.27"
DAGSTER_PINS = (f"dagster=={DAGSTER_VERSION}", f"dagster-webserver=={DAGSTER_VERSION}")
START_TIMEOUT_SECONDS = 120.0
GOOD_LOCATION, BROKEN_LOCATION = "ingestion", "analytics"
DEFAULT_LOCATIONS = (GOOD_LOCATION, BROKEN_LOCATION)
# What a location's module becomes when a test breaks it: the import error a bad image gives.
BROKEN_MODULE = (
    '"""Broken on purpose by the test bed."""\n\n'
    "import dagster as dg\n"
    "import missing_dependency_of_{name}  # noqa: F401\n\n"
    "defs = dg.Definitions(assets=[])\n"
)


def say(message: str) -> None:
    common.say("dagster", message)


def ensure_dagster_venv(cache_dir: Path = CACHE) -> Path:
    """The Dagster venv, installed on first use; returns its directory."""
    return common.ensure_venv("dagster", DAGSTER_PINS, "dagster-webserver", cache_dir, expect="about a minute")


def workspace_yaml(locations: Sequence[str]) -> str:
    """A workspace.yaml loading each location from `<name>.py` next to it."""
    entries = "".join(
        f"  - python_file:\n      relative_path: {name}.py\n      location_name: {name}\n      working_directory: .\n"
        for name in locations
    )
    return f"load_from:\n{entries}"


@dataclass
class DagsterWebserver:
    """A running dagster-webserver: its URL, its code-location files and its log."""

    url: str
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def module_path(self, location: str) -> Path:
        return self.workdir / f"{location}.py"

    def break_location(self, location: str) -> None:
        """Make the location's module fail on import (takes effect on the next reload)."""
        self.module_path(location).write_text(BROKEN_MODULE.format(name=location))

    def fix_location(self, location: str) -> bool:
        """Restore the location's module from dagster_project/ (takes effect on the next reload); False if unchanged."""
        original = (PROJECT / f"{location}.py").read_text()
        if self.module_path(location).read_text() == original:
            return False
        self.module_path(location).write_text(original)
        return True

    def log(self) -> str:
        return log_tail(self.log_path)

    def stop(self) -> None:
        """Stop the webserver and the code servers it spawned (a process group of their own)."""
        stop_process_group(self.process)


def dagster_env(venv: Path, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        DAGSTER_HOME=str(home),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_dagster_webserver(
    tmp_dir: Path,
    locations: Sequence[str] = DEFAULT_LOCATIONS,
    *,
    port: int | None = None,
    cache_dir: Path = CACHE,
    current_image: str | None = None,
) -> DagsterWebserver:
    """Run dagster-webserver over copies of `locations` (module names in dagster_project/) in `tmp_dir`.

    With `current_image`, its code servers run with DAGSTER_CURRENT_IMAGE set (as Dagster's Helm chart sets it
    on user-code Deployments), so each location reports that image in its `displayMetadata`."""
    venv = ensure_dagster_venv(cache_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for name in locations:
        shutil.copyfile(PROJECT / f"{name}.py", tmp_dir / f"{name}.py")
    (tmp_dir / "workspace.yaml").write_text(workspace_yaml(locations))
    home = tmp_dir / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    log_path = tmp_dir / "dagster-webserver.log"
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(venv / "bin" / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("a") as log:
        process = subprocess.Popen(
            args,
            cwd=tmp_dir,
            env=dagster_env(venv, home) | ({"DAGSTER_CURRENT_IMAGE": current_image} if current_image else {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = DagsterWebserver(url, tmp_dir, log_path, process)
    try:
        wait_answering(f"dagster-webserver at {url}", f"{url}/server_info", process, log_path, START_TIMEOUT_SECONDS)
    except BaseException:
        server.stop()
        raise
    say(f"dagster-webserver serving at {url} after {time.monotonic() - started:.1f} s")
    return server
