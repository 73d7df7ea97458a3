"""Benchmark: reading one generated spec of N connections with libyaml's parser and with PyYAML's own.

Both produce the same located tree (checked here too); the time is `parse_yaml` alone, in this
process, best of `--repeats`.

    .venv/bin/python bench/parse_specs.py [--connections 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from reconciler.sandbox.airbyte_fleet import write_fleet
from reconciler.spec import yamlsource


def best_of(repeats: int, libyaml: bool, text: str) -> tuple[float, Any]:
    yamlsource._LIBYAML = libyaml
    best, tree = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        tree = yamlsource.parse_yaml(text, "fleet.yaml")
        best = min(best, time.perf_counter() - started)
    return best, tree


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not yamlsource._LIBYAML:
        raise SystemExit("this PyYAML was built without libyaml: nothing to compare")
    scratch = Path(tempfile.mkdtemp(prefix="reconciler-parse-"))
    try:
        write_fleet(scratch, args.connections)
        text = (scratch / "specs" / "airbyte" / "fleet.yaml").read_text()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    fast, fast_tree = best_of(args.repeats, True, text)
    slow, slow_tree = best_of(args.repeats, False, text)
    assert fast_tree == slow_tree
    print(
        f"{args.connections:,} connections, {len(text) / 2**20:.1f} MiB of YAML: PyYAML {slow:.2f} s, "
        f"libyaml {fast:.2f} s ({slow / fast:.1f}x), best of {args.repeats}"
    )


if __name__ == "__main__":
    main()
