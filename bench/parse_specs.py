"""Benchmark: reading one generated spec of N connections with libyaml's parser and with PyYAML's own.

All produce the same located tree (checked here too); the time is `parse_yaml` alone, in this
process, best of `--repeats`: PyYAML's parser, libyaml's parser under PyYAML's composer (the
full loader, for files with anchors or tags), libyaml's events built straight into the tree
(plain files), and a read of an unchanged file from the cache of parsed files (a copy).

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


def timed(repeats: int, read: Any) -> tuple[float, Any]:
    best, tree = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        tree = read()
        best = min(best, time.perf_counter() - started)
    return best, tree


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
    loader = yamlsource._loader_for("fleet.yaml", libyaml=True)
    full, full_tree = timed(args.repeats, lambda: yamlsource.yaml.load(text, Loader=loader))
    yamlsource._LIBYAML = True
    cache = yamlsource.ParsedCache()
    cache.parse(text, "fleet.yaml")
    cache.parse(text, "fleet.yaml")
    cached, cached_tree = timed(args.repeats, lambda: cache.parse(text, "fleet.yaml"))
    assert fast_tree == slow_tree == full_tree == cached_tree
    print(
        f"{args.connections:,} connections, {len(text) / 2**20:.1f} MiB of YAML, best of {args.repeats}: "
        f"PyYAML {slow:.2f} s, libyaml under PyYAML's composer {full:.2f} s, libyaml events to tree "
        f"{fast:.2f} s ({slow / fast:.1f}x), unchanged file from the cache {cached:.2f} s"
    )


if __name__ == "__main__":
    main()
