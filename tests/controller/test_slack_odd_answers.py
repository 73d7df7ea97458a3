"""The Slack notifier when Slack (or a proxy in front of it) answers oddly after doing the work: an HTML 5xx page. A message Slack did post is never posted again on the next cycle."""

from __future__ import annotations

import structlog

from reconciler.sandbox.http_util import Response
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
