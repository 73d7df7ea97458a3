"""The service, step 1: open an environment from a spec source (providers, secrets, state, lock).

Everything that decides is pure (`spec`, `core`); a session wires it to files, secrets, state and
the providers, and `locked` holds the environment's write lock around whatever writes. For a plan
(`prefetch`), each system's listings start as soon as the environment's own file is read, while the
specs load (`start_prefetches`); an apply lists only under its lock. State,
lock and alert records live in files beside each other (`.reconciler/state/<env>.*`), or, with
`state: {kubernetes: ...}`, in the cluster: ConfigMaps `<name>`, `<name>-<n>` and `<name>-alerts`
and the Lease `<name>-lock` (clients/kube/state_store.py, alert_store.py, lease_lock.py), the same
for the CLI and the controller; `alert_store(session)` opens the environment's alert records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import structlog
from pydantic import ValidationError

from reconciler import registry
from reconciler.alerts import AlertStore, FileAlertStore, alerts_path
from reconciler.background import responsive_threads
from reconciler.cancellation import Cancellation
from reconciler.core.events import Event, EventKind, Listener
from reconciler.errors import ApiError, PlanError, ReconcilerError, SecretError
from reconciler.lock import EnvironmentLock, FileLock, LockHolder
from reconciler.providers.base import Observation, Prefetch, PrefetchingProvider, Provider
from reconciler.secrets import (
    FINGERPRINT_KEY_VARIABLE,
    MIN_KEY_FILE_BYTES,
    Fingerprinter,
    SecretResolver,
    load_fingerprint_key,
)
from reconciler.service.source import FolderSource, SpecSource
from reconciler.spec.environment import (
    ClusterSettings,
    EnvironmentFile,
    KubernetesStateSettings,
    environment_model,
    interpolate_tree,
)
from reconciler.spec.loader import Environment, environment_path, kept_environment, load_environments
from reconciler.spec.yamlsource import LocatedMap, YamlSyntaxError, parse_yaml
from reconciler.state import FileStateStore, StateStore

if TYPE_CHECKING:  # the kubernetes library (half a second to import) only when a secret is read from a cluster
    from reconciler.clients.kube.client import KubeClient

log = structlog.get_logger("reconciler.service")

STATE_DIR = ".reconciler"


def _source(source: Path | SpecSource) -> SpecSource:
    return FolderSource(source) if isinstance(source, Path) else source


def load_environment(source: Path | SpecSource, name: str, environ: Mapping[str, str]) -> Environment:
    """Read and validate the specs of one environment (raises `SpecError`)."""
    return load_environments(_source(source).read(), environ, only=name)[name]


def validate(source: Path | SpecSource, environ: Mapping[str, str], only: str | None = None) -> dict[str, Environment]:
    """Offline validation of every (or one) environment."""
    return load_environments(_source(source).read(), environ, only=only)


def early_settings(files: Mapping[str, str], name: str, environ: Mapping[str, str]) -> EnvironmentFile | None:
    """Environment `name`'s own file validated alone (its system sections: endpoints, credentials), for listings
    started before the specs are loaded; None on any problem in it, which the full load reports. When the load
    itself is kept (the controller's next drift check of an unchanged spec), the kept settings, nothing parsed.
    """
    kept = kept_environment(files, environ, name)
    if kept is not None:
        return kept.settings
    path = environment_path(files, name)
    if path is None:
        return None
    try:
        raw = parse_yaml(files[path], path)
    except YamlSyntaxError:
        return None
    if not isinstance(raw, LocatedMap):
        return None
    unresolved: list[tuple[tuple[object, ...], str]] = []
    interpolate_tree(raw, environ, unresolved)
    if unresolved:
        return None
    named = registry.named({key for key in raw if isinstance(key, str)})  # an unknown key fails validation below
    model = environment_model(tuple((system.name, system.section) for system in named))
    try:
        settings = model.model_validate(raw)
    except ValidationError:
        return None
    return settings if settings.environment == name else None


def start_prefetches(
    root: Path, settings: EnvironmentFile, environ: Mapping[str, str], systems: Sequence[str] = ()
) -> dict[str, Prefetch]:
    """Each configured system's plan listings (`registry.System.prefetch`), started from its section alone.

    Secrets come from variables and files only here (a `kubernetes` one waits for the provider's own
    resolver); a system that cannot start is simply observed as usual, which reports any failure."""
    resolver = SecretResolver(environ, base_dir=root)
    started: dict[str, Prefetch] = {}
    configured = {declared.name for declared in registry.declarations() if settings.section(declared.name) is not None}
    for system in registry.named(configured):
        section = settings.section(system.name)
        if system.prefetch is None or section is None or (systems and system.name not in systems):
            continue
        try:
            prefetch = system.prefetch(root, section, resolver)
        except ReconcilerError:
            continue
        if prefetch is not None:
            started[system.name] = prefetch
    return started


ProviderFactory = Callable[[Environment, SecretResolver], Provider | None]
P = TypeVar("P", bound=Provider)


def default_providers(root: Path) -> dict[str, ProviderFactory]:
    """Every registered system, by name, in the order their plans are shown; None where not configured (a system
    is imported only when an environment configures it)."""

    def factory(name: str) -> ProviderFactory:
        def connect(env: Environment, resolver: SecretResolver) -> Provider | None:
            return registry.system(name).connect(root, env, resolver) if name in env.sections else None

        return connect

    return {declared.name: factory(declared.name) for declared in registry.declarations()}


def secret_cluster(env: Environment) -> tuple[str, ClusterSettings] | None:
    """The cluster `{secretRef: {kubernetes: ...}}` reads: the environment's `secrets.kubernetes`, else the
    first cluster a configured system names (the workloads cluster), as (who names it, settings)."""
    if env.settings.secrets.kubernetes is not None:
        return "secrets", env.settings.secrets.kubernetes
    for system in registry.named(env.sections):
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
            from reconciler.clients.kube.client import cluster_client

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
    """Each system's own observation from the last plan made in this session (a saved plan's: the fresh plan
    that checked it); applying hands each system its own (`ApplyContext.observation`), providers keep none."""
    state_cluster: KubeClient | None = None
    """The cluster holding the state, lock and alert records (`state: {kubernetes: ...}`), else None (files)."""

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()
        if self.state_cluster is not None:
            self.state_cluster.close()


def state_path(root: Path, env: Environment) -> Path:
    configured = env.settings.state.path
    path = Path(configured) if configured else Path(STATE_DIR) / "state" / f"{env.name}.json"
    return path if path.is_absolute() else root / path


def lock_path(state_file: Path) -> Path:
    """The environment's lock file, beside its state: `.reconciler/state/qa.json.lock`."""
    return state_file.with_name(f"{state_file.name}.lock")


def state_name(env: Environment, settings: KubernetesStateSettings) -> str:
    """The state ConfigMap's name (the prefix of its shards, alert records and lock Lease)."""
    return settings.name or f"reconciler-state-{env.name}"


def cluster_fingerprint_key(environ: Mapping[str, str], kube: KubeClient, settings: KubernetesStateSettings) -> bytes:
    """The fingerprint key of state kept in the cluster: the Secret `fingerprintKey` names, else
    RECONCILER_FINGERPRINT_KEY; never a key file (the CLI and the controller would each make their own)."""
    ref = settings.fingerprint_key
    if ref is None:
        configured = environ.get(FINGERPRINT_KEY_VARIABLE)
        if configured is None or not configured.strip():
            found = "is not set" if configured is None else "is empty"
            raise SecretError(
                f"state.kubernetes needs a fingerprint key every run shares, and {FINGERPRINT_KEY_VARIABLE} {found}: "
                "set state.kubernetes.fingerprintKey ({secret: NAME, key: KEY}, a Secret in namespace "
                f"{settings.namespace}) or {FINGERPRINT_KEY_VARIABLE}"
            )
        return configured.encode()
    from reconciler.clients.kube.client import KubeError

    where = f"secret {settings.namespace}/{ref.secret} key {ref.key!r}"
    try:
        key = kube.read_secret_key(settings.namespace, ref.secret, ref.key).strip().encode()
    except KubeError as exc:
        if exc.retryable:
            raise ApiError("kubernetes", f"cannot read the fingerprint key ({where}): {exc}", transient=True) from None
        raise SecretError(f"cannot read the fingerprint key ({where}): {exc}") from None
    if len(key) < MIN_KEY_FILE_BYTES:
        raise SecretError(
            f"the fingerprint key ({where}) holds {len(key)} characters; at least {MIN_KEY_FILE_BYTES} needed"
        )
    return key


def alert_store(session: Session) -> AlertStore:
    """The environment's alert records, beside its state: ConfigMap `<name>-alerts` with state in the cluster,
    else `.reconciler/state/<env>.alerts.json` beside the state file. Use it while the session is open (it shares
    the session's cluster client); `open_alert_store` opens one on its own."""
    settings = session.env.settings.state.kubernetes
    if settings is not None and session.state_cluster is not None:
        from reconciler.clients.kube.alert_store import KubeAlertStore

        return KubeAlertStore(
            session.state_cluster, settings.namespace, state_name(session.env, settings), session.env.name
        )
    return FileAlertStore(alerts_path(state_path(session.root, session.env), session.env.name), session.env.name)


@contextmanager
def open_alert_store(
    source: Path | SpecSource, env_name: str, environ: Mapping[str, str] | None = None
) -> Iterator[AlertStore]:
    """The alert records of `env_name` without connecting its systems (the controller's notifier between applies);
    a cluster client, when the state is in the cluster, is closed on exit."""
    variables = dict(os.environ if environ is None else environ)
    spec_source = _source(source)
    env = load_environment(spec_source, env_name, variables)
    settings = env.settings.state.kubernetes
    if settings is None:
        yield FileAlertStore(alerts_path(state_path(spec_source.root, env), env.name), env.name)
        return
    from reconciler.clients.kube.alert_store import KubeAlertStore
    from reconciler.clients.kube.client import cluster_client

    kube = cluster_client(spec_source.root, settings.cluster(), "state")
    try:
        yield KubeAlertStore(kube, settings.namespace, state_name(env, settings), env.name)
    finally:
        kube.close()


@contextmanager
def open_session(
    source: Path | SpecSource,
    env_name: str,
    environ: Mapping[str, str] | None = None,
    *,
    factories: Mapping[str, ProviderFactory] | None = None,
    state: StateStore | None = None,
    lock: EnvironmentLock | None = None,
    systems: Sequence[str] = (),
    cancellation: Cancellation | None = None,
    prefetch: bool = False,
) -> Iterator[Session]:
    """Load the environment and connect its providers (only `systems`, when given); closes them on exit.

    `cancellation` is set when the environment's lock is lost while held (a Lease that could not be renewed).
    With `prefetch` (a plan, never an apply: an apply lists under the lock) and the registered systems' own
    providers, each system that can starts its listings as soon as the environment's own file is read, while
    the specs load (`start_prefetches`); a spec error, or any other failure before observe, abandons them unread.
    Every session runs with `responsive_threads`: the reads on other threads (these, a system's own, such as
    Superset's listings and exports, and apply's workers) answer while the main thread loads specs, reads
    bundles and journals.
    """
    variables = dict(os.environ if environ is None else environ)
    spec_source = _source(source)
    root = spec_source.root
    files = spec_source.read()
    settings = early_settings(files, env_name, variables) if prefetch and factories is None else None
    started = start_prefetches(root, settings, variables, systems) if settings is not None else {}
    try:
        with (
            responsive_threads(),
            _connected(spec_source, files, env_name, variables, factories, state, lock, systems, cancellation) as (
                session
            ),
        ):
            for name, provider in session.providers.items():
                if name in started and isinstance(provider, PrefetchingProvider):
                    provider.adopt(started.pop(name))
            yield session
    finally:
        for early in started.values():
            early.close()


@contextmanager
def _connected(
    spec_source: SpecSource,
    files: Mapping[str, str],
    env_name: str,
    variables: dict[str, str],
    factories: Mapping[str, ProviderFactory] | None,
    state: StateStore | None,
    lock: EnvironmentLock | None,
    systems: Sequence[str],
    cancellation: Cancellation | None,
) -> Iterator[Session]:
    """`open_session` once the files are read: load and validate them, then state, lock and providers."""
    root = spec_source.root
    env = load_environments(files, variables, only=env_name)[env_name]
    resolver = SecretResolver(variables, base_dir=root, kube_reader=_kube_secret_reader(root, env))
    in_cluster = env.settings.state.kubernetes
    kube: KubeClient | None = None
    if in_cluster is not None:  # the kubernetes library (half a second to import) only for state in a cluster
        from reconciler.clients.kube.client import cluster_client
        from reconciler.clients.kube.lease_lock import KubeLeaseLock, lock_lease_name
        from reconciler.clients.kube.state_store import KubeStateStore

        kube = cluster_client(root, in_cluster.cluster(), "state")
        name = state_name(env, in_cluster)
        try:
            key = cluster_fingerprint_key(variables, kube, in_cluster)
        except BaseException:
            kube.close()
            raise
        store: StateStore = state or KubeStateStore(kube, in_cluster.namespace, name, env.name)
        env_lock: EnvironmentLock = lock or KubeLeaseLock(
            kube,
            in_cluster.namespace,
            lock_lease_name(name),
            env.name,
            duration_s=in_cluster.lock_duration_seconds,
            cancellation=cancellation,
        )
    else:
        path = state_path(root, env)
        key = load_fingerprint_key(variables, root / STATE_DIR / "keys" / f"{env.name}.fingerprint.key")
        store = state or FileStateStore(path, env.name)
        env_lock = lock or FileLock(lock_path(path), env.name)
    providers: dict[str, Provider] = {}
    session = Session(root, env, providers, store, resolver, Fingerprinter(resolver, key), env_lock, state_cluster=kube)
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
    source: Path | SpecSource,
    env_name: str,
    environ: Mapping[str, str] | None,
    system: str,
    connect: Callable[[Path, Environment, SecretResolver], P],
) -> Iterator[tuple[Session, P]]:
    """A session holding only `system`'s provider, made by its own typed `connect` (for a system's commands)."""
    root = _source(source).root
    made: list[P] = []

    def factory(env: Environment, resolver: SecretResolver) -> Provider | None:
        if system not in env.sections:
            return None
        made.append(connect(root, env, resolver))
        return made[-1]

    with open_session(source, env_name, environ, factories={system: factory}) as session:
        if not made:
            raise ReconcilerError(f"environment {env_name} has no {system} section")
        yield session, made[0]


@contextmanager
def locked(session: Session, command: str, listener: Listener = lambda _event: None) -> Iterator[None]:
    """Hold the environment's write lock for `command` (raises `LockedError` when another run holds it).

    Every command that writes live systems or state plans and writes inside it, so two runs
    never both create what neither has yet. A stale lock taken over is a `LOCK_TAKEN_OVER` event.
    """
    stale = session.lock.acquire(LockHolder.current(command))
    if stale is not None:
        message = f"took over the lock of environment {session.env.name} left by {stale.describe()}, which is gone"
        log.warning("lock.taken_over", env=session.env.name, previous=stale.describe())
        listener(Event(EventKind.LOCK_TAKEN_OVER, session.env.name, message))
    try:
        yield
    finally:
        session.lock.release()
