"""Fixtures: a private copy of the example project, pointed at the stand-ins; plan/apply scoped to Airbyte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        yield Project(root, standins, standins.environment(), systems=("airbyte",))
