"""Spec loading, step 2: shared specs + one environment file -> a validated `Environment`.

Pure: it takes the files' texts (`{relative path: text}`) and the variables for `${VAR}`,
and either returns the environment's desired state or raises `SpecError` listing every
problem as `file:line: field: message`. Reading the files from disk is `spec.files`. Each
registered system loads its own section (`System.load`); this module validates the file
around them and collects the problems. Only the systems the loaded environment files name, or
whose spec files exist, are imported (an Airbyte-only environment imports no Superset model).
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler import registry
from reconciler.errors import SpecError, SpecProblem
from reconciler.spec import memory
from reconciler.spec.environment import EnvironmentFile, environment_model, interpolate_tree
from reconciler.spec.yamlsource import (
    PARSED,
    PARSED_CACHE_CHARS,
    LocatedList,
    LocatedMap,
    YamlSyntaxError,
    copy_tree,
    locate,
    one_line,
)

ENVIRONMENT_DIR = "environments/"

Model = TypeVar("Model", bound=BaseModel)
Selection = TypeVar("Selection")


@dataclass(frozen=True)
class Environment:
    """One environment's desired state, validated: each configured system's selection by name."""

    name: str
    file: str
    settings: EnvironmentFile
    sections: Mapping[str, object] = field(default_factory=dict)

    def section(self, system: str, kind: type[Selection]) -> Selection | None:
        """The selection of `system` (None when the environment does not configure it)."""
        selection = self.sections.get(system)
        if selection is None:
            return None
        if not isinstance(selection, kind):
            raise TypeError(f"{system} selection is a {type(selection).__name__}, not a {kind.__name__}")
        return selection

    def __getattr__(self, name: str) -> Any:
        """`env.airbyte` and the like: a registered system's selection, or None."""
        if name.startswith("_") or name == "sections":
            raise AttributeError(name)
        if name in {declared.name for declared in registry.declarations()}:
            return self.sections.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@dataclass(frozen=True)
class SectionInput:
    """What a system's loader gets for one environment: its validated section and the raw trees around it."""

    environment: str
    raw: LocatedMap
    """The environment file's tree (locations for problems)."""
    settings: Any
    """The validated section (`System.section`)."""
    specs: Any
    """What `System.read_specs` made of the shared spec files (read once per load)."""
    environments: Mapping[str, Any]
    """Every environment file's tree by name (for sections naming another environment)."""
    variables: Mapping[str, str]
    problems: Problems


class Problems:
    """Collects problems as `file:line: field: message`."""

    def __init__(self) -> None:
        self.items: list[SpecProblem] = []

    def at(self, tree: Any, path: Iterable[Any], message: str, *, field: str | None = None) -> None:
        steps = [step for step in path]
        file, line = locate(tree, steps)
        label = field if field is not None else ".".join(str(step) for step in steps)
        self.items.append(SpecProblem(file, line, one_line(label), message))

    def from_validation(self, tree: Any, prefix: tuple[Any, ...], error: ValidationError) -> None:
        for detail in error.errors():
            loc = tuple(step for step in detail["loc"] if not _is_union_tag(step))
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "extra_forbidden":
                message = "unknown field"
            self.at(tree, (*prefix, *loc), message)


def _is_union_tag(step: Any) -> bool:
    return isinstance(step, str) and step.startswith(("function-", "literal["))


def validate_model(model: type[Model], tree: Any, prefix: tuple[Any, ...], problems: Problems) -> Model | None:
    try:
        return model.model_validate(tree)
    except ValidationError as error:
        problems.from_validation(tree, prefix, error)
        return None


def parse_all(files: Mapping[str, str], problems: Problems) -> dict[str, Any]:
    """Every file's tree; a file that does not parse, or holds a single value, is reported and left out.

    Files read before with the same text come from the process's cache of parsed files.
    """
    parsed: dict[str, Any] = {}
    for path, text in sorted(files.items()):
        try:
            document = PARSED.parse(text, path)
        except YamlSyntaxError as exc:
            problems.items.append(exc.problem)
            continue
        if document is not None and not isinstance(document, LocatedMap | LocatedList):
            problems.items.append(SpecProblem(path, 1, "", f"expected a mapping, not {type(document).__name__}"))
            continue
        parsed[path] = document
    return parsed


def environment_path(files: Mapping[str, str], name: str) -> str | None:
    """The file of environment `name` among `files` (`environments/<name>.yaml`, else `.yml`), or None."""
    return next((p for p in (f"{ENVIRONMENT_DIR}{name}.yaml", f"{ENVIRONMENT_DIR}{name}.yml") if p in files), None)


def environment_names(files: Mapping[str, str]) -> list[str]:
    """Names of the environments, from the file names under environments/."""
    return sorted(
        path.removeprefix(ENVIRONMENT_DIR).rsplit(".", 1)[0]
        for path in files
        if path.startswith(ENVIRONMENT_DIR) and path.endswith((".yaml", ".yml"))
    )


class LoadedCache:
    """Validated environments by everything a load reads: each file's path and text, the variables, the
    environment asked for and the systems (those given, or the registered ones). A long-running process (the
    controller plans again every few minutes, and validates each commit it syncs) then loads an unchanged spec
    once: a drift check at 5,000 connections skips some 0.6 s of parsing and validation.

    What is kept is shared, not copied: nothing after the loader changes an environment. The test suite
    checks it on every reuse (`verify_hits`: each environment taken from the cache is compared with a fresh
    load of the same inputs). A load that fails is never kept: its problems are reported every time.
    """

    def __init__(self, limit: int = 64, limit_chars: int = PARSED_CACHE_CHARS, per_environment: int = 2) -> None:
        self.limit = limit
        """How many loads are kept (one per environment a controller follows, and one for all of them)."""
        self.limit_chars = limit_chars
        """How much spec text the kept loads may stand for together (some 12 bytes of objects a character)."""
        self.per_environment = per_environment
        """How many loads of one environment (or of all of them) are kept: the controller's applied revision and
        the one it is syncing to. Older revisions go as soon as a newer one is loaded, not when the bound on
        text is reached (at 2,000 connections each stale revision held some 11 MiB)."""
        self.verify_hits = False
        """Tests: compare each reused result with a fresh load, and fail naming what changed it."""
        self._kept: OrderedDict[bytes, tuple[dict[str, Environment], int, str | None]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # the controller's threads, the tests' threads

    @staticmethod
    def key(
        files: Mapping[str, str],
        variables: Mapping[str, str],
        only: str | None,
        systems: Sequence[registry.System] | None,
    ) -> bytes:
        """A digest of every input of a load (the variables' values too: `${VAR}` fills the specs in; and, unless
        `systems` are given, the registered ones: `RECONCILER_SYSTEMS` is read from the process's environment)."""
        digest = hashlib.sha256()

        def add(text: str) -> None:
            data = text.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)

        for group in (sorted(files.items()), sorted(variables.items())):
            add(str(len(group)))
            for name, text in group:
                add(name)
                add(text)
        if systems is None:
            add(repr((only, None, [(declared.name, declared.system) for declared in registry.declarations()])))
        else:
            add(repr((only, [system.name for system in systems])))
        return digest.digest()

    def get(self, key: bytes) -> dict[str, Environment] | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            self._kept.move_to_end(key)
            return dict(kept[0])

    def put(self, key: bytes, environments: Mapping[str, Environment], chars: int, only: str | None) -> None:
        """Keep a load of `chars` characters of spec text (of environment `only`, None: of all of them), dropping
        the least recently used past any bound."""
        with self._lock:
            if chars > self.limit_chars or key in self._kept:
                return
            self._kept[key] = (dict(environments), chars, only)
            self._chars += chars
            same = [other for other, (_, _, which) in self._kept.items() if which == only]
            for other in same[: max(0, len(same) - self.per_environment)]:
                self._chars -= self._kept.pop(other)[1]
            while len(self._kept) > self.limit or self._chars > self.limit_chars:
                _, (_, dropped, _) = self._kept.popitem(last=False)
                self._chars -= dropped

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._chars = 0


LOADED = LoadedCache()
"""The process's cache of loaded environments (`load_environments` reads through it)."""


def kept_environment(files: Mapping[str, str], variables: Mapping[str, str], name: str) -> Environment | None:
    """Environment `name` as `load_environments(files, variables, only=name)` returns it, when that load is kept
    in the process's cache; None otherwise (nothing is loaded)."""
    kept = LOADED.get(LOADED.key(files, variables, name, None))
    return None if kept is None else kept.get(name)


def load_environments(
    files: Mapping[str, str],
    variables: Mapping[str, str],
    only: str | None = None,
    systems: Sequence[registry.System] | None = None,
) -> dict[str, Environment]:
    """Validate the specs and every (or one) environment; raise `SpecError` with all problems.

    A load identical to one made before comes from the process's cache (`LoadedCache`). The cyclic
    garbage collector is paused while it runs (a spec of 5,000 connections is some 300,000 objects
    without a cycle among them); then `memory.loaded()` applies the process's policy.
    """
    key = LOADED.key(files, variables, only, systems)
    kept = LOADED.get(key)
    if kept is not None:
        if LOADED.verify_hits:
            fresh = _load_paused(files, variables, only, systems)
            changed = sorted(name for name in fresh if kept.get(name) != fresh[name])
            if changed:
                raise AssertionError(f"kept environments {changed} differ from a fresh load: something changed them")
        return kept
    environments = _load_paused(files, variables, only, systems)
    memory.loaded()
    LOADED.put(key, environments, sum(len(text) for text in files.values()), only)
    return environments


def _load_paused(
    files: Mapping[str, str],
    variables: Mapping[str, str],
    only: str | None,
    systems: Sequence[registry.System] | None,
) -> dict[str, Environment]:
    """`_load_environments` with the cyclic collector paused."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        environments = _load_environments(files, variables, only, systems)
    finally:
        if collecting:
            gc.enable()
    return environments


def _systems_to_load(
    files: Mapping[str, str], parsed: Mapping[str, Any], only: str | None
) -> tuple[registry.System, ...]:
    """The registered systems this load needs, importing no other: those a loaded environment file names (as a
    top-level key) and those whose spec files exist (a system that does not declare where they are, too)."""
    named: set[str] = set()
    for path, tree in parsed.items():
        loaded = only is None or path.removeprefix(ENVIRONMENT_DIR).rsplit(".", 1)[0] == only
        if path.startswith(ENVIRONMENT_DIR) and loaded and isinstance(tree, LocatedMap):
            named.update(key for key in tree if isinstance(key, str))
    for declared in registry.declarations():
        if declared.spec_files is None or any(path.startswith(declared.spec_files) for path in files):
            named.add(declared.name)
    return registry.named(named)


def _load_environments(
    files: Mapping[str, str],
    variables: Mapping[str, str],
    only: str | None,
    systems: Sequence[registry.System] | None,
) -> dict[str, Environment]:
    problems = Problems()
    parsed = parse_all(files, problems)
    known_systems = _systems_to_load(files, parsed, only) if systems is None else tuple(systems)
    specs: dict[str, Any] = {
        system.name: system.read_specs(files, parsed, problems)
        for system in known_systems
        if system.spec_files and any(path.startswith(system.spec_files) for path in files)
    }
    names = environment_names(files)
    if only is not None and only not in names:
        known = ", ".join(names) or "none"
        raise SpecError(
            [SpecProblem(f"{ENVIRONMENT_DIR}{only}.yaml", None, "", f"no such environment (known: {known})")]
        )
    model = environment_model(tuple((system.name, system.section) for system in known_systems))
    trees = {
        other: parsed.get(f"{ENVIRONMENT_DIR}{other}.yaml", parsed.get(f"{ENVIRONMENT_DIR}{other}.yml"))
        for other in names
    }
    environments: dict[str, Environment] = {}
    for name in names:
        if only is not None and name != only:
            continue
        path = environment_path(files, name)
        assert path is not None, name  # the names are those of the files
        raw = parsed.get(path)
        if raw is None:
            if path in parsed:
                problems.items.append(SpecProblem(path, 1, "", "the file is empty"))
            continue
        if not isinstance(raw, LocatedMap):
            problems.items.append(SpecProblem(path, 1, "", "expected a mapping"))
            continue
        if only is None:  # another environment may read this file's tree as written (`trees`): fill in a copy
            raw = copy_tree(raw)
        unresolved: list[tuple[tuple[Any, ...], str]] = []
        interpolate_tree(raw, variables, unresolved)
        for where, message in unresolved:
            problems.at(raw, where, message)
        settings = validate_model(model, raw, (), problems)
        if settings is None:
            continue
        if settings.environment != name:
            problems.at(raw, ("environment",), f"says {settings.environment!r} but the file is named {name!r}")
        sections: dict[str, object] = {}
        for system in known_systems:
            section = settings.section(system.name)
            if section is None:
                continue
            if system.name not in specs:
                specs[system.name] = system.read_specs(files, parsed, problems)
            selection = system.load(SectionInput(name, raw, section, specs[system.name], trees, variables, problems))
            if selection is not None:
                sections[system.name] = selection
        environments[name] = Environment(name=name, file=path, settings=settings, sections=sections)
    if problems.items:
        raise SpecError(problems.items)
    return environments
