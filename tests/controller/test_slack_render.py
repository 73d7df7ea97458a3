"""The Slack messages as plain data: what they say, what they never say, and a digest that moves only with them."""

from __future__ import annotations

from reconciler.core.diff import FieldChange
from reconciler.render.slack import as_plain_text, drift_message, invalid_commit_message
from tests.controller.slack_helpers import finding


def test_a_drift_message_reads_as_the_readme_shows() -> None:
    changes = (
        FieldChange(("schedule", "cronExpression"), "0 4 * * *", "0 2 * * *"),
        FieldChange(("configuration", "password"), "hunter2", "hunter3", secret=True),
    )
    text = as_plain_text(drift_message(finding(changes=changes)))

    assert text.splitlines() == [
        "⚠️ Drift: airbyte connection pg-to-s3",
        "Environment  qa                              Resource     airbyte/connection/pg-to-s3",
        "Revision     3f2c9a1b7d4e                    Policy       alert",
        "Controller   reported only                   A plan would update",
        "What differs (live → spec)",
        '• schedule.cronExpression: "0 4 * * *" → "0 2 * * *"',
        "• configuration.password: changed (secret, value not shown)",
        "See it: reconcile plan --env qa --system airbyte",
    ]
    assert "hunter" not in str(drift_message(finding(changes=changes)))


def test_the_digest_moves_with_what_the_message_says_and_nothing_else() -> None:
    assert drift_message(finding()).digest == drift_message(finding()).digest
    assert drift_message(finding()).digest != drift_message(finding(outcome="re-applied")).digest
    secret_a = (FieldChange(("password",), "a", "b", secret=True),)
    secret_b = (FieldChange(("password",), "c", "d", secret=True),)
    assert drift_message(finding(changes=secret_a)).digest == drift_message(finding(changes=secret_b)).digest


def test_a_long_name_and_many_problems_stay_inside_slacks_limits() -> None:
    header = drift_message(finding("n" * 400)).blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")
    problems = [f"specs/a.yaml:{n}: connections[{n}].name: required" for n in range(60)]
    section = invalid_commit_message("qa", "abc", problems).blocks[2]["text"]["text"]
    assert "… and 40 more problem(s)" in section and len(section) <= 3000
