"""The Slack stand-in answers slack-sdk as real Slack does (ok:false with HTTP 200, 429 with Retry-After)."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from reconciler.sandbox.slack_server import DEFAULT_TOKEN, SlackStandIn


@pytest.fixture
def slack() -> SlackStandIn:
    with SlackStandIn(tokens={DEFAULT_TOKEN: "U0BOT", "xoxb-other": "U0OTHER"}) as standin:
        yield standin


def _error(call: object) -> tuple[int, str]:
    with pytest.raises(SlackApiError) as info:
        call()  # type: ignore[operator]
    return info.value.response.status_code, info.value.response["error"]


def test_post_update_and_thread_read_back(slack: SlackStandIn) -> None:
    client = WebClient(DEFAULT_TOKEN, base_url=slack.api_url)
    assert client.auth_test()["user_id"] == "U0BOT"
    posted = client.chat_postMessage(channel="#data-platform", text="hello", blocks=[{"type": "divider"}])
    assert posted["channel"] == "C0DATAPLAT" and posted["message"]["text"] == "hello"
    client.chat_postMessage(channel="C0DATAPLAT", text="a reply", thread_ts=posted["ts"])
    updated = client.chat_update(channel="C0DATAPLAT", ts=posted["ts"], text="edited")
    assert updated["text"] == "edited"

    replies = client.conversations_replies(channel="C0DATAPLAT", ts=posted["ts"])
    assert [m["text"] for m in replies["messages"]] == ["edited", "a reply"]
    assert replies["messages"][0]["reply_count"] == 1


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_errors_come_as_slack_gives_them(slack: SlackStandIn) -> None:
    client = WebClient(DEFAULT_TOKEN, base_url=slack.api_url)
    ts = client.chat_postMessage(channel="data-platform", text="mine")["ts"]
    other = WebClient("xoxb-other", base_url=slack.api_url)

    assert _error(lambda: WebClient(base_url=slack.api_url).auth_test()) == (200, "not_authed")
    assert _error(lambda: WebClient("xoxb-nope", base_url=slack.api_url).auth_test()) == (200, "invalid_auth")
    assert _error(lambda: client.chat_postMessage(channel="#nowhere", text="x")) == (200, "channel_not_found")
    assert _error(lambda: client.chat_postMessage(channel="#data-platform", text="")) == (200, "no_text")
    assert _error(lambda: client.chat_update(channel="C0DATAPLAT", ts="1.000001", text="x")) == (
        200,
        "message_not_found",
    )
    assert _error(lambda: client.chat_update(channel="#data-platform", ts=ts, text="x")) == (200, "channel_not_found")
    assert _error(lambda: other.chat_update(channel="C0DATAPLAT", ts=ts, text="x")) == (200, "cant_update_message")
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert _error(lambda: client.chat_postMessage(channel="#data-platform", text="x", blocks=too_long)) == (
        200,
        "invalid_blocks",
    )


def test_a_storm_answers_429_with_retry_after(slack: SlackStandIn) -> None:
    slack.storm(2, retry_after=5)
    client = WebClient(DEFAULT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="#data-platform", text="x")
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "5"
    assert info.value.response["error"] == "ratelimited"
    assert WebhookClient(slack.webhook_url).send(text="x").status_code == 429
    assert WebhookClient(slack.webhook_url).send(text="x").body == "ok"
    assert len(slack.requests) == 3 and len(slack.messages()) == 1


def test_webhook_answers_ok_without_a_ts_and_its_errors(slack: SlackStandIn) -> None:
    response = WebhookClient(slack.webhook_url).send(text="hi")
    assert (response.status_code, response.body) == (200, "ok")
    assert WebhookClient(slack.webhook_url + "x").send(text="hi").body == "no_service"
    assert WebhookClient(slack.webhook_url).send_dict({"username": "reconciler"}).body == "no_text"
    assert [m.text for m in slack.messages()] == ["hi"]
