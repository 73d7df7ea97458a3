"""`reconcile demo` (the default, on local stand-ins) end to end: the controller's chapter leaves each step visible in
the stand-ins it runs against (Airbyte objects, Slack messages, the controller's own state), never checked by
matching the narration."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.demo import run_demo
from reconciler.demo_controller import CONNECTION, HAND_CRON, STEPS, ControllerFacts
from tests.helpers import REPO


def _cron(facts: ControllerFacts) -> str:
    (connection,) = [c for c in facts.qa.stored("connections") if c["name"] == CONNECTION and not c.get("tombstone")]
    return str(connection["schedule"]["cronExpression"])


class ControllerChecks:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.writes = 0

    def __call__(self, step: str, facts: ControllerFacts) -> None:
        self.seen.append(step)
        getattr(self, step)(facts)

    def started(self, facts: ControllerFacts) -> None:
        assert facts.app.controller.statuses["qa"].applied == facts.revision
        assert facts.slack.requests == []  # nothing to tell
        self.writes = facts.qa.stats.writes

    def merged(self, facts: ControllerFacts) -> None:
        status = facts.app.controller.statuses["qa"]
        assert status.applied == facts.revision and status.result == "applied"
        assert _cron(facts) == "0 0 */4 * * ?"
        assert facts.qa.stats.writes == self.writes + 1  # the one change, once
        self.writes = facts.qa.stats.writes

    def drifted(self, facts: ControllerFacts) -> None:
        (message,) = facts.slack.messages()
        assert message.metadata is not None
        assert message.metadata["event_payload"]["key"] == f"drift/qa/airbyte/connection/{CONNECTION}"
        assert HAND_CRON in str(message.blocks) and "reported only" in str(message.blocks)
        assert _cron(facts) == HAND_CRON  # alert: left as it is
        assert facts.qa.stats.writes == self.writes

    def quiet(self, facts: ControllerFacts) -> None:
        assert len(facts.slack.calls("chat.postMessage")) == 1 and facts.slack.calls("chat.update") == []
        assert facts.qa.stats.writes == self.writes

    def enforced(self, facts: ControllerFacts) -> None:
        assert _cron(facts) == "0 0 */4 * * ?"
        assert facts.qa.stats.writes == self.writes + 1  # put back once, and the restart applied nothing again
        (message,) = facts.slack.messages()  # the same message, edited
        assert message.text.startswith("Resolved")
        first_edit, second_edit = facts.slack.calls("chat.update")  # "re-applied", then resolved
        assert b"re-applied" in first_edit.body and b"Resolved" in second_edit.body
        assert len(facts.slack.calls("chat.postMessage")) == 2  # the drift message and its thread reply
        assert len(facts.slack.thread(message.ts)) == 1


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_demo_tells_the_controllers_story_through_the_stand_ins() -> None:
    checks = ControllerChecks()
    lines: list[str] = []

    def echo(line: Any) -> None:
        lines.append(str(line))

    run_demo(REPO, echo, after_controller_step=checks)
    assert checks.seen == list(STEPS), "\n".join(lines)
