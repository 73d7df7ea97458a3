"""Fixtures: a private copy of the example project, pointed at Airbyte stand-ins, and a CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.launch import StandIns, running_standins
from tests.helpers import copy_example


@dataclass
class Project:
    root: Path
    standins: StandIns
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def qa(self) -> AirbyteStandIn:
        return self.standins.airbyte["qa"]

    @property
    def prod(self) -> AirbyteStandIn:
        return self.standins.airbyte["prod"]

    def run(self, *args: str, **env: str) -> Result:
        """The CLI on this project; plan and apply are scoped to the Airbyte system (`--system airbyte`)."""
        scoped = [*args, "--system", "airbyte"] if set(args) & {"plan", "apply"} else list(args)
        return CliRunner().invoke(
            main, ["--root", str(self.root), *scoped], env={**self.environ, **env}, catch_exceptions=False
        )

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def state_text(self, env: str = "qa") -> str:
        return (self.root / ".reconciler" / "state" / f"{env}.json").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        yield Project(root, standins, standins.environment())
