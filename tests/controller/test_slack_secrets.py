"""What must never reach Slack, a log line or an alert record: secret values, the token, a channel-wide ping."""

from __future__ import annotations

import json

import structlog

from reconciler.controller.ports import MemoryAlertStore
from reconciler.controller.slack import SlackSettings, notifier_from
from reconciler.core.diff import FieldChange
from reconciler.sandbox.slack_server import DEFAULT_TOKEN
from tests.controller.slack_helpers import Rig, finding

CANARY = "canary-Sup3rS3cret-7f1d"


def _everything_sent(rig: Rig) -> bytes:
    return b"\n".join(request.body for request in rig.slack.requests)


def test_a_secret_value_in_a_change_never_reaches_slack_a_log_or_a_record(rig: Rig) -> None:
    secret = FieldChange(("configuration", "password"), CANARY, CANARY + "-new", secret=True)
    plain = FieldChange(("configuration", "host"), "db-old", "db-new")
    with structlog.testing.capture_logs() as logs:
        notifier = rig.notifier()
        notifier.drift("qa", [finding(changes=(plain, secret))])
        notifier.drift("qa", [finding(changes=(secret,))])
        notifier.drift("qa", [])

    body = _everything_sent(rig)
    assert b"configuration.password" in body and b"changed (secret" in body and b"db-new" in body
    assert CANARY.encode() not in body
    assert CANARY not in json.dumps(logs, default=str)
    assert len(rig.slack.calls("chat.update")) == 2  # the secret's change still edits the message


def test_the_token_never_reaches_a_log_a_record_or_a_message(rig: Rig) -> None:
    stores = {"qa": MemoryAlertStore()}
    environ = {"RECONCILER_SLACK_TOKEN": DEFAULT_TOKEN, "RECONCILER_SLACK_API_URL": rig.slack.api_url}
    settings = {"channel": "#data-platform"}
    with structlog.testing.capture_logs() as logs:
        notifier = notifier_from(SlackSettings.model_validate(settings), environ, stores.__getitem__, clock=rig.clock)
        notifier.drift("qa", [finding()])
        notifier.apply_failed("qa", "abc", "airbyte: 503")
    assert len(rig.slack.messages()) == 2
    assert DEFAULT_TOKEN not in json.dumps(logs, default=str)
    assert DEFAULT_TOKEN not in repr(stores["qa"].load())
    assert DEFAULT_TOKEN.encode() not in _everything_sent(rig)


def test_a_bad_token_is_a_clear_logged_error_and_the_loop_carries_on(rig: Rig) -> None:
    bad = "xoxb-revoked-4242424242"
    with structlog.testing.capture_logs() as logs:
        notifier = rig.notifier(token=bad)
        problem = notifier.check()
        notifier.drift("qa", [finding()])
        notifier.apply_failed("qa", "abc", "boom")
        notifier.drift("qa", [finding()])

    assert problem == "slack: auth.test failed: invalid_auth (check RECONCILER_SLACK_TOKEN; its value is not shown)"
    assert rig.notifier().check() is None and rig.webhook_notifier().check() is None
    failures = [entry for entry in logs if entry["event"] == "slack.failed"]
    assert [entry["error"] for entry in failures] == ["invalid_auth"] * 3
    assert all(entry["log_level"] == "error" and entry["env"] == "qa" for entry in failures)
    assert bad not in json.dumps(logs, default=str)
    assert rig.stores("qa").load() == {} and rig.slack.messages() == []


def test_a_mention_or_link_in_a_name_or_value_pings_no_one(rig: Rig) -> None:
    hostile = finding(
        "<!channel> deploy",
        changes=(FieldChange(("name",), "<https://evil.example|click me>", "ok `x` &"),),
        outcome="re-apply failed: <!here>",
    )
    rig.notifier().drift("qa", [hostile])

    [message] = rig.slack.messages()
    parsed = [message.text, *_mrkdwn(message.blocks)]  # what Slack parses for mentions and links (not plain_text)
    assert not [text for text in parsed if "<!channel>" in text or "<!here>" in text or "<https://evil" in text]
    assert "&lt;!channel&gt;" in message.text


def _mrkdwn(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["text"])] if node.get("type") == "mrkdwn" else []
        return found + [text for value in node.values() for text in _mrkdwn(value)]
    if isinstance(node, list):
        return [text for value in node for text in _mrkdwn(value)]
    return []


def test_long_values_and_many_fields_fit_slacks_block_limits(rig: Rig) -> None:
    changes = tuple(FieldChange(("streams", str(n), "x" * 300), "v" * 5000, "w" * 5000) for n in range(200))
    rig.notifier().drift("qa", [finding("wide", changes=changes)])
    rig.notifier().apply_failed("qa", "abc", "E" * 50_000)
    rig.notifier().invalid_commit("qa", "abc", [f"specs/a.yaml:{n}: " + "p" * 400 for n in range(500)])

    assert [r.error for r in rig.slack.requests if not r.ok] == []
    drift = rig.slack.messages()[0]
    assert "more field(s)" in str(drift.blocks) and "v" * 100 not in str(drift.blocks)
