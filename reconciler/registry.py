"""The systems reconciler knows, one line each: the loader, schema, service and CLI iterate them.

Each system is a package exposing one `SYSTEM = System(...)` with everything it brings. The
registry names them by module, so it sits at the bottom of the layers (the loader reads it)
while the packages sit above the loader. A plugin adds a system without touching this file: an
entry point in the `reconciler.systems` group, or `RECONCILER_SYSTEMS=pkg.module,...` (module
names whose `SYSTEM` is registered after the built-in ones).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.providers.base import Provider
    from reconciler.secrets import SecretResolver
    from reconciler.spec.environment import ClusterSettings
    from reconciler.spec.loader import Environment, Problems, SectionInput

BUILTIN = (
    "reconciler.systems.airbyte",
    "reconciler.systems.workloads",
    "reconciler.systems.superset",
)
EXTRA_VARIABLE = "RECONCILER_SYSTEMS"
ENTRY_POINT_GROUP = "reconciler.systems"

Row = tuple[str, str, str | None, str | None]
"""One diff-env row: (what, name, left, right)."""


@dataclass(frozen=True)
class System:
    """Everything one system brings; the fields are plain functions so this module imports no system."""

    name: str
    """Its key in environment files and resource keys (`airbyte`, `superset`, ...)."""
    section: type[BaseModel]
    """The model of its environment-file section (`<name>:`)."""
    load: Callable[[SectionInput], object]
    """Its validated selection for one environment (problems go to `SectionInput.problems`)."""
    connect: Callable[[Path, Environment, SecretResolver], Provider]
    """Its provider for an environment that has its section (clients connect on first use or here)."""
    read_specs: Callable[[Mapping[str, str], Mapping[str, Any], Problems], Any] = lambda _texts, _parsed, _p: None
    """Its shared spec files (texts and parsed trees by path) read once per load, for `load`."""
    spec_files: str = ""
    """Where its spec files are (a folder or file prefix): when any exists, they are read (and their problems
    reported) even if no environment configures the system; otherwise only for an environment that does."""
    schemas: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """Its spec file kinds for `reconcile schema`."""
    summary: Callable[[Any], str] = lambda _selection: ""
    """Its part of `reconcile validate`'s line, from its selection."""
    warnings: Callable[[Any], Sequence[str]] = lambda _selection: ()
    """What `reconcile validate` warns about in its selection (valid, but risky: `file:line: field: message`)."""
    diff_rows: Callable[[Environment, Environment], list[Row]] = lambda _left, _right: []
    """Its rows of `reconcile diff-env` (offline, from the two environments' selections)."""
    commands: Callable[[], Sequence[Any]] = tuple
    """Its own click commands, imported when the CLI starts (click stays out of this module)."""
    cluster: Callable[[Any], ClusterSettings | None] = lambda _section: None
    """The cluster its section names, where `{secretRef: {kubernetes: ...}}` is read when none is set."""


@dataclass(frozen=True)
class Invocation:
    """What every command gets from `reconcile`'s own options (click's context object)."""

    root: Path
    debug: bool = False


def _load(module_name: str) -> System:
    try:
        system = importlib.import_module(module_name).SYSTEM
    except (ImportError, AttributeError) as exc:
        raise ReconcilerError(f"cannot load system module {module_name}: {exc}") from exc
    if not isinstance(system, System):
        raise ReconcilerError(f"{module_name}.SYSTEM is not a reconciler System")
    return system


@cache
def _systems(extra: tuple[str, ...]) -> tuple[System, ...]:
    names = [*BUILTIN, *(ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)), *extra]
    loaded: dict[str, System] = {}
    for module_name in dict.fromkeys(names):
        system = _load(module_name)
        if system.name in loaded:
            raise ReconcilerError(f"two systems are named {system.name!r} ({module_name})")
        loaded[system.name] = system
    return tuple(loaded.values())


def systems() -> tuple[System, ...]:
    """The registered systems, built-in first, in the order plans show them."""
    extra = tuple(name.strip() for name in os.environ.get(EXTRA_VARIABLE, "").split(",") if name.strip())
    return _systems(extra)


def system(name: str) -> System:
    return next(s for s in systems() if s.name == name)
