"""The reconcile loop's I/O shell: load specs -> build providers -> observe -> plan -> apply.

Everything that decides is pure (`spec`, `core`); this module wires it to files, secrets,
state and the providers, and reports progress through callbacks so the CLI (or the
controller) renders it. A dry run is just "stop after the plan".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from reconciler import registry
from reconciler.clients.kube.client import KubeClient, cluster_client
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, ActionKind, Plan, PlanInputs, build_plan, changed_since
from reconciler.core.saved_plan import saved_plan_differences
from reconciler.errors import ApplyError, PlanError, ReconcilerError
from reconciler.lock import EnvironmentLock, FileLock, LockHolder
from reconciler.providers.base import ApplyContext, Observation, Provider
from reconciler.secrets import Fingerprinter, SecretResolver, load_fingerprint_key
from reconciler.spec.environment import ClusterSettings
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import Environment, load_environments
from reconciler.spec.secrets import parse_secret_label
from reconciler.state import FileStateStore, StateStore

STATE_DIR = ".reconciler"


def load_environment(root: Path, name: str, environ: Mapping[str, str]) -> Environment:
    """Read and validate the specs of one environment (raises `SpecError`)."""
    return load_environments(read_spec_tree(root), environ, only=name)[name]


def validate(root: Path, environ: Mapping[str, str], only: str | None = None) -> dict[str, Environment]:
    """Offline validation of every (or one) environment."""
    return load_environments(read_spec_tree(root), environ, only=only)


ProviderFactory = Callable[[Environment, SecretResolver], Provider | None]
P = TypeVar("P", bound=Provider)


def default_providers(root: Path) -> dict[str, ProviderFactory]:
    """Every registered system, by name, in the order their plans are shown; None where not configured."""

    def factory(system: registry.System) -> ProviderFactory:
        def connect(env: Environment, resolver: SecretResolver) -> Provider | None:
            return system.connect(root, env, resolver) if system.name in env.sections else None

        return connect

    return {system.name: factory(system) for system in registry.systems()}


def secret_cluster(env: Environment) -> tuple[str, ClusterSettings] | None:
    """The cluster `{secretRef: {kubernetes: ...}}` reads: the environment's `secrets.kubernetes`, else the
    first cluster a configured system names (the workloads cluster), as (who names it, settings)."""
    if env.settings.secrets.kubernetes is not None:
        return "secrets", env.settings.secrets.kubernetes
    for system in registry.systems():
        section = env.settings.section(system.name)
        cluster = system.cluster(section) if section is not None else None
        if cluster is not None:
            return system.name, cluster
    return None


def _kube_secret_reader(root: Path, env: Environment) -> Callable[[str, str, str], str] | None:
    """Reads `{secretRef: {kubernetes: ...}}` from the environment's secret cluster, connecting on first use."""
    found = secret_cluster(env)
    if found is None:
        return None
    owner, settings = found
    clients: list[KubeClient] = []

    def read(namespace: str, name: str, key: str) -> str:
        if not clients:
            clients.append(cluster_client(root, settings, owner))
        return clients[0].read_secret_key(namespace, name, key)

    return read


@dataclass
class Session:
    """One environment opened for planning and applying."""

    root: Path
    env: Environment
    providers: dict[str, Provider]
    state: StateStore
    resolver: SecretResolver
    fingerprinter: Fingerprinter
    lock: EnvironmentLock
    observations: dict[str, Observation] = field(default_factory=dict)
    """Each provider's own observation from the last plan made, for applying that plan (providers keep none)."""

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()


def state_path(root: Path, env: Environment) -> Path:
    configured = env.settings.state.path
    path = Path(configured) if configured else Path(STATE_DIR) / "state" / f"{env.name}.json"
    return path if path.is_absolute() else root / path


def lock_path(state_file: Path) -> Path:
    """The environment's lock file, beside its state: `.reconciler/state/qa.json.lock`."""
    return state_file.with_name(f"{state_file.name}.lock")


@contextmanager
def open_session(
    root: Path,
    env_name: str,
    environ: Mapping[str, str] | None = None,
    *,
    factories: Mapping[str, ProviderFactory] | None = None,
    state: StateStore | None = None,
    lock: EnvironmentLock | None = None,
    systems: Sequence[str] = (),
) -> Iterator[Session]:
    """Load the environment and connect its providers (only `systems`, when given); closes them on exit."""
    variables = dict(os.environ if environ is None else environ)
    env = load_environment(root, env_name, variables)
    resolver = SecretResolver(variables, base_dir=root, kube_reader=_kube_secret_reader(root, env))
    path = state_path(root, env)
    key = load_fingerprint_key(variables, root / STATE_DIR / "keys" / f"{env.name}.fingerprint.key")
    providers: dict[str, Provider] = {}
    session = Session(
        root,
        env,
        providers,
        state or FileStateStore(path, env.name),
        resolver,
        Fingerprinter(resolver, key),
        lock or FileLock(lock_path(path), env.name),
    )
    try:
        known = factories if factories is not None else default_providers(root)
        unknown = sorted(set(systems) - set(known))
        if unknown:
            raise PlanError(f"unknown system {', '.join(unknown)} (known: {', '.join(known)})")
        for name, factory in known.items():
            if systems and name not in systems:
                continue  # not even connected: its credentials and endpoints are not needed
            provider = factory(env, resolver)
            if provider is not None:
                providers[provider.system] = provider
        missing = sorted(set(systems) - set(providers))
        if missing:
            raise PlanError(f"{', '.join(missing)} is not configured in environment {env.name}")
        yield session
    finally:
        session.close()


@contextmanager
def open_provider(
    root: Path,
    env_name: str,
    environ: Mapping[str, str] | None,
    system: str,
    connect: Callable[[Path, Environment, SecretResolver], P],
) -> Iterator[tuple[Session, P]]:
    """A session holding only `system`'s provider, made by its own typed `connect` (for a system's commands)."""
    made: list[P] = []

    def factory(env: Environment, resolver: SecretResolver) -> Provider | None:
        if system not in env.sections:
            return None
        made.append(connect(root, env, resolver))
        return made[-1]

    with open_session(root, env_name, environ, factories={system: factory}) as session:
        if not made:
            raise ReconcilerError(f"environment {env_name} has no {system} section")
        yield session, made[0]


@contextmanager
def locked(session: Session, command: str, warn: Callable[[str], None] = lambda _m: None) -> Iterator[None]:
    """Hold the environment's write lock for `command` (raises `LockedError` when another run holds it).

    Every command that writes live systems or state plans and writes inside it, so two runs
    never both create what neither has yet.
    """
    stale = session.lock.acquire(LockHolder.current(command))
    if stale is not None:
        warn(f"took over the lock of environment {session.env.name} left by {stale.describe()}, which is gone")
    try:
        yield
    finally:
        session.lock.release()


def desired_state(session: Session) -> list[DesiredResource]:
    desired: list[DesiredResource] = []
    for provider in session.providers.values():
        desired += provider.desired(session.fingerprinter)
    return desired


def observe(
    session: Session, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
) -> Observation:
    live: dict[ResourceKey, LiveResource] = {}
    depends: dict[ResourceKey, Sequence[ResourceKey]] = {}
    warnings: list[str] = []
    unmanaged: dict[ResourceKey, tuple[str, ...]] = {}
    for system, provider in session.providers.items():
        mine = [resource for resource in desired if resource.key.system == system]
        owned = {key: record for key, record in records.items() if key.system == system}
        observation = provider.observe(mine, owned)
        session.observations[system] = observation
        live.update(observation.live)
        depends.update(observation.depends)
        warnings += observation.warnings
        unmanaged.update(observation.unmanaged_dependents)
    return Observation(live, depends, tuple(warnings), unmanaged)


def make_plan(session: Session, *, allow_mass_delete: bool = False) -> Plan:
    """Observe the live systems and plan; reads only."""
    records = session.state.load()
    desired = desired_state(session)
    observation = observe(session, desired, records)
    prune = frozenset(system for system, provider in session.providers.items() if provider.prune)
    return build_plan(
        PlanInputs(
            environment=session.env.name,
            desired=desired,
            live=observation.live,
            records={k: v for k, v in records.items() if k.system in session.providers},
            prune=prune,
            live_depends=observation.depends,
            observe_warnings=observation.warnings,
            unmanaged_dependents=observation.unmanaged_dependents,
            mass_delete_ratio=session.env.settings.state.mass_delete_ratio,
            allow_mass_delete=allow_mass_delete,
            systems=tuple(session.providers),
        )
    )


def check_saved_plan(session: Session, saved: Plan) -> Plan:
    """The plan to run for a saved one: a fresh plan identical to it, or `PlanError` naming what differs.

    Refused when the environment, the live state, a secret, the specs or the plan file itself
    changed since it was made (an edited id, desired state, or an action added or removed).
    """
    if saved.environment != session.env.name:
        raise PlanError(f"the plan is for environment {saved.environment!r}, not {session.env.name!r}")
    if saved.systems and set(saved.systems) != set(session.providers):
        flags = " ".join(f"--system {name}" for name in saved.systems)
        raise PlanError(f"the plan covers {', '.join(saved.systems)}; apply it with {flags}")
    current = make_plan(session, allow_mass_delete=True)
    if current.observed_digest != saved.observed_digest:
        changed = [str(key) for key in changed_since(saved, current)][:5]
        raise PlanError(
            "the live state changed since this plan was made"
            + (f" ({', '.join(changed)})" if changed else "")
            + "; run `reconcile plan` again and review the new plan"
        )
    differences = saved_plan_differences(saved, current)
    if differences:
        more = f" (and {len(differences) - 1} more difference(s))" if len(differences) > 1 else ""
        raise PlanError(
            f"the saved plan is not what a plan made now would do: {differences[0]}{more}; the plan file, "
            "the specs or a secret changed since it was made. Run `reconcile plan` again and review the new plan"
        )
    return current


@dataclass(frozen=True)
class ApplyEvent:
    """Progress of one action: `started`, `done`, `failed`, or a `progress` line."""

    action: Action
    status: str
    message: str = ""


@dataclass
class ApplyReport:
    done: list[Action] = field(default_factory=list)
    failed: Action | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None


def apply_plan(session: Session, plan: Plan, on_event: Callable[[ApplyEvent], None] = lambda _e: None) -> ApplyReport:
    """Carry out the plan in order, recording each success at once; stops at the first failure."""
    records = session.state.load()
    for key in plan.adopted:
        records[key] = OwnershipRecord(key, plan.live_ids[key], records.get(key, OwnershipRecord(key, "")).fingerprints)
    for key in plan.forgotten:
        records.pop(key, None)
    if plan.adopted or plan.forgotten:
        session.state.save(records)
    ids = dict(plan.live_ids)
    report = ApplyReport()
    for action in plan.actions:
        provider = session.providers.get(action.key.system)
        if provider is None:
            raise PlanError(
                f"the plan has {action.key} but {action.key.system} is not configured in {plan.environment}"
            )

        def progress(message: str, action: Action = action) -> None:
            on_event(ApplyEvent(action, "progress", message))

        seen = session.observations.get(action.key.system, Observation({}))
        context = ApplyContext(ids, lambda label: session.resolver.value(parse_secret_label(label)), progress, seen)
        on_event(ApplyEvent(action, "started"))
        try:
            outcome = provider.apply(action, context)
        except ReconcilerError as exc:
            report.failed, report.error = action, str(exc)
            on_event(ApplyEvent(action, "failed", str(exc)))
            break
        if action.kind == ActionKind.DELETE or outcome.id is None:
            records.pop(action.key, None)
            ids.pop(action.key, None)
        else:
            records[action.key] = OwnershipRecord(action.key, outcome.id, dict(outcome.fingerprints))
            ids[action.key] = outcome.id
        session.state.record(action.key, records.get(action.key))
        report.done.append(action)
        report.notes += outcome.notes
        on_event(ApplyEvent(action, "done", "; ".join(outcome.notes)))
    session.state.compact()  # this run's journal folded into the state file (a crash leaves it for the next load)
    return report


def raise_for(report: ApplyReport) -> None:
    if report.failed is not None:
        raise ApplyError(
            f"{report.failed.kind.value} {report.failed.key} failed: {report.error}\n"
            f"{len(report.done)} action(s) before it were applied and recorded; fix the cause and run apply again"
        )
