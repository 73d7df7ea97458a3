"""Shared by the Slack tests: a stand-in Slack, a virtual clock, drift findings and a notifier wired to both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from reconciler.controller.ports import DriftFinding, MemoryAlertStore
from reconciler.controller.slack import SlackNotifier, SlackSettings
from reconciler.controller.slack_api import BotChannel, WebhookChannel
from reconciler.core.diff import FieldChange
from reconciler.sandbox.slack_server import DEFAULT_TOKEN, SlackStandIn


class VirtualClock:
    """Time that passes only when the notifier sleeps: pacing is checked without waiting for it."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


@dataclass
class Stores:
    """One MemoryAlertStore per environment, kept across notifier objects (a restart keeps the stores)."""

    by_env: dict[str, MemoryAlertStore] = field(default_factory=dict)

    def __call__(self, environment: str) -> MemoryAlertStore:
        return self.by_env.setdefault(environment, MemoryAlertStore())


@dataclass
class Rig:
    slack: SlackStandIn
    clock: VirtualClock
    stores: Stores
    counted: list[tuple[str, str, float]] = field(default_factory=list)
    """Every `on_message(method, result)` with the virtual time it came at."""

    def on_message(self, method: str, result: str) -> None:
        self.counted.append((method, result, self.clock.now()))

    def notifier(self, token: str = DEFAULT_TOKEN, **settings: object) -> SlackNotifier:
        """A new notifier object (as after a restart) on the same stores and the same Slack."""
        options = {"channel": "#data-platform", **settings}
        channel = BotChannel(
            token, str(options["channel"]), base_url=self.slack.api_url, clock=self.clock, on_message=self.on_message
        )
        return SlackNotifier(channel, self.stores, SlackSettings.model_validate(options))

    def webhook_notifier(self, url: str | None = None, **settings: object) -> SlackNotifier:
        channel = WebhookChannel(url or self.slack.webhook_url, clock=self.clock, on_message=self.on_message)
        return SlackNotifier(channel, self.stores, SlackSettings.model_validate(settings))


@pytest.fixture
def rig() -> Iterator[Rig]:
    with SlackStandIn() as slack:
        yield Rig(slack, VirtualClock(), Stores())


def finding(
    name: str = "pg-to-s3",
    *,
    env: str = "qa",
    system: str = "airbyte",
    kind: str = "connection",
    changes: tuple[FieldChange, ...] | None = None,
    policy: str = "alert",
    outcome: str = "reported only",
    revision: str = "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345",
) -> DriftFinding:
    if changes is None:
        changes = (FieldChange(("schedule", "cronExpression"), "0 4 * * *", "0 2 * * *"),)
    return DriftFinding(env, system, kind, name, "update", changes, policy, outcome, revision)
