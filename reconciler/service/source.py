"""Where an environment's specs come from: a folder today, a git revision for the controller later."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.spec.files import read_spec_tree


class SpecSource(Protocol):
    """The spec texts of one project, and the directory its relative paths (state, keys, kubeconfig) resolve in."""

    @property
    def root(self) -> Path: ...

    def read(self) -> dict[str, str]:
        """Every spec and environment file, `{relative POSIX path: text}` (raises `SpecError`)."""
        ...


@dataclass(frozen=True)
class FolderSource:
    """The specs as they are on disk under `root` (`specs/`, `environments/`)."""

    root: Path

    def read(self) -> dict[str, str]:
        return read_spec_tree(self.root)
