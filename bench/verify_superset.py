"""Benchmark: a Superset's chart checks one request a chart against the verification's batches, alternating.

Starts one real Superset 6.1.0 server (the test bed's venv), builds N dashboards in it with
bench/replicate_superset.py's builder (2N charts, each with a query of its own), then runs every
chart's query, `--rounds` times each way, alternating in the same run:

- one request a chart, 8 at a time: `GET /api/v1/chart/{id}/data/?force=true` (the saved query
  context), or for a chart with none, its params' query through `POST /api/v1/chart/data` (what
  verification did before batching);
- the provider's `run_charts`: one listing, one export of the charts, then one multi-query
  `POST /api/v1/chart/data` per batch of charts of one dataset and viz type.

Prints wall time and the server's CPU time (its process group, from /proc) for each: on a shared
machine the server's CPU is the steadier figure. No assertions beyond every query passing.

    .venv/bin/python bench/verify_superset.py [--dashboards 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test bed lives under tests/

from replicate_superset import ENVIRONMENT, build_dashboards, start  # noqa: E402

from reconciler import service  # noqa: E402
from reconciler.systems.superset.client import ChartRef, SupersetClient, SupersetError  # noqa: E402
from reconciler.systems.superset.provider import SupersetProvider  # noqa: E402
from reconciler.systems.superset.rules.chart_query import query_context_from_params  # noqa: E402
from reconciler.systems.superset.rules.verify import ChartToRun, result_error  # noqa: E402


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of every process in the server's process group."""
    group, ticks = os.getpgid(pid), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def one_request_a_chart(client: SupersetClient) -> None:
    def check(ref: ChartRef) -> None:
        try:
            answer = client.chart_data(ref.id, force=True)
        except SupersetError:  # no saved query context
            answer = client.query_chart_data(query_context_from_params(client.get_chart(ref.id)))
        if (error := result_error(answer)) is not None:
            raise RuntimeError(f"{ref.name}: {error}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(check, client.list_charts()))


def batched(provider: SupersetProvider) -> None:
    charts = [ChartToRun(ref.uuid, ref.name, ()) for ref in provider.client.list_charts()]
    verification = provider.run_charts(charts)
    if not verification.ok:
        raise RuntimeError(verification.failure_message())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as scratch:
        root = Path(scratch)
        instance = start(["prod"], root / "servers")["prod"]
        try:
            with SupersetClient(instance.url, username="admin", password="admin") as client:
                build_dashboards(client, instance.warehouse_path, args.dashboards)
            environments = root / "project" / "environments"
            environments.mkdir(parents=True)
            text = ENVIRONMENT.format(
                name="prod", url=instance.url, warehouse=instance.warehouse_uri, extra="  dashboards: all\n"
            )
            (environments / "prod.yaml").write_text(text)
            environ = {"SUPERSET_PASSWORD": "admin", "RECONCILER_FINGERPRINT_KEY": "bench"}
            with service.open_session(root / "project", "prod", environ, systems=["superset"]) as session:
                provider = session.providers["superset"]
                assert isinstance(provider, SupersetProvider)
                ways: dict[str, Callable[[], None]] = {
                    "one request a chart, 8 at a time": lambda: one_request_a_chart(provider.client),
                    "batches (run_charts)": lambda: batched(provider),
                }
                print(f"\n{2 * args.dashboards} charts on {args.dashboards} dashboards, 2 datasets:")
                for _ in range(args.rounds):
                    for label, way in ways.items():
                        cpu, started = server_cpu(instance.process.pid), time.perf_counter()
                        way()
                        wall, used = time.perf_counter() - started, server_cpu(instance.process.pid) - cpu
                        print(f"  {label:<36} {wall:6.2f} s wall, {used:6.2f} s of the server's CPU")
        finally:
            instance.stop()


if __name__ == "__main__":
    main()
