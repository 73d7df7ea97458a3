"""Degraded mode: an incoming webhook posts but cannot edit, so each transition is one new post, deduplicated."""

from __future__ import annotations

import json

import structlog

from reconciler.controller.ports import AppliedCommit
from reconciler.core.diff import FieldChange
from tests.controller.slack_helpers import Rig, finding


def test_webhook_posts_only_new_changed_and_resolved_transitions(rig: Rig) -> None:
    changed = finding(changes=(FieldChange(("schedule", "cronExpression"), "0 7 * * *", "0 2 * * *"),))
    with structlog.testing.capture_logs() as logs:
        notifier = rig.webhook_notifier()
        for findings in ([finding()], [finding()], [changed], [changed], [], []):
            notifier.drift("qa", findings)
        rig.webhook_notifier().drift("qa", [finding("orders")])  # a restart: still one log line per notifier

    texts = [m.text for m in rig.slack.messages()]
    assert [t.split(":")[0] for t in texts] == ["Drift in qa", "Drift changed in qa", "Resolved", "Drift in qa"]
    assert "0 7 * * *" in str(rig.slack.messages()[1].blocks)
    assert rig.slack.calls("chat.update", ok=None) == [] and rig.slack.calls("chat.postMessage", ok=None) == []
    assert [e["event"] for e in logs].count("slack.degraded") == 2
    assert rig.stores("qa").load()["drift/qa/airbyte/connection/orders"].ts == ""
    assert rig.slack.webhook_url.split("/services/")[1] not in json.dumps(logs, default=str)


def test_webhook_failure_and_applied_resolution_are_posts(rig: Rig) -> None:
    notifier = rig.webhook_notifier(notifyApplied=True)
    notifier.apply_failed("qa", "aaaa1111", "airbyte: 503")
    notifier.apply_failed("qa", "aaaa1111", "airbyte: 503")
    notifier.applied(AppliedCommit("qa", "bbbb2222", created=0, updated=1, deleted=0))

    texts = [m.text for m in rig.slack.messages()]
    assert len(texts) == 3
    assert texts[0].startswith("Apply failed") and texts[1].startswith("Resolved") and "Applied" in texts[2]


def test_webhook_storm_is_waited_out_and_a_revoked_webhook_is_logged(rig: Rig) -> None:
    rig.slack.storm(2, retry_after=3)
    notifier = rig.webhook_notifier()
    notifier.drift("qa", [finding(), finding("orders")])
    assert len(rig.slack.messages()) == 2 and len(rig.slack.calls("webhook")) == 2
    assert sum(rig.clock.sleeps) >= 6

    revoked = rig.webhook_notifier(url=rig.slack.webhook_url + "-revoked")
    with structlog.testing.capture_logs() as logs:
        revoked.drift("qa", [finding("payments")])
    assert [e["error"] for e in logs if e["event"] == "slack.failed"] == ["no_service"]


def test_a_new_commit_leaving_the_drift_as_it_was_is_no_news(rig: Rig) -> None:
    webhook = rig.webhook_notifier()
    webhook.drift("qa", [finding(revision="aaaa1111")])
    webhook.drift("qa", [finding(revision="bbbb2222")])
    assert len(rig.slack.messages()) == 1

    bot = rig.notifier()
    bot.drift("prod", [finding(env="prod", revision="aaaa1111")])
    bot.drift("prod", [finding(env="prod", revision="bbbb2222")])  # a bot edits the revision shown, silently
    assert len(rig.slack.calls("chat.postMessage")) == 1 and len(rig.slack.calls("chat.update")) == 1
