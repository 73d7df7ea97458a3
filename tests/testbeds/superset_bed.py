"""Test bed, under the Superset integration tests: installs Apache Superset in a venv of its own and runs instances.

- `ensure_superset_venv()` builds `.cache/testbeds/superset-venv` once (a marker file holds the pins; a
  file lock keeps parallel test processes from racing).
- `start_superset_instances(names, root)` starts several side by side (prod and qa: about 3 s
  once the template is cached).
- `start_superset(name, port, workdir)` writes a config, bootstraps the metadata DB (copied from a
  per-version template after the first time), starts `superset run` and waits for `/health`. Each
  instance also gets its own SQLite warehouse whose rows differ per instance (QA's alone holds the
  region `QA-ONLY-REGION`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.testbeds import common
from tests.testbeds.common import CACHE, file_lock, free_port, log_tail, stop_process_group, wait_answering
from tests.testbeds.superset_config_template import render_config

SUPERSET_VERSION = "6.1.0"
# The upstream package alone breaks on 6.1.0 (see shared/reference/superset-testbed.md): `rich` is
# missing, flask-caching 2.5 is too new, and SQLite connections need cachetools.
SUPERSET_PINS = (f"apache-superset=={SUPERSET_VERSION}", "rich", "flask-caching==2.3.1", "cachetools")
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
START_TIMEOUT_SECONDS = 180.0
QA_ONLY_REGION = "QA-ONLY-REGION"


def say(message: str) -> None:
    common.say("superset", message)


def ensure_superset_venv() -> Path:
    """The Superset venv, installed on first use; returns its directory."""
    return common.ensure_venv("superset", SUPERSET_PINS, "superset", CACHE, expect="about 2 minutes")


@dataclass
class SupersetInstance:
    """One running Superset: where it answers, how to sign in, and its own warehouse file."""

    name: str
    url: str
    username: str
    password: str
    workdir: Path
    warehouse_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def warehouse_uri(self) -> str:
        return f"sqlite:///{self.warehouse_path}"

    def stop(self) -> None:
        """Stop the server and everything it spawned (it runs in a process group of its own)."""
        stop_process_group(self.process)


def superset_env(venv: Path, config_path: Path, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        SUPERSET_CONFIG_PATH=str(config_path),
        SUPERSET_HOME=str(home),
        FLASK_APP="superset",
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_superset(venv: Path, env: dict[str, str], args: list[str], log_path: Path) -> None:
    with log_path.open("a") as log:
        log.write(f"\n$ superset {' '.join(args)}\n")
        log.flush()
        result = subprocess.run([str(venv / "bin" / "superset"), *args], env=env, stdout=log, stderr=log)
    if result.returncode != 0:
        raise RuntimeError(f"superset {args[0]} failed (exit {result.returncode}):\n{log_tail(log_path)}")


def bootstrap_metadata(venv: Path, metadata_db: Path, log_path: Path) -> None:
    """Give `metadata_db` the schema, roles and admin user, from the per-version template if cached."""
    fingerprint = hashlib.sha256((render_config(Path("/x"), Path("/x")) + "".join(SUPERSET_PINS)).encode())
    template = CACHE / f"superset-{SUPERSET_VERSION}-{fingerprint.hexdigest()[:12]}-metadata.db"
    with file_lock(CACHE / "superset-metadata.lock"):
        if not template.exists():
            started = time.monotonic()
            say(f"bootstrapping a metadata DB template for Superset {SUPERSET_VERSION} (about 35 s, once)")
            with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
                scratch_db = Path(scratch) / "superset.db"
                config_path = Path(scratch) / "superset_config.py"
                config_path.write_text(render_config(scratch_db, Path(scratch)))
                env = superset_env(venv, config_path, Path(scratch))
                run_superset(venv, env, ["db", "upgrade"], log_path)
                admin = ["--firstname", "Ada", "--lastname", "Admin", "--email", "admin@example.com"]
                run_superset(
                    venv,
                    env,
                    ["fab", "create-admin", "--username", ADMIN_USERNAME, "--password", ADMIN_PASSWORD, *admin],
                    log_path,
                )
                run_superset(venv, env, ["init"], log_path)
                partial = template.with_suffix(".partial")
                shutil.copyfile(scratch_db, partial)
                partial.rename(template)
            for stale in CACHE.glob("superset-*-metadata.db"):
                if stale != template:
                    stale.unlink()  # made for another version or config
            say(f"metadata template ready in {time.monotonic() - started:.0f} s")
    shutil.copyfile(template, metadata_db)


def start_superset(name: str, port: int | None, workdir: Path) -> SupersetInstance:
    """Bootstrap and run one Superset instance in `workdir`; returns once `/health` answers."""
    venv = ensure_superset_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    metadata_db = workdir / "superset.db"
    config_path = workdir / "superset_config.py"
    log_path = workdir / "superset.log"
    config_path.write_text(render_config(metadata_db, workdir))
    bootstrap_metadata(venv, metadata_db, log_path)
    warehouse_path = workdir / f"warehouse_{name}.db"
    create_warehouse(warehouse_path, name)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(venv / "bin" / "superset"), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"]
    with log_path.open("a") as log:
        log.write(f"\n$ {' '.join(args[1:])}\n")
        log.flush()
        process = subprocess.Popen(
            args,
            env=superset_env(venv, config_path, workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    instance = SupersetInstance(name, url, ADMIN_USERNAME, ADMIN_PASSWORD, workdir, warehouse_path, log_path, process)
    try:
        wait_answering(f"Superset at {url}", f"{url}/health", process, log_path, START_TIMEOUT_SECONDS)
    except BaseException:
        instance.stop()
        raise
    say(f"{name} serving at {url} after {time.monotonic() - started:.0f} s")
    return instance


def start_superset_instances(names: Sequence[str], root: Path) -> dict[str, SupersetInstance]:
    """Start several instances side by side (`root/<name>` each); if one fails, the others are stopped."""
    ensure_superset_venv()  # once, before the starts share it
    started: dict[str, SupersetInstance] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(start_superset, name, None, root / name) for name in names}
        for name, future in futures.items():
            try:
                started[name] = future.result()
            except BaseException as exc:
                failure = failure or exc
    if failure is not None:
        for instance in started.values():
            instance.stop()
        raise failure
    return started


REGIONS = {"prod": ("EMEA", "AMER", "APAC"), "qa": ("EMEA", "AMER", QA_ONLY_REGION)}
PRODUCTS = ("widget", "gadget", "gizmo")
COUNTRIES = ("DE", "US", "JP", "FR")


def create_warehouse(path: Path, name: str) -> None:
    """A small SQLite warehouse (`sales`, `customers`) whose rows depend on the instance name."""
    regions = REGIONS.get(name, REGIONS["prod"])
    seed = 7 if name == "prod" else 3
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE sales (order_date TEXT, region TEXT, product TEXT, amount REAL)")
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT, signup_date TEXT)")
        sales = [
            (
                f"2024-{month:02d}-{day:02d}",
                regions[(month * day + seed) % 3],
                PRODUCTS[(month + day) % 3],
                float((month * 37 + day * 11 + seed * 5) % 97 + 10),
            )
            for month in range(1, 13)
            for day in (3, 11, 19)
        ]
        db.executemany("INSERT INTO sales VALUES (?, ?, ?, ?)", sales)
        customers = [
            (index, f"{name}-customer-{index}", COUNTRIES[(index * seed) % 4], f"2023-{index % 12 + 1:02d}-01")
            for index in range(1, 21)
        ]
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", customers)


def as_dashboard_zip(assets_zip: bytes) -> bytes:
    """The same files with `metadata.yaml` saying `type: Dashboard`, as Superset's dashboard imports want."""
    source = zipfile.ZipFile(io.BytesIO(assets_zip))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("/metadata.yaml"):
                data = yaml.safe_dump({"version": "1.0.0", "type": "Dashboard"}).encode()
            archive.writestr(name, data)
    return buffer.getvalue()
