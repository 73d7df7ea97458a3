"""The controller put together: settings (the command's options) -> `build(...)` -> `ControllerApp.run()`.

The one construction point, and where the ports are chosen: the Lease leadership with
`--leader-election` (else `SoleLeader`), Slack when its token or webhook URL is set (else no one), and
each environment's alert records beside its state (`RevisionAlertStore`); tests inject their own.
`run()` serves the probes, metrics and webhook, follows git until
SIGTERM (or SIGINT), then lets the running action finish, releases leadership and returns 0.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import structlog

from reconciler.alerts import merge_alerts
from reconciler.clients.http import listening
from reconciler.controller.config import ControllerConfig, Mode, OwnedEnvironment, SlackSettings, parse_config
from reconciler.controller.git import GitFollower, RevisionSource
from reconciler.controller.http import ControllerServer, Endpoints, parse_listen
from reconciler.controller.loop import Controller, LoopSettings
from reconciler.controller.metrics import ControllerMetrics
from reconciler.controller.ports import AlertRecord, AlertStore, Leadership, MemoryAlertStore, Notifier, SoleLeader
from reconciler.errors import PermanentError, ReconcilerError
from reconciler.service import ProviderFactory, open_alert_store

log = structlog.get_logger("reconciler.controller")


@dataclass(frozen=True)
class ControllerSettings:
    """Everything `reconcile controller` takes (options or RECONCILER_* variables); credentials stay in `environ`."""

    repo: str
    branch: str = "main"
    path: str = "."
    environments: tuple[str, ...] = ()
    config: Path | None = None
    poll_interval: float = 60.0
    drift_interval: float = 300.0
    listen: str = "0.0.0.0:8080"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "reconciler")
    leader_election: bool = False
    lease_namespace: str | None = None
    lease_name: str = "reconciler-leader"
    identity: str | None = None
    kubeconfig: str | None = None
    lease_duration: float = 15.0
    """Seconds a Lease lasts without renewal (client-go's LeaseDuration) before another replica may take it."""
    lease_renew_deadline: float = 10.0
    """Seconds the leader may fail to renew before it stops acting (RenewDeadline; less than the duration)."""
    lease_retry_period: float = 2.0
    """Seconds between attempts to take or renew the Lease (RetryPeriod; the deadline must exceed 1.2 x it)."""
    environ: Mapping[str, str] | None = None
    """Variables for specs and credentials (default: the process environment)."""


@dataclass(frozen=True)
class NotifierWiring:
    """What a notifier (Slack) is built from: the `slack:` settings, its metric, each environment's alert store."""

    slack: SlackSettings
    count_message: Callable[[str, str], None]
    """`reconciler_slack_messages_total{method, result}`: call it once per Slack API call."""
    alert_store_for: Callable[[str], AlertStore]
    environ: Mapping[str, str]
    stop: threading.Event
    """Set when the controller is asked to stop: a notifier's rate-limit wait should end at once."""


def load_config(path: Path | None) -> ControllerConfig:
    if path is None:
        return ControllerConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_config(text, str(path))


def owned_environments(names: tuple[str, ...], config: ControllerConfig) -> tuple[OwnedEnvironment, ...]:
    """`--env` names (their modes from controller.yaml, else apply), else controller.yaml's list, else none
    (every environment in the repository)."""
    if names:
        return tuple(OwnedEnvironment(name=name, mode=config.mode_of(name)) for name in dict.fromkeys(names))
    return config.environments


@dataclass
class ControllerApp:
    controller: Controller
    metrics: ControllerMetrics
    endpoints: Endpoints
    host: str
    port: int
    server: ControllerServer | None = None

    def start_server(self) -> int:
        """Serve probes, metrics and the webhook in the background; the port actually bound."""
        self.server = ControllerServer(self.host, self.port, self.endpoints)
        self.server.start()
        log.info("http.listening", host=self.host, port=self.server.port)
        return self.server.port

    def run(self, *, once: bool = False) -> int:
        """Serve and follow git until SIGTERM/SIGINT (or one sync with `once`); the exit code."""
        if self.server is None and not once:
            self.start_server()
        try:
            with listening(self.metrics.api_request), _shutdown_on_signals(self.controller.shutdown):
                return self.controller.run_once() if once else self.controller.run()
        finally:
            if self.server is not None:
                self.server.stop()


@contextmanager
def _shutdown_on_signals(shutdown: Callable[[str], None]) -> Iterator[None]:
    """SIGTERM and SIGINT ask the loop to stop (the running action finishes, leadership is released)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.getsignal(number) for number in numbers}

    def stop(number: int, _frame: FrameType | None) -> None:
        log.info("controller.stopping", signal=signal.Signals(number).name)
        shutdown(f"stopped by {signal.Signals(number).name}")

    for number in numbers:
        signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def build(
    settings: ControllerSettings,
    *,
    leadership: Leadership | None = None,
    notifier: Notifier | None = None,
    notifier_for: Callable[[NotifierWiring], Notifier] | None = None,
    alert_store_for: Callable[[str], AlertStore] | None = None,
    factories: Mapping[str, ProviderFactory] | None = None,
    rng: random.Random | None = None,
) -> ControllerApp:
    """The controller for `settings`, its ports injected (defaults: one replica, no Slack, alerts in memory).

    `notifier_for` builds the notifier from the wiring (Slack needs its metric and the alert stores);
    `notifier` is a ready one (tests). Raises `SpecError` for a bad controller.yaml, `PermanentError`
    for bad settings.
    """
    environ = dict(os.environ if settings.environ is None else settings.environ)
    config = load_config(settings.config)
    if settings.poll_interval <= 0 or settings.drift_interval <= 0:
        raise PermanentError("--poll-interval and --drift-interval must be more than 0 seconds")
    try:
        host, port = parse_listen(settings.listen)
    except ValueError as exc:
        raise PermanentError(f"--listen: {exc}") from None
    if leadership is None:
        leadership = (
            _leadership(settings, environ) if settings.leader_election else SoleLeader(settings.identity or "sole")
        )
    metrics = ControllerMetrics()
    stores: dict[str, AlertStore] = {}

    revisions: list[Controller] = []  # the controller, once made: its revisions say where each environment keeps state

    def store_for(env: str) -> AlertStore:
        if env not in stores:
            stores[env] = (
                alert_store_for(env) if alert_store_for is not None else RevisionAlertStore(env, revisions, environ)
            )
        return stores[env]

    stop = threading.Event()
    if notifier is None:
        wiring = NotifierWiring(config.slack, metrics.slack_message, store_for, environ, stop)
        notifier = (notifier_for or _slack_notifier)(wiring)
    follower = GitFollower(
        settings.repo,
        settings.branch,
        settings.cache_dir,
        path=settings.path,
        environ=environ,
        on_request=metrics.git_request,
    )
    loop_settings = LoopSettings(
        poll_interval=settings.poll_interval,
        drift_interval=settings.drift_interval,
        environments=owned_environments(settings.environments, config),
        drift=config.drift,
        environ=environ,
        factories=factories,
    )
    controller = Controller(
        follower, loop_settings, leadership, notifier, metrics, rng=rng or random.Random(), stop=stop, records=store_for
    )
    revisions.append(controller)
    endpoints = Endpoints(
        alive=controller.alive,
        ready=controller.ready,
        metrics=metrics.render,
        on_push=controller.wake,
        branch=settings.branch,
        webhook_secret=environ.get("RECONCILER_WEBHOOK_SECRET") or None,
    )
    return ControllerApp(controller, metrics, endpoints, host, port)


def _leadership(settings: ControllerSettings, environ: Mapping[str, str]) -> Leadership:
    """The Lease leadership of --leader-election (imported here: only a replicated controller needs it)."""
    from reconciler.controller.leader import ElectionConfigError, ElectionTiming, lease_leadership, lease_namespace

    try:
        timing = ElectionTiming(settings.lease_duration, settings.lease_renew_deadline, settings.lease_retry_period)
        namespace = settings.lease_namespace or lease_namespace(environ)
        return lease_leadership(settings.kubeconfig, namespace, settings.lease_name, settings.identity, timing)
    except ElectionConfigError as exc:
        raise PermanentError(str(exc)) from None


def _slack_notifier(wiring: NotifierWiring) -> Notifier:
    """Slack when RECONCILER_SLACK_TOKEN (or RECONCILER_SLACK_WEBHOOK_URL) is set, else no one."""
    from reconciler.controller.slack import notifier_from

    return notifier_from(
        wiring.slack, wiring.environ, wiring.alert_store_for, on_message=wiring.count_message, stop=wiring.stop
    )


class RevisionAlertStore:
    """An environment's alert records where its environment file keeps its state (`.reconciler/state/<env>.alerts.json`
    beside the state file, or the `<name>-alerts` ConfigMap with `state.kubernetes`), read through the revision the
    controller last applied there (else the last that validated, else the branch head); in memory until one exists."""

    def __init__(self, env: str, controller: list[Controller], environ: Mapping[str, str]) -> None:
        self.env, self._controller, self._environ = env, controller, environ
        self._memory = MemoryAlertStore()
        self._base: dict[str, AlertRecord] = {}
        """The records as this process last read or wrote them: a save changes only the keys changed since."""

    def _source(self) -> RevisionSource | None:
        if not self._controller:
            return None
        controller = self._controller[0]
        status = controller.statuses.get(self.env)
        revision = (status.applied or status.last_good if status else None) or controller.head
        return controller.follower.checkout(revision) if revision else None

    def load(self) -> dict[str, AlertRecord]:
        try:
            source = self._source()
            if source is not None:
                with open_alert_store(source, self.env, self._environ) as store:
                    self._base = store.load()
                    self._memory.save(self._base)
        except ReconcilerError as exc:
            log.warning("alerts.load_failed", env=self.env, error=str(exc))
        return self._memory.load()

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        self._memory.save(alerts)
        source = self._source()
        if source is None:
            return
        with open_alert_store(source, self.env, self._environ) as store:
            # A store opened now has read nothing, so it would keep every record it finds, dropped ones included
            # (a resolved alert would be replied to again every cycle): merge from what this process last saw.
            store.save(merge_alerts(self._base, alerts, store.load()))
        self._base = dict(alerts)


__all__ = ["ControllerApp", "ControllerSettings", "Mode", "NotifierWiring", "RevisionAlertStore", "build"]
