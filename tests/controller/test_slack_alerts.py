"""The notifier against the Slack stand-in through slack-sdk: one message per drift, edited, resolved, restarted."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from reconciler.controller.ports import AlertRecord, AppliedCommit, MemoryAlertStore
from reconciler.core.diff import FieldChange
from reconciler.errors import TemporaryError
from tests.controller.slack_helpers import Rig, finding


def test_drift_over_five_cycles_posts_exactly_one_message(rig: Rig) -> None:
    notifier = rig.notifier()
    for _ in range(5):
        notifier.drift("qa", [finding()])

    assert len(rig.slack.calls("chat.postMessage")) == 1
    assert rig.slack.calls("chat.update") == []
    [message] = rig.slack.messages()
    assert "pg-to-s3" in message.text and "schedule.cronExpression" in str(message.blocks)
    assert "reconcile plan --env qa --system airbyte" in str(message.blocks)
    record = rig.stores("qa").load()["drift/qa/airbyte/connection/pg-to-s3"]
    assert (record.ts, record.channel, record.resolved) == (message.ts, "C0DATAPLAT", False)


def test_changed_drift_edits_the_message_once_and_posts_nothing(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding()])
    changed = finding(changes=(FieldChange(("schedule", "cronExpression"), "0 5 * * *", "0 2 * * *"),))
    for _ in range(3):
        notifier.drift("qa", [changed])

    assert len(rig.slack.calls("chat.postMessage")) == 1
    assert len(rig.slack.calls("chat.update")) == 1
    [message] = rig.slack.messages()
    assert "0 5 * * *" in str(message.blocks) and message.edits == 1


def test_gone_drift_is_marked_resolved_with_one_thread_reply(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding(), finding("orders")])
    notifier.drift("qa", [finding("orders")])
    notifier.drift("qa", [finding("orders")])

    gone = next(m for m in rig.slack.messages() if "pg-to-s3" in m.text)
    assert "Resolved" in gone.text and gone.edits == 1
    [reply] = rig.slack.thread(gone.ts)
    assert "pg-to-s3" in reply.text and "Resolved" in reply.text
    assert len(rig.slack.calls("chat.postMessage")) == 3  # two drifts, one reply
    assert set(rig.stores("qa").load()) == {"drift/qa/airbyte/connection/orders"}
    still = next(m for m in rig.slack.messages() if "orders" in m.text)
    assert still.edits == 0 and rig.slack.thread(still.ts) == []


def test_a_restart_mid_drift_edits_the_same_message(rig: Rig) -> None:
    rig.notifier().drift("qa", [finding()])
    changed = finding(outcome="re-apply failed: 503 from the Airbyte API")

    after_restart = rig.notifier()
    after_restart.drift("qa", [finding()])
    after_restart.drift("qa", [changed])
    rig.notifier().drift("qa", [])

    assert len(rig.slack.messages()) == 1
    [message] = rig.slack.messages()
    assert message.edits == 2 and "Resolved" in message.text
    assert len(rig.slack.thread(message.ts)) == 1


def test_drift_back_after_resolved_gets_a_new_message(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding()])
    notifier.drift("qa", [])
    notifier.drift("qa", [finding()])

    first, second = rig.slack.messages()
    assert "Resolved" in first.text and "Resolved" not in second.text
    assert rig.stores("qa").load()["drift/qa/airbyte/connection/pg-to-s3"].ts == second.ts


def test_environments_keep_their_own_alerts(rig: Rig) -> None:
    notifier = rig.notifier()
    notifier.drift("qa", [finding()])
    notifier.drift("prod", [finding(env="prod")])
    notifier.drift("prod", [])  # resolves prod's only, never qa's

    qa, prod = rig.slack.messages()
    assert "Resolved" not in qa.text and "Resolved" in prod.text
    assert list(rig.stores("qa").load()) == ["drift/qa/airbyte/connection/pg-to-s3"]


def test_a_message_another_app_posted_is_posted_again_not_lost(rig: Rig) -> None:
    rig.slack.tokens["xoxb-other-app"] = "U0OTHER"
    rig.notifier(token="xoxb-other-app").drift("qa", [finding()])
    changed = finding(outcome="re-applied")

    rig.notifier().drift("qa", [changed])

    assert [r.error for r in rig.slack.calls("chat.update", ok=False)] == ["cant_update_message"]
    first, second = rig.slack.messages()
    assert "re-applied" in str(second.blocks) and "re-applied" not in str(first.blocks)
    assert rig.stores("qa").load()["drift/qa/airbyte/connection/pg-to-s3"].ts == second.ts


def test_apply_failure_is_one_message_edited_while_it_lasts_and_resolved_by_an_apply(rig: Rig) -> None:
    notifier = rig.notifier()
    for _ in range(3):
        notifier.apply_failed("qa", "aaaa1111", "airbyte: 503 Service Unavailable")
    notifier.apply_failed("qa", "bbbb2222", "airbyte: 503 Service Unavailable")
    notifier.invalid_commit("qa", "cccc3333", ["specs/airbyte.yaml:12: connections[0].schedule: bad cron"])
    notifier.invalid_commit("qa", "cccc3333", ["specs/airbyte.yaml:12: connections[0].schedule: bad cron"])
    notifier.applied(AppliedCommit("qa", "dddd4444", created=1, updated=0, deleted=0))
    notifier.applied(AppliedCommit("qa", "dddd4444", created=1, updated=0, deleted=0))

    failed, invalid = rig.slack.messages()
    assert failed.edits == 2 and "Resolved" in failed.text and "dddd4444" in failed.text
    assert invalid.edits == 1 and "Resolved" in invalid.text
    assert "specs/airbyte.yaml:12" not in invalid.text  # the edit replaced the problems with the resolution
    assert len(rig.slack.thread(failed.ts)) == 1 and len(rig.slack.thread(invalid.ts)) == 1
    assert rig.stores("qa").load() == {}


def test_applied_summary_when_configured_posted_once_per_commit(rig: Rig) -> None:
    notifier = rig.notifier(notifyApplied=True)
    commit = AppliedCommit("qa", "dddd4444", created=2, updated=1, deleted=0)
    notifier.applied(commit)
    rig.notifier(notifyApplied=True).applied(commit)  # a restart reports the same commit again
    notifier.applied(AppliedCommit("prod", "dddd4444", created=0, updated=3, deleted=0, mode="plan-only"))

    qa, prod = rig.slack.messages()
    assert "Applied dddd4444 to qa: 2 created, 1 updated" in qa.text
    assert "Plan-only prod" in prod.text and "would apply 3 updated" in prod.text


def test_applied_summary_off_by_default(rig: Rig) -> None:
    rig.notifier().applied(AppliedCommit("qa", "dddd4444", created=2, updated=1, deleted=0))
    assert rig.slack.requests == []


class FlakyStore(MemoryAlertStore):
    """An alert store whose next `failures` saves are refused, as a ConfigMap write conflict would be."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def save(self, alerts: Mapping[str, AlertRecord]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TemporaryError("configmap reconciler-state-qa: conflict")
        super().save(alerts)


def test_a_refused_save_after_a_post_does_not_post_it_again(rig: Rig) -> None:
    rig.stores.by_env["qa"] = store = FlakyStore(failures=2)
    notifier = rig.notifier()
    with structlog.testing.capture_logs() as logs:
        notifier.drift("qa", [finding()])  # posted, its record refused
        notifier.drift("qa", [finding()])  # the retried save refused again: nothing posted meanwhile
        notifier.drift("qa", [finding()])

    assert [e["event"] for e in logs].count("slack.alert_state_failed") == 2
    assert len(rig.slack.calls("chat.postMessage")) == 1
    assert store.load()["drift/qa/airbyte/connection/pg-to-s3"].ts == rig.slack.messages()[0].ts
