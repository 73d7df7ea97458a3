"""Benchmark: reconciler against Airbyte at N connections (plus as many sources and 10 destinations).

For each N, every command runs as its own process against the stand-in (itself in another
process, with a simulated round trip per request), and the table shows what the whole process
cost: requests the stand-in answered (writes among them), wall time, CPU time (user + system)
and peak RSS, medians of `--repeats` runs. Rows:

    startup       `reconcile --help`
    validate      `reconcile validate --env bench` (offline: load and check the specs)
    plan          `reconcile plan --env bench` on a converged environment
    floor         a list-only client: every page of the three lists, nothing else
    refresh       one GET per resource, one at a time
    refresh10     one GET per resource, 10 at a time (Terraform's refresh)
    apply-empty   `reconcile apply --auto-approve --parallelism 1` creating everything (a fresh stand-in each run)
    apply-empty10 the same with `--parallelism 10` (the default)
    post10        a plain client sending the same POSTs 10 at a time (a fresh stand-in each run)
    apply-noop    the same apply once converged
    replan        the controller's drift check: one long-running process planning again and again
                  (bench/replan_airbyte.py; the median of plans 2-6, measured inside it; RSS: the process's peak)

then ratios measured in the same run (plan/floor, refresh10/plan, ...).

The measured commands (reconcile and the plain clients) run, by default, in a runtime-only virtualenv like the
image's: exactly the pins of constraints.txt, byte-compiled, with this checkout's reconciler on PYTHONPATH. It is
built once under `.cache/bench-runtime/` (keyed by the Python version and constraints.txt) from the configured
package index. The development venv holds more (`rich`, which structlog imports when it is installed: some 0.1 s
of every command's CPU; the linters' and tests' packages); `--python dev` measures it instead.

    .venv/bin/python bench/plan_airbyte.py                 # N = 100, 1,000 and 5,000
    .venv/bin/python bench/plan_airbyte.py --quick         # N = 100 and 1,000
    .venv/bin/python bench/plan_airbyte.py --sizes 2000 --repeats 1 --latency-ms 2
    .venv/bin/python bench/plan_airbyte.py --python dev    # in the development venv (this interpreter)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from reconciler.sandbox.airbyte_actors import ActorHandlers, ActorKind
from reconciler.sandbox.airbyte_connections import ConnectionHandlers
from reconciler.sandbox.airbyte_fleet import fleet_environ, write_fleet
from reconciler.sandbox.airbyte_requests import request_body
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.http_util import Request, Response
from reconciler.sandbox.launch import CLIENT_ID, CLIENT_SECRET

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
PYTHON = sys.executable
"""The interpreter of the measured commands (`main` sets it: the runtime venv's by default)."""
RECONCILE = [PYTHON, "-m", "reconciler.cli"]
CLIENTS = [PYTHON, str(HERE / "airbyte_clients.py")]


def runtime_python() -> str:
    """The runtime-only venv's interpreter (built on first use): constraints.txt's pins alone, as the image has."""
    constraints = (CHECKOUT / "constraints.txt").read_bytes()
    key = f"py{sys.version_info.major}.{sys.version_info.minor}-{hashlib.sha256(constraints).hexdigest()[:12]}"
    venv = CHECKOUT / ".cache" / "bench-runtime" / key
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        print(f"building the runtime venv {venv} from constraints.txt ...", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = ["-m", "pip", "install", "--quiet", "--only-binary=:all:", "--no-deps"]
        subprocess.run([str(python), *install, "--requirement", str(CHECKOUT / "constraints.txt")], check=True)
        subprocess.run([str(python), "-m", "compileall", "-q", str(venv / "lib")], check=True)
        (venv / ".complete").write_text(key)
    return str(python)


def record_creates(posts: list[dict[str, Any]]) -> None:
    """Keep every create the stand-in carries out (collection, body, answer): what the plain client sends again."""
    create_actor, create_connection = ActorHandlers.create_actor, ConnectionHandlers.create_connection

    def keep(request: Request, response: Response) -> Response:
        if response.status < 300:
            collection = request.path.rstrip("/").rsplit("/", 1)[-1]
            posts.append({"collection": collection, "body": request_body(request), "answer": json.loads(response.body)})
        return response

    def actor(handlers: ActorHandlers, kind: ActorKind, request: Request) -> Response:
        return keep(request, create_actor(handlers, kind, request))

    def connection(handlers: ConnectionHandlers, request: Request) -> Response:
        return keep(request, create_connection(handlers, request))

    ActorHandlers.create_actor = actor  # type: ignore[method-assign,assignment]
    ConnectionHandlers.create_connection = connection  # type: ignore[method-assign,assignment]


def serve(control: Connection, latency: float) -> None:
    """The stand-in in its own process, answering `stats` (then reset), `posts` (then cleared) and `stop`."""
    posts: list[dict[str, Any]] = []
    record_creates(posts)
    server = AirbyteStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, latency_seconds=latency).start()
    control.send(server.url)
    while (command := control.recv()) != "stop":
        if command == "stats":
            control.send((server.stats.total, server.stats.writes))
            server.stats.reset()
        elif command == "posts":
            control.send(list(posts))
            posts.clear()
    server.stop()


class StandIn:
    """A stand-in process; `counted()` gives the requests since the last call."""

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, theirs = context.Pipe()
        self._process = context.Process(target=serve, args=(theirs, latency), daemon=True)
        self._process.start()
        self.url: str = self._control.recv()

    def counted(self) -> tuple[int, int]:
        self._control.send("stats")
        total, writes = self._control.recv()
        return int(total), int(writes)

    def posts(self) -> list[dict[str, Any]]:
        """The creates carried out since the last call."""
        self._control.send("posts")
        answer: list[dict[str, Any]] = self._control.recv()
        return answer

    def stop(self) -> None:
        self._control.send("stop")
        self._process.join(timeout=30)


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    requests: int = 0
    writes: int = 0


class Runner:
    """bench/measured_run.py: a small process starts the commands, so they do not inherit this one's peak RSS."""

    def __init__(self, extra: dict[str, str]) -> None:
        self._extra = extra  # set for every command (PYTHONPATH, for the runtime venv)
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "measured_run.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, command: Sequence[str], environ: dict[str, str], log: Path) -> Run:
        """Run `command` to the end; its wall time, CPU time and peak RSS (from wait4: the process alone)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request = {"command": list(command), "env": {**environ, **self._extra}, "log": str(log)}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        if answer["returncode"] != 0:
            raise SystemExit(f"{' '.join(command)} failed ({answer['returncode']}):\n{log.read_text()[-3000:]}")
        return Run(answer["wall"], answer["cpu"], answer["rss_mib"])

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


RUNNER: Runner | None = None
RUNNER_PATH = ""
"""PYTHONPATH for processes the benchmark starts itself (the runtime venv's: this checkout)."""


def run(command: Sequence[str], environ: dict[str, str], log: Path) -> Run:
    assert RUNNER is not None, "main() starts the runner"
    return RUNNER.run(command, environ, log)


def median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        statistics.median(r.rss_mib for r in runs),
        int(statistics.median(r.requests for r in runs)),
        int(statistics.median(r.writes for r in runs)),
    )


def measure(
    label: str, command: Sequence[str], environ: dict[str, str], scratch: Path, repeats: int, server: StandIn | None
) -> Run:
    runs = []
    for _ in range(repeats):
        if server is not None:
            server.counted()
        result = run(command, environ, scratch / f"{label}.log")
        if server is not None:
            result.requests, result.writes = server.counted()
        runs.append(result)
    return median(runs)


REPLANS = 6
"""Plans made by the `replan` process: the first loads the specs, the median of the others is the row."""


def replan(root: Path, environ: dict[str, str], server: StandIn) -> Run:
    """The controller's drift check: plans 2..REPLANS of one long-running process (bench/replan_airbyte.py)."""
    server.counted()
    command = [PYTHON, str(HERE / "replan_airbyte.py"), str(root), "bench", "--plans", str(REPLANS)]
    extra = {"PYTHONPATH": RUNNER_PATH} if RUNNER_PATH else {}
    done = subprocess.run(command, env={**environ, **extra}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    warm = answer["plans"][1:]
    requests, writes = server.counted()
    return Run(
        statistics.median(wall for wall, _ in warm),
        statistics.median(cpu for _, cpu in warm),
        answer["rss_mib"],
        requests // REPLANS,
        writes,
    )


def bench_size(connections: int, args: argparse.Namespace, startup: Run) -> dict[str, Run]:
    scratch = Path(tempfile.mkdtemp(prefix=f"reconciler-bench-{connections}-"))
    latency = args.latency_ms / 1000
    repeats = args.repeats
    slow_repeats = repeats if connections <= 1000 else 1
    rows: dict[str, Run] = {"startup": startup}
    server: StandIn | None = None
    try:
        resources = write_fleet(scratch, connections, args.destinations)
        print(f"\nN = {connections:,} connections ({resources:,} resources) ...", flush=True)
        base = [*RECONCILE, "--root", str(scratch)]
        state_file = scratch / ".reconciler" / "state" / "bench.json"
        environ = {**os.environ, **fleet_environ("http://127.0.0.1:9/unused")}
        rows["validate"] = measure("validate", [*base, "validate", "--env", "bench"], environ, scratch, repeats, None)

        apply = [*base, "apply", "--env", "bench", "--auto-approve"]
        for label, parallelism in (("apply-empty", "1"), ("apply-empty10", "10")):
            applies = []
            for _ in range(slow_repeats):  # each from empty: a fresh stand-in and no state
                if server is not None:
                    server.stop()
                server = StandIn(latency)
                shutil.rmtree(scratch / ".reconciler", ignore_errors=True)
                environ = {**os.environ, **fleet_environ(server.url)}
                command = [*apply, "--parallelism", parallelism]
                applies.append(measure(label, command, environ, scratch, 1, server))
            rows[label] = median(applies)
        assert server is not None
        posts_file = scratch / "posts.json"
        posts_file.write_text(json.dumps(server.posts()), encoding="utf-8")  # the last apply's creates
        rows["apply-noop"] = measure("apply-noop", apply, environ, scratch, repeats, server)
        rows["plan"] = measure("plan", [*base, "plan", "--env", "bench"], environ, scratch, repeats, server)
        rows["replan"] = replan(scratch, environ, server)
        for mode in ("floor", "refresh", "refresh10"):
            command = [*CLIENTS, mode, server.url, CLIENT_SECRET, str(state_file)]
            rows[mode] = measure(
                mode, command, environ, scratch, slow_repeats if mode == "refresh" else repeats, server
            )
        posts = []
        for _ in range(slow_repeats):  # the same POSTs from a plain client, each run on a fresh stand-in
            server.stop()
            server = StandIn(latency)
            command = [*CLIENTS, "create10", server.url, CLIENT_SECRET, str(posts_file)]
            posts.append(measure("post10", command, environ, scratch, 1, server))
        rows["post10"] = median(posts)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def report(connections: int, rows: dict[str, Run]) -> None:
    print(f"\n| N = {connections:,} | requests | writes | wall s | CPU s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, row in rows.items():
        print(f"| {label} | {row.requests:,} | {row.writes:,} | {row.wall:.2f} | {row.cpu:.2f} | {row.rss_mib:.0f} |")
    plan, floor = rows["plan"], rows["floor"]
    ratios = {
        "plan / floor (wall)": plan.wall / floor.wall,
        "refresh10 / plan (wall)": rows["refresh10"].wall / plan.wall,
        "replan / floor (wall)": rows["replan"].wall / floor.wall,
        "refresh / plan (wall)": rows["refresh"].wall / plan.wall,
        "refresh10 / plan (requests)": rows["refresh10"].requests / max(plan.requests, 1),
        "apply-noop / plan (wall)": rows["apply-noop"].wall / plan.wall,
        "apply-empty10 / post10 (wall)": rows["apply-empty10"].wall / rows["post10"].wall,
        "apply-empty / apply-empty10 (wall)": rows["apply-empty"].wall / rows["apply-empty10"].wall,
    }
    print("ratios: " + "; ".join(f"{name} {value:.2f}x" for name, value in ratios.items()))
    creates = rows["apply-empty"].writes
    if creates:
        print(f"apply from empty: {rows['apply-empty'].wall / creates * 1000:.1f} ms per write ({creates:,} writes)")


def compile_reconciler() -> None:
    """Byte-compile reconciler first, as an installed package is: under PYTHONDONTWRITEBYTECODE every command
    would otherwise compile each of its modules on every start (about 0.2 s of a plan's CPU)."""
    import compileall

    import reconciler

    compileall.compile_dir(str(Path(reconciler.__file__).parent), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="comma-separated connection counts")
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1,000 only")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (the median is shown)")
    parser.add_argument("--destinations", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=2.0, help="simulated network round trip per request")
    parser.add_argument(
        "--python",
        choices=("runtime", "dev"),
        default="runtime",
        help="measure in a runtime-only venv from constraints.txt (as the image) or in this development venv",
    )
    args = parser.parse_args()
    compile_reconciler()
    global RUNNER, RUNNER_PATH, PYTHON, RECONCILE, CLIENTS
    extra: dict[str, str] = {}
    if args.python == "runtime":
        PYTHON = runtime_python()
        extra["PYTHONPATH"] = str(CHECKOUT)  # this checkout's reconciler, as if installed
        RUNNER_PATH = str(CHECKOUT)
    RECONCILE = [PYTHON, "-m", "reconciler.cli"]
    CLIENTS = [PYTHON, str(HERE / "airbyte_clients.py")]
    RUNNER = Runner(extra)
    sizes = [100, 1000] if args.quick else [int(size.replace("_", "")) for size in args.sizes.split(",")]
    print(
        f"Airbyte benchmark: sizes {sizes}, {args.latency_ms} ms round trip, medians of {args.repeats} "
        f"(1 run of apply-empty and refresh above 1,000); python {sys.version.split()[0]} ({args.python} venv), "
        f"{os.cpu_count()} CPUs"
    )
    scratch = Path(tempfile.mkdtemp(prefix="reconciler-bench-"))
    try:
        startup = measure("startup", [*RECONCILE, "--help"], dict(os.environ), scratch, args.repeats, None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        for connections in sizes:
            report(connections, bench_size(connections, args, startup))
    finally:
        RUNNER.close()


if __name__ == "__main__":
    main()
