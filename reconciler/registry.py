"""The systems reconciler knows, one line each: the loader, schema, service and CLI iterate them.

Each system is a package exposing one `SYSTEM = System(...)` with everything it brings. The
registry names them by module, so it sits at the bottom of the layers (the loader reads it)
while the packages sit above the loader. A plugin adds a system without touching this file: an
entry point in the `reconciler.systems` group, or `RECONCILER_SYSTEMS=pkg.module,...` (module
names whose `SYSTEM` is registered after the built-in ones).

Start-up reads less: `declarations()` is what the CLI needs to build `reconcile --help` (each
system's name, spec kinds and commands, by name and help line). A package that exposes a
`DECLARATION` instead of `SYSTEM` keeps its spec models, loaders and commands out of it: its
`SYSTEM` lives in the module the declaration names, imported by `systems()` on first use (every
built-in system does this; `reconcile --help` imports none of them), or by `system(name)` and
`named(names)` alone: the spec loader imports only the systems an environment configures or whose
spec files (`Declaration.spec_files`) exist. A module exposing `SYSTEM` alone is declared by its `SYSTEM`.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from reconciler.providers.base import Prefetch, Provider
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
class Command:
    """One of a system's own CLI commands, named without importing it: `reconcile --help` lists it from here, and
    the module holding it is imported when it runs or its own `--help` is asked."""

    name: str
    """Its name on the command line (`promote`, or `superset` under a verb)."""
    help: str
    """Its help text (the command takes it from here: the list shows its first sentence, as click shortens it)."""
    target: str
    """Where the click command is: `package.module:attribute`."""
    verb: str | None = None
    """The shared verb it sits under (`pull`, `verify`: `reconcile pull superset`); None: a top-level command."""


@dataclass(frozen=True)
class Declaration:
    """What `reconcile --help` needs of a system, importing none of it: its name, spec kinds and commands."""

    name: str
    """Its `System.name`."""
    system: str
    """The module whose `SYSTEM` is the whole system (imported by `systems()`, on first use)."""
    schema_kinds: tuple[str, ...] = ()
    """The keys of its `System.schemas` (`reconcile schema --kind`)."""
    commands: tuple[Command, ...] = ()
    """Its `System.commands`."""
    spec_files: str | None = None
    """Its `System.spec_files`; None: not declared (the spec loader then imports the system to find out)."""


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
    commands: Sequence[Command] = ()
    """Its own CLI commands, by name (click stays out of this module; the CLI imports each when it runs)."""
    cluster: Callable[[Any], ClusterSettings | None] = lambda _section: None
    """The cluster its section names, where `{secretRef: {kubernetes: ...}}` is read when none is set."""
    prefetch: Callable[[Path, Any, SecretResolver], Prefetch | None] | None = None
    """For a plan: starts its live listings from its validated section alone, before the specs are loaded, for
    its provider's next observe (`providers.base.PrefetchingProvider`); None when it cannot start yet. Never
    used for an apply (it lists under the environment's write lock)."""


@dataclass(frozen=True)
class Invocation:
    """What every command gets from `reconcile`'s own options (click's context object)."""

    root: Path
    debug: bool = False


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ReconcilerError(f"cannot load system module {module_name}: {exc}") from exc


def _system_of(module: Any, module_name: str) -> System:
    system = getattr(module, "SYSTEM", None)
    if system is None:
        raise ReconcilerError(f"cannot load system module {module_name}: it has no SYSTEM")
    if not isinstance(system, System):
        raise ReconcilerError(f"{module_name}.SYSTEM is not a reconciler System")
    return system


def _declaration(module_name: str) -> Declaration:
    module = _import(module_name)
    declared = getattr(module, "DECLARATION", None)
    if declared is not None:
        if not isinstance(declared, Declaration):
            raise ReconcilerError(f"{module_name}.DECLARATION is not a reconciler Declaration")
        return declared
    system = _system_of(module, module_name)
    return Declaration(system.name, module_name, tuple(system.schemas), tuple(system.commands), system.spec_files)


def _entry_points_in(text: str, group: str) -> list[str]:
    """The values of `group`'s entries in an `entry_points.txt` (an INI file: `[group]`, then `name = value`)."""
    values: list[str] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            values.append(line.partition("=")[2].strip())
    return values


def _entry_points(group: str) -> list[str]:
    """The values of the `group` entry points of the distributions installed on `sys.path`.

    What `importlib.metadata.entry_points(group=...)` answers for distributions installed as folders
    (`*.dist-info`, `*.egg-info`; the first of a name on `sys.path` wins), read directly: importing
    `importlib.metadata` and reading every distribution's entry points cost some 50 ms at each start,
    and every command (`--help` too) reads this. Distributions inside zip files on `sys.path` are not searched.
    """
    values: list[str] = []
    seen: set[str] = set()
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip file, or a folder that is gone
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if not dot or suffix not in {"dist-info", "egg-info"}:
                continue
            project = re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower()
            if project in seen:
                continue
            seen.add(project)
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:  # no entry points (or an egg-info file, not a folder)
                continue
            if f"[{group}]" in text:
                values.extend(_entry_points_in(text, group))
    return values


@cache
def _declarations(extra: tuple[str, ...]) -> tuple[Declaration, ...]:
    names = [*BUILTIN, *_entry_points(ENTRY_POINT_GROUP), *extra]
    declared: dict[str, Declaration] = {}
    for module_name in dict.fromkeys(names):
        declaration = _declaration(module_name)
        if declaration.name in declared:
            raise ReconcilerError(f"two systems are named {declaration.name!r} ({module_name})")
        declared[declaration.name] = declaration
    return tuple(declared.values())


@cache
def _load(declaration: Declaration) -> System:
    system = _system_of(_import(declaration.system), declaration.system)
    found = (system.name, tuple(system.schemas), tuple(system.commands), system.spec_files)
    spec_files = system.spec_files if declaration.spec_files is None else declaration.spec_files
    if found != (declaration.name, declaration.schema_kinds, declaration.commands, spec_files):
        raise ReconcilerError(
            f"{declaration.system}.SYSTEM ({system.name}) does not match the declaration of {declaration.name}: "
            "the name, spec kinds, commands and spec files must be the same"
        )
    return system


def _extra() -> tuple[str, ...]:
    return tuple(name.strip() for name in os.environ.get(EXTRA_VARIABLE, "").split(",") if name.strip())


def declarations() -> tuple[Declaration, ...]:
    """The registered systems as `reconcile --help` needs them (no spec model imported), in `systems()`'s order."""
    return _declarations(_extra())


def systems() -> tuple[System, ...]:
    """The registered systems, built-in first, in the order plans show them (every one imported)."""
    return tuple(_load(declaration) for declaration in declarations())


def system(name: str) -> System:
    """One registered system, importing no other."""
    return _load(next(declared for declared in declarations() if declared.name == name))


def named(names: Collection[str]) -> tuple[System, ...]:
    """The registered systems among `names`, in `systems()`'s order, importing no other (an environment's
    configured systems: `named(env.sections)`)."""
    return tuple(_load(declared) for declared in declarations() if declared.name in names)
