"""The controller's drift check, measured inside one long-running process: the same plan made again and again.

Run by bench/plan_airbyte.py (row `replan`). The process takes the controller's memory policy
(`memory.long_running()`), then plans the environment `--plans` times through the one reconcile
service, as a drift check does (`ReconcileService.plan`). The first plan loads the specs; later ones
find them in the loader's cache. Prints one JSON line: each plan's wall and CPU seconds (process
CPU: the listing threads' share included) and the process's peak RSS in MiB.

    python bench/replan_airbyte.py ROOT ENV [--plans 6]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from reconciler.service.reconcile import ReconcileService
from reconciler.spec import memory


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("env")
    parser.add_argument("--plans", type=int, default=6)
    args = parser.parse_args()
    memory.long_running()  # as `reconcile controller` does
    service = ReconcileService.of_folder(args.root, dict(os.environ))
    plans = []
    for _ in range(args.plans):
        started, cpu = time.perf_counter(), time.process_time()
        plan = service.plan(args.env)
        if plan.has_changes:
            raise SystemExit(f"the environment is not converged: {plan.summary()}")
        plans.append([time.perf_counter() - started, time.process_time() - cpu])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"plans": plans, "rss_mib": rss}))


if __name__ == "__main__":
    main()
