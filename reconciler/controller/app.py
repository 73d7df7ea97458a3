"""The controller put together: settings (the command's options) -> `build(...)` -> `ControllerApp.run()`.

The one construction point. The ports default to one replica without a cluster or Slack
(`SoleLeader`, `NoNotifier`, `MemoryAlertStore`); the command passes the Lease leadership and the
Slack notifier when configured. `run()` serves the probes, metrics and webhook, follows git until
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

from reconciler.clients.http import listening
from reconciler.controller.config import ControllerConfig, Mode, OwnedEnvironment, SlackSection, parse_config
from reconciler.controller.git import GitFollower
from reconciler.controller.http import ControllerServer, Endpoints, parse_listen
from reconciler.controller.loop import Controller, LoopSettings
from reconciler.controller.metrics import ControllerMetrics
from reconciler.controller.ports import AlertStore, Leadership, MemoryAlertStore, NoNotifier, Notifier, SoleLeader
from reconciler.errors import PermanentError
from reconciler.service import ProviderFactory

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
    environ: Mapping[str, str] | None = None
    """Variables for specs and credentials (default: the process environment)."""


@dataclass(frozen=True)
class NotifierWiring:
    """What a notifier (Slack) is built from: the `slack:` settings, its metric, each environment's alert store."""

    slack: SlackSection
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
        if settings.leader_election:
            raise PermanentError("--leader-election needs the Lease leadership, which this build does not include")
        leadership = SoleLeader(settings.identity or "sole")
    metrics = ControllerMetrics()
    stores: dict[str, AlertStore] = {}

    def store_for(env: str) -> AlertStore:
        if env not in stores:
            stores[env] = alert_store_for(env) if alert_store_for is not None else MemoryAlertStore()
        return stores[env]

    stop = threading.Event()
    if notifier is None:
        wiring = NotifierWiring(config.slack, metrics.slack_message, store_for, environ, stop)
        notifier = notifier_for(wiring) if notifier_for is not None else NoNotifier()
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
        follower, loop_settings, leadership, notifier, metrics, rng=rng or random.Random(), stop=stop
    )
    endpoints = Endpoints(
        alive=controller.alive,
        ready=controller.ready,
        metrics=metrics.render,
        on_push=controller.wake,
        branch=settings.branch,
        webhook_secret=environ.get("RECONCILER_WEBHOOK_SECRET") or None,
    )
    return ControllerApp(controller, metrics, endpoints, host, port)


__all__ = ["ControllerApp", "ControllerSettings", "Mode", "NotifierWiring", "build"]
