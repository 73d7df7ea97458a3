"""Values a platform team writes by mistake, refused by values.schema.json with their path before anything is
installed: a setting the controller would refuse to start with, and a credential written where a value goes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

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


SLACK_HOOK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/cccccccccccccccccccccccc"
GH_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


def plain_env(value: str, name: str = "SETTING") -> dict[str, Any]:
    return {"extraEnv": [{"name": name, "value": value}]}


CREDENTIALS_AS_VALUES = [
    pytest.param(plain_env(SLACK_HOOK, "ALERTS_HOOK"), "/extraEnv/0/value", id="slack-webhook-url-in-extra-env"),
    pytest.param(
        plain_env("jdbc:postgresql://db:5432/app?user=app&password=hunter2", "APP_DB_URL"),
        "/extraEnv/0/value",
        id="password-parameter-in-extra-env",
    ),
    pytest.param(
        plain_env("jdbc:postgresql://app:hunter2@db:5432/app", "APP_DB_URL"),
        "/extraEnv/0/value",
        id="userinfo-after-a-jdbc-prefix",
    ),
    pytest.param(plain_env(f"Bearer {GH_TOKEN}", "EXTRA_HEADER"), "/extraEnv/0/value", id="token-after-a-prefix"),
    pytest.param({"slack": {"channel": SLACK_HOOK}}, "/slack/channel", id="slack-webhook-url-as-channel"),
    pytest.param(
        {"podAnnotations": {"ci/token": "xoxb-1234-5678-abcdef"}}, "/podAnnotations/ci~1token", id="token-annotation"
    ),
    pytest.param(
        {"git": {"repo": f"https://github.com/acme/specs.git?access_token={GH_TOKEN}"}},
        "/git/repo",
        id="token-in-repo-query",
    ),
]


@pytest.mark.parametrize(("patch", "path"), CREDENTIALS_AS_VALUES)
def test_a_credential_written_as_a_value_is_refused_wherever_it_is_written(patch: dict[str, Any], path: str) -> None:
    assert f"'{path}'" in refused_at(merged(REQUIRED, patch))


def test_ordinary_values_that_look_a_little_like_credentials_pass() -> None:
    values = merged(
        REQUIRED,
        {
            "extraEnv": [
                {
                    "name": "AIRBYTE_QA_URL",
                    "value": "http://airbyte-qa-airbyte-server-svc.airbyte-qa:8001/api/public/v1",
                },
                {"name": "QUEUE", "value": "task-runner"},
                {"name": "HTTP_SCHEME", "value": "Basic"},
                {"name": "DOCS", "value": "https://docs.example.com/setup?page=2&lang=en"},
            ],
            "serviceAccount": {
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/reconciler"}
            },
            "podAnnotations": {"prometheus.io/scrape": "true"},
            "slack": {"channel": "#data-platform"},
        },
    )
    render(values)


def test_a_git_token_is_only_sent_over_https() -> None:
    """The token travels as an Authorization header: over http:// anyone on the path reads it."""
    token = {"tokenSecret": {"name": "git-token", "key": "token"}}
    assert "'/git/repo'" in refused_at(
        merged(REQUIRED, {"git": {"repo": "http://gitea.local/acme/specs.git", **token}})
    )
    render(merged(REQUIRED, {"git": {"repo": "https://gitea.local/acme/specs.git", **token}}))
    render(merged(REQUIRED, {"git": {"repo": "http://gitea.local/acme/specs.git"}}))  # public, no token: allowed


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param(
            {
                "secretEnv": [{"name": "AIRBYTE_QA_URL", "secretName": "airbyte-qa", "key": "url"}],
                "extraEnv": [{"name": "AIRBYTE_QA_URL", "value": "http://airbyte-qa:8001/api/public/v1"}],
            },
            id="secret-and-plain",
        ),
        pytest.param(
            {
                "extraEnv": [
                    {"name": "AIRBYTE_QA_URL", "value": "http://a"},
                    {"name": "AIRBYTE_QA_URL", "value": "http://b"},
                ]
            },
            id="plain-twice",
        ),
        pytest.param(
            {"secretEnv": [{"name": "POD_NAMESPACE", "secretName": "ns", "key": "namespace"}]},
            id="shadows-the-chart",
        ),
    ],
)
def test_an_environment_variable_set_twice_is_refused_by_name(patch: dict[str, Any]) -> None:
    """Two entries of one name: Kubernetes keeps the last (a plain value silently shadows the Secret), and Helm 4's
    server-side apply refuses the Deployment with 'duplicate entries for key [name=...]'."""
    name = (patch.get("extraEnv") or patch["secretEnv"])[0]["name"]
    with pytest.raises((helm_python.HelmRenderError, helm_python.HelmValuesError), match=name):
        render(merged(REQUIRED, patch))


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        pytest.param({"podLabels": {"app.kubernetes.io/name": "other"}}, "/podLabels", id="label-the-selector-uses"),
        pytest.param({"podLabels": {"app.kubernetes.io/instance": "x"}}, "/podLabels", id="instance-label"),
        pytest.param({"podAnnotations": {"checksum/controller-yaml": "x"}}, "/podAnnotations", id="config-checksum"),
    ],
)
def test_pod_labels_and_annotations_cannot_override_what_the_chart_relies_on(patch: dict[str, Any], path: str) -> None:
    """A podLabel named like a selector label made the template's labels miss the Deployment's selector (the API
    server refuses it); the checksum annotation overridden stops a config change from rolling the pods."""
    assert f"'{path}'" in refused_at(merged(REQUIRED, patch))


def test_lists_and_maps_left_empty_in_a_values_file_render() -> None:
    """`extraEnv:` with nothing after it is null in YAML: the chart renders as with the defaults."""
    empty = dict.fromkeys(("extraEnv", "secretEnv", "tolerations", "resources", "podLabels", "podAnnotations"))
    assert render(merged(REQUIRED, empty)).one("Deployment")


DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_an_image_pinned_by_digest() -> None:
    """A platform team pins the image by digest: `image.digest` gives repo@sha256:...; a digest written as the tag
    (repo:sha256:..., an invalid reference the kubelet cannot pull) is refused at /image/tag."""
    container = render(merged(REQUIRED, {"image": {"digest": DIGEST}})).one("Deployment")["spec"]["template"]["spec"]
    assert container["containers"][0]["image"] == f"ghcr.io/acme/reconciler@{DIGEST}"
    assert "'/image/tag'" in refused_at(merged(REQUIRED, {"image": {"tag": DIGEST}}))
    assert "'/image/digest'" in refused_at(merged(REQUIRED, {"image": {"digest": "0123abcd"}}))


SLACK_SECTIONS = [
    pytest.param({"maxMessagesPerCycle": 5000}, id="more-messages-than-the-notifier-takes"),
    pytest.param({"channel": "c" * 81}, id="channel-longer-than-slack-allows"),
    pytest.param({"channel": "#data platform"}, id="channel-with-a-space"),
    pytest.param({"maxMessagesPerCycle": 1000, "channel": "C0123ABCD"}, id="at-the-limits"),
]


@pytest.mark.parametrize("section", SLACK_SECTIONS)
def test_what_the_chart_installs_the_controller_accepts(section: dict[str, Any]) -> None:
    """A slack section the schema lets through but SlackSettings refuses is a controller that never starts."""
    from pydantic import ValidationError

    from reconciler.controller.slack import SlackSettings

    values = merged(REQUIRED, {"slack": {"enabled": True, "channel": "#data-platform", "secret": {"name": "slack"}}})
    values = merged(values, {"slack": section})
    try:
        config = yaml.safe_load(render(values).one("ConfigMap")["data"]["controller.yaml"])
    except helm_python.HelmValuesError:
        with pytest.raises(ValidationError):
            SlackSettings.model_validate({"channel": "#data-platform", **section})  # both refuse it
        return
    SlackSettings.model_validate(config["slack"])  # the chart rendered it: the controller must take it


@pytest.mark.parametrize(
    "branch",
    [
        "--upload-pack=touch$IFS/tmp/pwned",  # read by git as an option, not a branch
        "-main",
        "release..2026",
        "main.lock",
        "feature/",
        "main@{1}",
    ],
)
def test_a_branch_git_would_refuse_or_read_as_an_option_is_refused(branch: str) -> None:
    """`git check-ref-format --branch` refuses these; one starting with '-' reaches git ls-remote as an option."""
    assert "'/git/branch'" in refused_at(merged(REQUIRED, {"git": {"branch": branch}}))


def test_ordinary_branch_names_pass() -> None:
    for branch in ("main", "release/2026-11", "feature/add-qa_superset", "v1.2.3"):
        render(merged(REQUIRED, {"git": {"branch": branch}}))


def test_a_scrape_timeout_longer_than_its_interval_is_refused() -> None:
    """Prometheus refuses a scrape config whose scrape_timeout is over its scrape_interval (the operator drops the
    ServiceMonitor): metrics would silently never be scraped."""
    monitor = {"serviceMonitor": {"enabled": True, "interval": "5s", "scrapeTimeout": "10s"}}
    with pytest.raises(helm_python.HelmRenderError, match="scrapeTimeout 10s is longer than interval 5s"):
        render(merged(REQUIRED, monitor), api_versions=("monitoring.coreos.com/v1",))
    fine = {"serviceMonitor": {"enabled": True, "interval": "1m", "scrapeTimeout": "30s"}}
    assert render(merged(REQUIRED, fine), api_versions=("monitoring.coreos.com/v1",)).one("ServiceMonitor")
