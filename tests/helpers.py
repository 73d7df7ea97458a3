"""Test helpers shared by the suites: the worked example copied into a temporary project."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copy_example(tmp_path: Path) -> Path:
    """A private copy of specs/ and environments/ (tests edit it freely)."""
    root = tmp_path / "project"
    root.mkdir()
    for part in ("specs", "environments"):
        shutil.copytree(REPO / part, root / part)
    return root
