"""Test helpers shared by the suites: the worked example copied into a temporary project, and a CLI on it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.launch import StandIns

REPO = Path(__file__).resolve().parent.parent


def copy_example(tmp_path: Path) -> Path:
    """A private copy of specs/ and environments/ (tests edit it freely)."""
    root = tmp_path / "project"
    root.mkdir()
    for part in ("specs", "environments"):
        shutil.copytree(REPO / part, root / part)
    return root


@dataclass
class Project:
    root: Path
    standins: StandIns
    environ: dict[str, str] = field(default_factory=dict)
    systems: tuple[str, ...] = ()
    """plan and apply get `--system` for each of these (empty: every configured system)."""

    @property
    def qa(self) -> AirbyteStandIn:
        return self.standins.airbyte["qa"]

    @property
    def prod(self) -> AirbyteStandIn:
        return self.standins.airbyte["prod"]

    def run(self, *args: str, **env: str) -> Result:
        """The CLI on this project, with plan and apply scoped to `systems`."""
        flags = [flag for system in self.systems for flag in ("--system", system)]
        scoped = [*args, *flags] if set(args) & {"plan", "apply"} else list(args)
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
