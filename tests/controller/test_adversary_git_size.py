"""A huge commit: the checkout streams `git archive` into the revision instead of holding the whole tar in
memory (a 1 GiB limit in the chart, a repository that grew a data file by mistake: OOMKilled at every restart)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.controller.conftest import GitRepo
from tests.helpers import REPO

SIZE = 48 * 1024 * 1024


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_checking_out_a_huge_commit_does_not_hold_it_in_memory(repo: GitRepo, tmp_path: Path) -> None:
    blob = repo.work / "data" / "dump.bin"
    blob.parent.mkdir()
    with blob.open("wb") as out:
        for _ in range(SIZE // (1024 * 1024)):
            out.write(os.urandom(1024 * 1024))  # incompressible: git stores it as large as it is
    sha = repo.commit("a data dump committed by mistake")
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from reconciler.controller.git import GitFollower\n"
        "git = GitFollower(sys.argv[1], 'main', Path(sys.argv[2]))\n"
        "git.fetch(sys.argv[3])\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "source = git.checkout(sys.argv[3])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert (source.root / 'data' / 'dump.bin').stat().st_size > 0\n"
        "print((after - before) * 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(repo.remote), str(tmp_path / "cache"), sha],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=True,
    )
    grown = int(done.stdout.strip().splitlines()[-1])
    assert grown < SIZE // 4, f"the checkout grew the process by {grown / 2**20:.0f} MiB for a {SIZE // 2**20} MiB file"
