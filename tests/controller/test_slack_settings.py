"""controller.yaml's `slack:` section and which notifier the environment asks for."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler.controller.ports import MemoryAlertStore, NoNotifier
from reconciler.controller.slack import SlackNotifier, SlackSettings, notifier_from
from reconciler.errors import PermanentError
from reconciler.sandbox.slack_server import DEFAULT_TOKEN
from tests.controller.slack_helpers import Rig, finding


def _stores(environment: str) -> MemoryAlertStore:
    return MemoryAlertStore()


def test_settings_take_the_contracts_names_and_refuse_unknown_keys() -> None:
    settings = SlackSettings.model_validate(
        {"channel": "#data-platform", "notifyApplied": True, "maxMessagesPerCycle": 5}
    )
    assert (settings.channel, settings.notify_applied, settings.max_messages_per_cycle) == ("#data-platform", True, 5)
    assert SlackSettings().max_messages_per_cycle == 20 and SlackSettings().notify_applied is False
    for bad in ({"chanel": "#x"}, {"maxMessagesPerCycle": 0}, {"channel": "data platform"}, {"notifyApplied": "sure"}):
        with pytest.raises(ValidationError):
            SlackSettings.model_validate(bad)


def test_the_environment_picks_bot_webhook_or_no_notifier(rig: Rig) -> None:
    settings = SlackSettings(channel="#data-platform")
    bot = {"RECONCILER_SLACK_TOKEN": DEFAULT_TOKEN, "RECONCILER_SLACK_API_URL": rig.slack.api_url.rstrip("/")}
    webhook = {"RECONCILER_SLACK_WEBHOOK_URL": rig.slack.webhook_url}

    assert isinstance(notifier_from(settings, {}, _stores), NoNotifier)
    assert isinstance(notifier_from(None, {"RECONCILER_SLACK_TOKEN": " "}, _stores), NoNotifier)
    both = notifier_from(settings, {**bot, **webhook}, rig.stores, clock=rig.clock)
    assert isinstance(both, SlackNotifier)
    both.drift("qa", [finding()])
    assert len(rig.slack.calls("chat.postMessage")) == 1 and rig.slack.calls("webhook") == []

    counted: list[tuple[str, str]] = []
    only_webhook = notifier_from(None, webhook, rig.stores, clock=rig.clock, on_message=lambda *c: counted.append(c))
    only_webhook.drift("prod", [finding(env="prod")])
    assert counted == [("webhook", "ok")] and len(rig.slack.calls("webhook")) == 1


def test_a_token_without_a_channel_or_a_bad_webhook_url_refuses_to_start() -> None:
    with pytest.raises(PermanentError, match=r"slack\.channel") as info:
        notifier_from(SlackSettings(), {"RECONCILER_SLACK_TOKEN": DEFAULT_TOKEN}, _stores)
    assert DEFAULT_TOKEN not in str(info.value)
    with pytest.raises(PermanentError, match="not an http") as info:
        notifier_from(None, {"RECONCILER_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T/B/s3cr3t"}, _stores)
    assert "s3cr3t" not in str(info.value)
