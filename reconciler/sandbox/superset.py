"""Sandbox: real Apache Superset servers (prod and qa) for the demo, `reconcile sandbox --with superset` and the tests.

- `ensure_superset_venv(cache_dir)` installs apache-superset in a venv of its own, once (about 2
  minutes, 800 MB), with progress; later starts reuse it. `superset_cache_dir(root)` picks the
  cache: the test beds' `.cache/testbeds` when it already holds this venv, else the user's cache.
- `start_superset(name, port, workdir, cache_dir)` writes a config, gives the instance a metadata DB
  (copied from a per-version template bootstrapped once: db upgrade, admin user, init), a SQLite
  warehouse whose rows say which environment they belong to, starts `superset run` and waits for
  `/health`. A workdir that already holds a metadata DB keeps it (the sandbox's data survives).
- `start_superset_instances(names, root, cache_dir)` starts several side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox.local_servers import (
    Say,
    ServerStartError,
    default_cache_dir,
    ensure_venv,
    file_lock,
    free_port,
    log_tail,
    say_to_stderr,
    stop_process_group,
    venv_ready,
    wait_answering,
)

SUPERSET_VERSION = "6.1.0"
# The upstream package alone breaks on 6.1.0: `rich` is missing, flask-caching 2.5 is too new,
# and SQLite connections need cachetools.
SUPERSET_PINS = (f"apache-superset=={SUPERSET_VERSION}", "rich", "flask-caching==2.3.1", "cachetools")
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
START_TIMEOUT_SECONDS = 180.0
QA_ONLY_REGION = "QA-ONLY-REGION"
TESTBED_CACHE = Path(".cache") / "testbeds"

# Also signs the JWTs (flask-jwt-extended falls back to it): tests mint expired tokens with it.
SECRET_KEY = "reconciler-testbed-secret-key-not-for-production-0123456789"

# Kept close to what a real deployment runs: CSRF stays enabled (clients must handle it), feature
# flags stay at their defaults. The differences are the ones a throwaway instance needs: SQLite
# metadata, SQLite warehouses allowed as data sources, no Talisman, the FAB security API on for roles.
# The text is part of the metadata template's cache key: changing it re-bootstraps the template.
CONFIG_TEMPLATE = """\
# Written by tests/testbeds/superset_bed.py: a throwaway Superset for the integration tests.
SECRET_KEY = "{secret_key}"
SQLALCHEMY_DATABASE_URI = "sqlite:///{metadata_db}"
DATA_DIR = "{data_dir}"

FAB_ADD_SECURITY_API = True
PREVENT_UNSAFE_DB_CONNECTIONS = False
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
WTF_CSRF_ENABLED = True

# One process per instance, SQLite everywhere: no Redis, no Celery, no thumbnails.
CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache"}}
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
"""


def render_config(metadata_db: Path, data_dir: Path) -> str:
    """The config text for an instance whose metadata lives in `metadata_db`."""
    return CONFIG_TEMPLATE.format(secret_key=SECRET_KEY, metadata_db=metadata_db, data_dir=data_dir)


def superset_cache_dir(root: Path | None = None) -> Path:
    """The project's test-bed cache when it already holds this Superset, else the user's cache."""
    if root is not None and venv_ready(root / TESTBED_CACHE / "superset-venv", SUPERSET_PINS, "superset"):
        return root / TESTBED_CACHE
    return default_cache_dir()


def ensure_superset_venv(cache_dir: Path, say: Say = say_to_stderr) -> Path:
    """The Superset venv, installed on first use; returns its directory."""
    expect = "about 2 minutes and 800 MB"
    return ensure_venv("superset", SUPERSET_PINS, "superset", cache_dir, expect=expect, say=say)


@dataclass
class SupersetServer:
    """One running Superset: where it answers, how to sign in, and its own warehouse file."""

    name: str
    url: str
    username: str
    password: str
    workdir: Path
    warehouse_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    fresh: bool = True
    """True when its metadata DB was new (nothing built on it yet)."""

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
        raise ServerStartError(f"superset {args[0]} failed (exit {result.returncode}):\n{log_tail(log_path)}")


def bootstrap_metadata(venv: Path, cache_dir: Path, metadata_db: Path, log_path: Path, say: Say) -> None:
    """Give `metadata_db` the schema, roles and admin user, from the per-version template if cached."""
    fingerprint = hashlib.sha256((render_config(Path("/x"), Path("/x")) + "".join(SUPERSET_PINS)).encode())
    template = cache_dir / f"superset-{SUPERSET_VERSION}-{fingerprint.hexdigest()[:12]}-metadata.db"
    with file_lock(cache_dir / "superset-metadata.lock"):
        if not template.exists():
            started = time.monotonic()
            say(f"bootstrapping a metadata DB template for Superset {SUPERSET_VERSION} (about 35 s, once)")
            with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
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
            for stale in cache_dir.glob("superset-*-metadata.db"):
                if stale != template:
                    stale.unlink()  # made for another version or config
            say(f"metadata template ready in {time.monotonic() - started:.0f} s")
        shutil.copyfile(template, metadata_db)


def start_superset(
    name: str, port: int | None, workdir: Path, cache_dir: Path, *, say: Say = say_to_stderr
) -> SupersetServer:
    """Bootstrap (unless `workdir` already holds one) and run one Superset; returns once `/health` answers."""
    venv = ensure_superset_venv(cache_dir, say)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    metadata_db = workdir / "superset.db"
    config_path = workdir / "superset_config.py"
    log_path = workdir / "superset.log"
    config_path.write_text(render_config(metadata_db, workdir))
    fresh = not metadata_db.exists()
    if fresh:
        bootstrap_metadata(venv, cache_dir, metadata_db, log_path, say)
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
    server = SupersetServer(
        name, url, ADMIN_USERNAME, ADMIN_PASSWORD, workdir, warehouse_path, log_path, process, fresh=fresh
    )
    try:
        wait_answering(f"Superset at {url}", f"{url}/health", process, log_path, START_TIMEOUT_SECONDS)
    except BaseException:
        server.stop()
        raise
    say(f"Superset {name} serving at {url} after {time.monotonic() - started:.0f} s")
    return server


def start_superset_instances(
    names: Sequence[str],
    root: Path,
    cache_dir: Path,
    *,
    ports: Sequence[int | None] | None = None,
    say: Say = say_to_stderr,
) -> dict[str, SupersetServer]:
    """Start several instances side by side (`root/<name>` each); if one fails, the others are stopped."""
    ensure_superset_venv(cache_dir, say)  # once, before the starts share it
    chosen = list(ports) if ports is not None else [None] * len(names)
    started: dict[str, SupersetServer] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {
            name: pool.submit(start_superset, name, port, root / name, cache_dir, say=say)
            for name, port in zip(names, chosen, strict=True)
        }
        for name, future in futures.items():
            try:
                started[name] = future.result()
            except BaseException as exc:
                failure = failure or exc
    if failure is not None:
        for server in started.values():
            server.stop()
        raise failure
    return started


REGIONS = {"prod": ("EMEA", "AMER", "APAC"), "qa": ("EMEA", "AMER", QA_ONLY_REGION)}
PRODUCTS = ("widget", "gadget", "gizmo")
COUNTRIES = ("DE", "US", "JP", "FR")


def create_warehouse(path: Path, name: str) -> None:
    """A small SQLite warehouse (`sales`, `customers`) whose rows depend on the instance name.

    QA's alone holds the region `QA-ONLY-REGION`, and every customer is named after its environment
    (`qa-customer-1`), so a chart shows which warehouse it read.
    """
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


SANDBOX_ENVIRONMENTS = ("prod", "qa")


class SupersetPair:
    """Superset prod and qa for the sandbox and the demo, started in the background; a new prod gets its dashboards.

    `start()` installs the venv first if needed (in the foreground, with progress), then starts both
    servers in a thread, so the caller can do other work meanwhile; `wait()` returns them once they
    answer. URLs and warehouse paths are known before the servers are up.
    """

    def __init__(self, root: Path | None, workroot: Path, ports: dict[str, int], say: Say = say_to_stderr) -> None:
        self.cache_dir = superset_cache_dir(root)
        self.workroot = workroot
        self.ports = {env: ports.get(env) or free_port() for env in SANDBOX_ENVIRONMENTS}
        self.urls = {env: f"http://127.0.0.1:{port}" for env, port in self.ports.items()}
        self.warehouses = {env: workroot / env / f"warehouse_{env}.db" for env in SANDBOX_ENVIRONMENTS}
        self.seconds_to_start = 0.0
        self._say = say
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future: Future[dict[str, SupersetServer]] | None = None

    def start(self) -> None:
        ensure_superset_venv(self.cache_dir, self._say)
        self._future = self._pool.submit(self._start)

    def _start(self) -> dict[str, SupersetServer]:
        started = time.monotonic()
        ports = [self.ports[env] for env in SANDBOX_ENVIRONMENTS]
        quiet: Say = lambda _: None  # noqa: E731 - the caller reports the time once both answer
        servers = start_superset_instances(SANDBOX_ENVIRONMENTS, self.workroot, self.cache_dir, ports=ports, say=quiet)
        prod = servers["prod"]
        if prod.fresh:
            from reconciler.sandbox.superset_dashboards import build_fixtures
            from reconciler.systems.superset.client import SupersetClient

            try:
                with SupersetClient(prod.url, username=prod.username, password=prod.password) as client:
                    build_fixtures(client, prod.warehouse_path)
            except BaseException:
                for server in servers.values():
                    server.stop()
                raise
        self.seconds_to_start = time.monotonic() - started
        return servers

    def wait(self) -> dict[str, SupersetServer]:
        if self._future is None:
            raise ServerStartError("the Superset servers were not started")
        return self._future.result()

    def stop(self) -> None:
        if self._future is not None:
            with contextlib.suppress(BaseException):
                for server in self._future.result().values():
                    server.stop()
        self._pool.shutdown(wait=True)

    def environment(self) -> dict[str, str]:
        """Variables that point the example environments' Superset sections at these servers."""
        variables: dict[str, str] = {}
        for env in SANDBOX_ENVIRONMENTS:
            prefix = f"SUPERSET_{env.upper()}"
            variables[f"{prefix}_URL"] = self.urls[env]
            variables[f"{prefix}_USERNAME"] = ADMIN_USERNAME
            variables[f"{prefix}_PASSWORD"] = ADMIN_PASSWORD
            variables[f"{prefix}_WAREHOUSE_URI"] = f"sqlite:///{self.warehouses[env]}"
        return variables
