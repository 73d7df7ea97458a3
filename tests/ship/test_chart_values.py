"""Values a platform team writes by mistake, refused by values.schema.json with their path before anything is
installed: a setting the controller would refuse to start with, and a credential written where a value goes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ship.chart import CHART, REQUIRED, merged, render

helm_python = pytest.importorskip("helm_python")


def refused_at(values: dict[str, Any]) -> str:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError) as refused:
        chart.validate_schema(chart.merge_values(values))
    with pytest.raises(helm_python.HelmValuesError):
        render(values)
    return str(refused.value)


def test_a_slack_bot_token_without_a_channel_is_refused() -> None:
    """notifier_from refuses to start with a token and no slack.channel: the chart must not install that."""
    values = merged(REQUIRED, {"slack": {"enabled": True, "secret": {"name": "slack"}}})  # tokenKey: token (default)
    assert "'/slack/channel'" in refused_at(values)
    webhook_only = {"enabled": True, "secret": {"name": "slack", "tokenKey": "", "webhookUrlKey": "url"}}
    render(merged(REQUIRED, {"slack": webhook_only}))  # a webhook has its own channel
    render(merged(REQUIRED, {"slack": {"enabled": True, "channel": "C0123ABCD", "secret": {"name": "slack"}}}))
