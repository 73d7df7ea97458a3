"""The Slack notifier when Slack (or a proxy in front of it) answers oddly after doing the work: an HTML 5xx page,
`ok: true` without a `ts`. A message Slack did post is never posted again on the next cycle."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from reconciler.controller.ports import AlertRecord, MemoryAlertStore
from reconciler.core.diff import FieldChange
from reconciler.errors import TemporaryError
from reconciler.sandbox.http_util import Response, json_response
from reconciler.sandbox.slack_server import DEFAULT_TOKEN
from tests.controller.slack_helpers import Rig, finding, rig

__all__ = ["rig"]  # fixture

BAD_GATEWAY = Response(502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "text/html")


def test_a_gateway_error_page_after_slack_posted_does_not_post_it_again(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding("first")])  # the channel's id is known from here on
    rig.slack.answer_oddly(BAD_GATEWAY)  # Slack posts "second"; the proxy answers 502 with its HTML page
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            notifier.drift("qa", [finding("first"), finding("second")])

    assert len(rig.slack.messages()) == 2, [m.text for m in rig.slack.messages()]
    second = rig.slack.messages()[1]
    assert rig.stores("qa").load()["drift/qa/airbyte/connection/second"].ts == second.ts
    assert not [e for e in logs if e["event"] == "slack.unexpected"]


def test_ok_without_a_ts_finds_the_message_so_it_is_edited_and_resolved_later(rig: Rig) -> None:
    """slack-sdk reads a missing `ts` as None: it was stored as the text "None", so the message could never be
    edited or resolved, and a change posted a second message beside it."""
    notifier = rig.notifier()
    rig.slack.answer_oddly(json_response(200, {"ok": True, "channel": "C0DATAPLAT"}))
    notifier.drift("qa", [finding()])
    (message,) = rig.slack.messages()
    assert rig.stores("qa").load()["drift/qa/airbyte/connection/pg-to-s3"].ts == message.ts

    changed = (FieldChange(("schedule", "cronExpression"), "0 4 * * *", "0 3 * * *"),)
    notifier.drift("qa", [finding(changes=changed)])
    notifier.drift("qa", [])
    (message,) = rig.slack.messages()
    assert message.edits == 2 and "Resolved" in message.text
    assert len(rig.slack.thread(message.ts)) == 1


def test_after_a_restart_a_lost_answer_is_found_though_the_channel_is_configured_by_name(rig: Rig) -> None:
    """conversations.history wants the channel's id; a restarted notifier knows `#data-platform` only by name
    until its first successful post, so the search was skipped and the lost post made again."""
    rig.notifier().drift("qa", [finding("first")])
    restarted = rig.notifier()  # a new process, or a new leader: channel given as a name
    rig.slack.lose_responses(1)  # Slack posts "second"; the answer never arrives
    for _ in range(3):
        restarted.drift("qa", [finding("first"), finding("second")])

    assert len(rig.slack.messages()) == 2, [m.text for m in rig.slack.messages()]
    assert len(rig.slack.calls("chat.postMessage")) == 2


class CrashAfterPost(MemoryAlertStore):
    """Once armed, the process dies right after Slack took a post, before its record is saved: the first save
    that would record a new message's ts never happens (and a restart loses what the notifier held in memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = self.crashed = False

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        before = self.load()
        new_ts = [
            key for key, record in alerts.items() if record.ts and record.ts != getattr(before.get(key), "ts", "")
        ]
        if self.armed and new_ts:
            self.armed, self.crashed = False, True
            raise TemporaryError("killed between the post and the save")
        super().save(alerts)


def test_a_crash_between_the_post_and_its_record_does_not_post_it_twice(rig: Rig) -> None:
    rig.stores.by_env["qa"] = store = CrashAfterPost()
    rig.notifier().drift("qa", [finding("first")])  # an earlier post: the channel's id is on record
    store.armed = True
    rig.notifier().drift("qa", [finding("first"), finding()])  # posted; the record of its ts dies with the process
    assert store.crashed and len(rig.slack.messages()) == 2
    restarted = rig.notifier()
    for _ in range(3):
        restarted.drift("qa", [finding("first"), finding()])

    assert len(rig.slack.messages()) == 2, [m.text for m in rig.slack.messages()]
    message = rig.slack.messages()[1]
    assert store.load()["drift/qa/airbyte/connection/pg-to-s3"].ts == message.ts
    restarted.drift("qa", [finding("first")])
    assert "Resolved" in rig.slack.messages()[1].text


def test_a_crash_before_slack_took_the_post_posts_it_after_the_restart(rig: Rig) -> None:
    rig.notifier().drift("qa", [finding("first")])
    rig.slack.storm(10)  # Slack refuses (429) until the process dies: nothing was posted
    rig.notifier().drift("qa", [finding("first"), finding("second")])
    restarted = rig.notifier()
    restarted.drift("qa", [finding("first"), finding("second")])
    restarted.drift("qa", [finding("first"), finding("second")])
    assert sorted(m.text.split(":")[1].strip() for m in rig.slack.messages()) == [
        "airbyte/connection/first",
        "airbyte/connection/second",
    ]


def test_an_error_page_that_echoes_the_request_never_puts_the_token_in_a_log(rig: Rig) -> None:
    """A proxy's debug page with the request's headers (Authorization: Bearer xoxb-...) as the answer."""
    page = f"<html><pre>502 upstream\nAuthorization: Bearer {DEFAULT_TOKEN}\n{'x' * 5000}</pre></html>"
    rig.slack.answer_oddly(Response(502, page.encode(), "text/html"))
    with structlog.testing.capture_logs() as logs:
        rig.notifier().drift("qa", [finding()])
    failed = [e for e in logs if e["event"] == "slack.failed"]
    assert failed and all(DEFAULT_TOKEN not in str(e) for e in logs)
    assert all(len(str(e["error"])) <= 200 for e in failed)


def test_a_resolved_reply_whose_answer_was_lost_is_not_replied_twice(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding()])
    (message,) = rig.slack.messages()
    rig.slack.lose_responses(1, "chat.postMessage")  # the thread reply "resolved" lands, its answer is lost
    for _ in range(3):
        notifier.drift("qa", [])

    assert "Resolved" in rig.slack.messages()[0].text
    assert len(rig.slack.thread(message.ts)) == 1, [m.text for m in rig.slack.thread(message.ts)]
    assert rig.stores("qa").load() == {}
