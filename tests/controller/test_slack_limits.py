"""The notifier under Slack's limits: 429 storms, 1 post per second, Tier 3 edits, a cap on new messages per cycle."""

from __future__ import annotations

import itertools
import threading

import structlog

from reconciler.controller.slack import SlackSettings, notifier_from
from reconciler.controller.slack_api import MAX_RATE_LIMIT_WAITS
from reconciler.core.diff import FieldChange
from reconciler.sandbox.slack_server import DEFAULT_TOKEN
from tests.controller.slack_helpers import Rig, finding


def _times(rig: Rig, method: str, result: str = "ok") -> list[float]:
    return [at for name, outcome, at in rig.counted if name == method and outcome == result]


def test_a_429_storm_loses_no_message_and_sends_none_twice(rig: Rig) -> None:
    rig.slack.storm(3, retry_after=7)
    rig.notifier().drift("qa", [finding(f"conn-{n}") for n in range(5)])

    posted = rig.slack.calls("chat.postMessage")
    assert len(posted) == 5 and len(rig.slack.messages()) == 5
    assert sorted(m.text.split(": ")[1] for m in rig.slack.messages()) == [
        f"airbyte/connection/conn-{n}" for n in range(5)
    ]
    assert [r.status for r in rig.slack.calls("chat.postMessage", ok=False)] == [429, 429, 429]
    limited, ok = _times(rig, "chat.postMessage", "ratelimited"), _times(rig, "chat.postMessage")
    assert ok[0] - limited[-1] >= 7  # Retry-After honoured before the next try
    assert len(rig.stores("qa").load()) == 5


def test_a_storm_longer_than_the_retries_defers_to_the_next_cycle(rig: Rig) -> None:
    notifier = rig.notifier()
    findings = [finding(f"conn-{n}") for n in range(3)]
    rig.slack.storm(MAX_RATE_LIMIT_WAITS + 3)
    with structlog.testing.capture_logs() as logs:
        notifier.drift("qa", findings)  # gives up after the retries: logged, not raised

    assert rig.slack.messages() == []
    assert [e["error"] for e in logs if e["event"] == "slack.failed"] == ["ratelimited"]
    notifier.drift("qa", findings)
    notifier.drift("qa", findings)
    assert len(rig.slack.messages()) == 3 and len(rig.slack.calls("chat.postMessage")) == 3


def test_a_retry_after_too_long_to_wait_fails_the_cycle_at_once(rig: Rig) -> None:
    rig.slack.storm(1, retry_after=3600)
    notifier = rig.notifier()
    notifier.drift("qa", [finding()])

    assert rig.slack.messages() == [] and max(rig.clock.sleeps, default=0) < 3600
    notifier.drift("qa", [finding()])
    assert len(rig.slack.messages()) == 1


def test_new_messages_are_paced_to_one_per_second_per_channel(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding(f"conn-{n}") for n in range(8)])
    notifier.drift("prod", [finding(f"conn-{n}", env="prod") for n in range(4)])

    times = _times(rig, "chat.postMessage")
    assert len(times) == 12
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times))


def test_edits_have_their_own_budget_of_about_fifty_a_minute(rig: Rig) -> None:
    notifier = rig.notifier(maxMessagesPerCycle=100)
    notifier.drift("qa", [finding(f"conn-{n}") for n in range(70)])
    changed = (FieldChange(("schedule", "cronExpression"), "0 9 * * *", "0 2 * * *"),)
    notifier.drift("qa", [finding(f"conn-{n}", changes=changed) for n in range(70)])

    updates = _times(rig, "chat.update")
    assert len(updates) == 70 and len(rig.slack.messages()) == 70
    assert all(updates[i + 55] - updates[i] >= 59.9 for i in range(len(updates) - 55))
    assert updates[0] - _times(rig, "chat.postMessage")[-1] < 1.0  # not waiting on the bucket of new messages


def test_sixty_drifted_resources_with_a_limit_of_twenty_post_twenty_and_one_summary(rig: Rig) -> None:
    notifier = rig.notifier(maxMessagesPerCycle=20)
    findings = [finding(f"conn-{n:02d}") for n in range(60)]
    notifier.drift("qa", findings)

    messages = rig.slack.messages()
    assert len(messages) == 21
    assert "and 40 more drifted resource(s) in qa" in messages[-1].text

    notifier.drift("qa", findings)  # the next cycles post the rest, 20 at a time; the summary is edited
    assert len(rig.slack.messages()) == 41
    assert "and 20 more" in rig.slack.messages()[20].text
    notifier.drift("qa", findings)
    notifier.drift("qa", findings)

    messages = rig.slack.messages()
    drift = [m for m in messages if m.text.startswith("Drift")]
    assert len(messages) == 61 and len({m.text for m in drift}) == 60
    assert "has its own message now" in messages[20].text
    assert "overflow/qa" not in rig.stores("qa").load()


def test_resolving_many_at_once_edits_all_and_replies_within_the_budget(rig: Rig) -> None:
    notifier = rig.notifier(maxMessagesPerCycle=5)
    findings = [finding(f"conn-{n}") for n in range(5)] + [finding(f"other-{n}") for n in range(3)]
    notifier.drift("qa", findings[:5])
    notifier.drift("qa", findings)  # three more new
    posts_before = len(rig.slack.calls("chat.postMessage"))

    notifier.drift("qa", findings[5:])  # five gone at once, budget 5
    notifier.drift("qa", findings[5:])

    gone = [m for m in rig.slack.messages() if "conn-" in m.text]
    assert all("Resolved" in m.text for m in gone) and all(len(rig.slack.thread(m.ts)) == 1 for m in gone)
    assert len(rig.slack.calls("chat.postMessage")) == posts_before + 5


def test_a_post_whose_answer_was_lost_is_found_again_not_posted_twice(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding("first")])
    rig.slack.lose_responses(1)  # Slack posts the next message, and its answer never arrives
    notifier.drift("qa", [finding("first"), finding("second")])
    notifier.drift("qa", [finding("first"), finding("second")])

    assert len(rig.slack.messages()) == 2 and len(rig.slack.calls("chat.postMessage")) == 2
    second = rig.slack.messages()[1]
    assert rig.stores("qa").load()["drift/qa/airbyte/connection/second"].ts == second.ts
    assert len(rig.slack.calls("conversations.history")) == 1


def test_shutdown_cuts_a_rate_limit_wait_short(rig: Rig) -> None:
    stop = threading.Event()
    stop.set()
    environ = {"RECONCILER_SLACK_TOKEN": DEFAULT_TOKEN, "RECONCILER_SLACK_API_URL": rig.slack.api_url}
    notifier = notifier_from(SlackSettings(channel="#data-platform"), environ, rig.stores, stop=stop)
    rig.slack.storm(1, retry_after=60)
    with structlog.testing.capture_logs() as logs:
        notifier.drift("qa", [finding()])

    assert [e["event"] for e in logs if e["event"].startswith("slack.")] == ["slack.stopped"]
    assert rig.slack.messages() == [] and rig.stores("qa").load() == {}
