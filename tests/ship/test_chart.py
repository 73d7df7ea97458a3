"""The Helm chart rendered by real Helm: lint, Kubernetes schemas (strict), pod security, RBAC against the
controller's calls, controller.yaml from values, and the values schema refusing bad values with their path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ship.chart import CHART, EXAMPLES, MONITORING, NAMESPACE, REQUIRED, load_example, merged, render

helm_python = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

KUBE_VERSION = "1.31.0"
OLDEST = "1.27.0"
"""Chart.yaml's kubeVersion floor (the PDB's unhealthyPodEvictionPolicy: unknown in 1.25, gated off in 1.26)."""

CASES = [pytest.param(REQUIRED, id="defaults"), *(pytest.param(load_example(p), id=p.stem) for p in EXAMPLES)]

# The contract's "Kubernetes API calls the controller makes" (docs: /tmp/prompts/contract.md, mirrored in
# README "Install with Helm"): (where, API group, resource, verbs). `where` is the namespace list the values give:
# controller = the release namespace; state / workloads / secrets = the environments' namespaces of that kind.
CONTROLLER_CALLS: list[tuple[str, str, str, frozenset[str]]] = [
    ("controller", "coordination.k8s.io", "leases", frozenset({"get", "create", "update"})),
    ("controller", "", "events", frozenset({"create", "patch"})),
    ("state", "coordination.k8s.io", "leases", frozenset({"get", "create", "update"})),
    ("state", "", "configmaps", frozenset({"get", "list", "create", "update", "delete"})),
    ("secrets", "", "secrets", frozenset({"get"})),
    ("workloads", "apps", "deployments", frozenset({"get", "list", "patch"})),
    ("workloads", "", "configmaps", frozenset({"get", "patch"})),
    ("workloads", "", "pods", frozenset({"list"})),
]

# The contract's environment variables (RECONCILER_*), plus what the pod itself needs.
CONTRACT_ENV = {
    "RECONCILER_REPO",
    "RECONCILER_BRANCH",
    "RECONCILER_PATH",
    "RECONCILER_ENVIRONMENTS",
    "RECONCILER_CONFIG",
    "RECONCILER_POLL_INTERVAL",
    "RECONCILER_DRIFT_INTERVAL",
    "RECONCILER_LISTEN",
    "RECONCILER_CACHE_DIR",
    "RECONCILER_LEADER_ELECTION",
    "RECONCILER_LEASE_NAMESPACE",
    "RECONCILER_LEASE_NAME",
    "RECONCILER_IDENTITY",
    "RECONCILER_KUBECONFIG",
    "RECONCILER_GIT_TOKEN",
    "RECONCILER_WEBHOOK_SECRET",
    "RECONCILER_SLACK_TOKEN",
    "RECONCILER_SLACK_WEBHOOK_URL",
    "RECONCILER_FINGERPRINT_KEY",
    "POD_NAMESPACE",
    "HOME",
}
CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|WEBHOOK_URL", re.IGNORECASE)


def container(values: dict[str, Any]) -> dict[str, Any]:
    (only,) = render(values).one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_the_defaults_alone_are_refused_naming_each_required_value() -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(None)
    message = str(refused.value)
    for path in ("/git/repo", "/environments", "/fingerprintKey/secret/name"):
        assert f"'{path}'" in message


def test_the_oldest_kubernetes_tested_is_the_charts_floor() -> None:
    floor = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    assert floor == f">={OLDEST}-0"


def test_examples_exist_for_the_documented_installs() -> None:
    assert {p.stem for p in EXAMPLES} >= {"one-environment", "two-environments-slack", "existing-serviceaccount"}


@pytest.mark.parametrize("values", CASES)
def test_helm_lint_finds_no_error_or_warning(values: dict[str, Any]) -> None:
    report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", [OLDEST, KUBE_VERSION, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("values", CASES)
def test_every_rendered_manifest_passes_kubernetes_validate_strict(values: dict[str, Any], version: str) -> None:
    rendered = render(values, api_versions=(MONITORING,))
    assert rendered.manifests
    for manifest in rendered.manifests:
        if manifest["kind"] == "ServiceMonitor":
            continue  # no schema bundled: checked structurally below
        kubernetes_validate.validate(manifest, version, strict=True)
        if manifest["kind"] not in ("Namespace",):
            assert manifest["metadata"].get("namespace"), f"{manifest['kind']} without a namespace"
    assert not rendered.of_kind("Secret"), "the chart never creates a Secret: credentials come from existing ones"


def test_a_manifest_with_a_typo_fails_strict_validation() -> None:
    """The validation above can fail: strict mode refuses a field Kubernetes does not know."""
    deployment = render(REQUIRED).one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values", CASES)
def test_the_deployment_runs_non_root_read_only_with_probes_and_scratch_volumes(values: dict[str, Any]) -> None:
    deployment = render(values).one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (main,) = pod["containers"]
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    port = main["ports"][0]
    assert (port["name"], port["containerPort"]) == ("http", 8080)
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["resources"]["requests"] and main["resources"]["limits"]["memory"]
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = {e["name"]: e for e in main["env"]}
    for path in ("/tmp", env["RECONCILER_CACHE_DIR"]["value"], env["HOME"]["value"]):
        assert "emptyDir" in volumes[mounts[path]], f"{path} is not scratch"
    assert volumes[mounts["/etc/reconciler"]]["configMap"]["name"] == deployment["metadata"]["name"]


@pytest.mark.parametrize("values", CASES)
def test_the_container_gets_the_contracts_command_and_environment(values: dict[str, Any]) -> None:
    main = container(values)
    assert main["args"] == ["controller"]  # the image's ENTRYPOINT is `reconcile`
    env = {e["name"]: e for e in main["env"]}
    own = {e["name"] for e in values.get("secretEnv", [])} | {e["name"] for e in values.get("extraEnv", [])}
    assert set(env) - own <= CONTRACT_ENV
    assert env["RECONCILER_LEADER_ELECTION"]["value"] == "true"
    assert env["RECONCILER_LISTEN"]["value"] == "0.0.0.0:8080"
    assert env["RECONCILER_CONFIG"]["value"] == "/etc/reconciler/controller.yaml"
    assert env["RECONCILER_REPO"]["value"] == values["git"]["repo"]
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["RECONCILER_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    for name, variable in env.items():
        if CREDENTIAL_NAME.search(name):
            assert "value" not in variable, f"{name} given as a value"
            assert set(variable["valueFrom"]) == {"secretKeyRef"}, name


def test_credentials_come_from_the_named_secrets() -> None:
    (example,) = (p for p in EXAMPLES if p.stem == "two-environments-slack")
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container(load_example(example))["env"]}
    assert env["RECONCILER_GIT_TOKEN"] == {"name": "reconciler-git", "key": "token"}
    assert env["RECONCILER_WEBHOOK_SECRET"] == {"name": "reconciler-webhook", "key": "secret"}
    assert env["RECONCILER_SLACK_TOKEN"] == {"name": "reconciler-slack", "key": "bot-token"}
    assert env["RECONCILER_FINGERPRINT_KEY"] == {"name": "reconciler-fingerprint", "key": "fingerprint-key"}
    assert env["SUPERSET_PROD_PASSWORD"] == {"name": "superset-prod-admin", "key": "password"}
    assert "RECONCILER_SLACK_WEBHOOK_URL" not in env
    plain = container(REQUIRED)["env"]
    assert not {"RECONCILER_GIT_TOKEN", "RECONCILER_WEBHOOK_SECRET", "RECONCILER_SLACK_TOKEN"} & {
        e["name"] for e in plain
    }


def _namespaces(values: dict[str, Any], where: str) -> set[str]:
    environments = values["environments"]
    if where == "controller":
        return {NAMESPACE}
    if where == "state":
        return {e.get("stateNamespace", NAMESPACE) for e in environments}
    return {
        ns for e in environments for ns in e.get(f"{where[:-1] if where == 'secrets' else 'workload'}Namespaces", [])
    }


def expected_grants(values: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(namespace, group, resource, verb) the contract's calls need for these values."""
    events = values.get("rbac", {}).get("events", True)
    return {
        (namespace, group, resource, verb)
        for where, group, resource, verbs in CONTROLLER_CALLS
        if events or resource != "events"
        for namespace in _namespaces(values, where)
        for verb in verbs
    }


def granted(manifests: list[dict[str, Any]], account: str) -> set[tuple[str, str, str, str]]:
    """What the rendered RoleBindings give the ServiceAccount, rule by rule."""
    roles = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in manifests if m["kind"] == "Role"}
    out: set[tuple[str, str, str, str]] = set()
    for binding in (m for m in manifests if m["kind"] == "RoleBinding"):
        subjects = binding["subjects"]
        assert subjects == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
        assert binding["roleRef"]["kind"] == "Role"
        role = roles[(binding["metadata"]["namespace"], binding["roleRef"]["name"])]
        for rule in role["rules"]:
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb)
                        out.add((binding["metadata"]["namespace"], group, resource, verb))
    bound = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in manifests if b["kind"] == "RoleBinding"}
    assert set(roles) == bound, "a Role nobody is bound to"
    return out


@pytest.mark.parametrize(
    "values", [*CASES, pytest.param(merged(REQUIRED, {"rbac": {"events": False}}), id="no-events")]
)
def test_rbac_grants_exactly_the_controllers_calls_in_the_namespaces_given(values: dict[str, Any]) -> None:
    rendered = render(values)
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")
    if not values.get("rbac", {}).get("create", True):
        assert not rendered.of_kind("Role") and not rendered.of_kind("RoleBinding")
        return
    account = rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    assert granted(rendered.manifests, account) == expected_grants(values)


def test_rbac_namespaces_follow_the_environments() -> None:
    (example,) = (p for p in EXAMPLES if p.stem == "two-environments-slack")
    rendered = render(load_example(example))
    by_namespace: dict[str, set[str]] = {}
    for role in rendered.of_kind("Role"):
        by_namespace.setdefault(role["metadata"]["namespace"], set()).add(role["metadata"]["name"].rsplit("-", 1)[1])
    assert by_namespace == {
        NAMESPACE: {"controller"},
        "reconciler": {"state"},
        "reconciler-prod": {"state"},
        "dagster-qa": {"workloads"},
        "dagster-prod": {"workloads"},
        "dbt-prod": {"workloads"},
        "superset-prod": {"secrets"},
    }


def test_an_existing_service_account_is_used_and_nothing_is_created_for_it() -> None:
    (example,) = (p for p in EXAMPLES if p.stem == "existing-serviceaccount")
    rendered = render(load_example(example))
    assert not rendered.of_kind("ServiceAccount") and not rendered.of_kind("Role")
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-reconciler"
    assert not rendered.of_kind("PodDisruptionBudget")
    with pytest.raises(helm_python.HelmValuesError, match="/serviceAccount/name"):
        render(merged(REQUIRED, {"serviceAccount": {"create": False}}))


def test_the_service_monitor_only_where_the_cluster_serves_its_api() -> None:
    (example,) = (p for p in EXAMPLES if p.stem == "two-environments-slack")
    values = load_example(example)
    without = render(values)
    assert not without.of_kind("ServiceMonitor")
    assert "no ServiceMonitor was created" in without.notes
    monitor = render(values, api_versions=(MONITORING,)).one("ServiceMonitor")
    service = without.one("Service")
    assert monitor["apiVersion"] == MONITORING
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert not render(REQUIRED, api_versions=(MONITORING,)).of_kind("ServiceMonitor"), "off unless enabled"


def test_the_service_and_pdb_select_the_controllers_pods() -> None:
    rendered = render(REQUIRED)
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert rendered.one("Service")["spec"]["selector"].items() <= pod_labels.items()
    assert rendered.one("Service")["spec"]["ports"][0]["targetPort"] == "http"
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def controller_yaml(values: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(render(values).one("ConfigMap")["data"]["controller.yaml"])
    return config


def test_controller_yaml_carries_environments_in_order_drift_and_slack() -> None:
    (example,) = (p for p in EXAMPLES if p.stem == "two-environments-slack")
    values = load_example(example)
    config = controller_yaml(values)
    assert config["environments"] == [{"name": "qa", "mode": "apply"}, {"name": "prod", "mode": "plan-only"}]
    assert config["drift"] == values["drift"]
    assert config["slack"] == {"channel": "#data-platform", "notifyApplied": True, "maxMessagesPerCycle": 20}
    assert set(config) == {"environments", "drift", "slack"}  # the contract's keys only (unknown keys are errors)


def test_controller_yaml_without_slack_and_with_default_modes() -> None:
    config = controller_yaml(merged(REQUIRED, {"environments": [{"name": "b"}, {"name": "a", "mode": "plan-only"}]}))
    assert config == {
        "environments": [{"name": "b", "mode": "apply"}, {"name": "a", "mode": "plan-only"}],
        "drift": {"default": "alert", "rules": []},
    }


def test_an_environment_listed_twice_is_refused() -> None:
    twice = merged(REQUIRED, {"environments": [{"name": "qa"}, {"name": "prod"}, {"name": "qa", "mode": "plan-only"}]})
    with pytest.raises(helm_python.HelmRenderError, match="environments: qa is listed twice"):
        render(twice)


def test_a_config_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        return str(
            render(values).one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/controller-yaml"]
        )

    assert checksum(REQUIRED) != checksum(merged(REQUIRED, {"drift": {"default": "enforce"}}))


BAD_VALUES = [
    pytest.param({"replicaCount": "two"}, "/replicaCount", id="wrong-type"),
    pytest.param({"environments": [{"name": "qa", "mode": "yolo"}]}, "/environments/0/mode", id="bad-enum"),
    pytest.param({"drift": {"default": "alert", "rules": [{"system": "airbyte"}]}}, "/drift/rules/0", id="no-policy"),
    pytest.param({"controller": {"port": "8080"}}, "/controller/port", id="port-as-string"),
    pytest.param({"git": {"token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"}}, "/git", id="token-as-value"),
    pytest.param(
        {"git": {"repo": "https://x-access-token:ghp_abcdef0123456789@github.com/acme/p.git"}},
        "/git/repo",
        id="token-in-repo-url",
    ),
    pytest.param({"slack": {"token": "xoxb-1234-5678-abcdef"}}, "/slack", id="slack-token-as-value"),
    pytest.param(
        {"slack": {"enabled": True, "secret": {"name": "xoxb-1234-5678-abcdef", "tokenKey": "t"}}},
        "/slack/secret/name",
        id="slack-token-as-secret-name",
    ),
    pytest.param(
        {"slack": {"enabled": True, "channel": "#x", "secret": {"name": "", "tokenKey": "token"}}},
        "/slack/secret/name",
        id="slack-without-secret",
    ),
    pytest.param({"webhook": {"secret": {"value": "s3cr3t"}}}, "/webhook/secret", id="webhook-secret-value"),
    pytest.param(
        {"extraEnv": [{"name": "AIRBYTE_QA_CLIENT_SECRET", "value": "s3cr3t"}]},
        "/extraEnv/0/name",
        id="credential-in-plain-env",
    ),
    pytest.param(
        {"extraEnv": [{"name": "SLACK_CHANNEL", "value": "xoxb-1234-5678-abcdef"}]},
        "/extraEnv/0/value",
        id="token-in-a-plain-value",
    ),
    pytest.param({"extraEnv": [{"name": "RECONCILER_REPO", "value": "/x"}]}, "/extraEnv/0/name", id="shadows-chart"),
    pytest.param({"secretEnv": [{"name": "X", "value": "s3cr3t"}]}, "/secretEnv/0", id="secret-env-value"),
    pytest.param({"environments": []}, "/environments", id="no-environment"),
    pytest.param(
        {"environments": [{"name": "qa", "workloadNamespaces": ["Dagster_QA"]}]},
        "/environments/0/workloadNamespaces/0",
        id="bad-namespace",
    ),
    pytest.param({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled", id="bool-as-string"),
]


@pytest.mark.parametrize(("patch", "path"), BAD_VALUES)
def test_bad_values_are_refused_by_the_schema_with_their_path(patch: dict[str, Any], path: str) -> None:
    values = merged(REQUIRED, patch)
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError) as refused:
        chart.validate_schema(chart.merge_values(values))
    assert f"'{path}'" in str(refused.value), str(refused.value)
    with pytest.raises(helm_python.HelmValuesError):
        render(values)  # `helm template` / `helm install` refuse them too


def test_the_schema_is_draft_07() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_values_yaml_documents_every_key() -> None:
    """Every key of values.yaml has its comment on the line above (resource quantities excepted)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented, parents = [], {}
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        parents[indent] = match.group(2)
        if parents.get(indent - 2) in ("requests", "limits"):
            continue
        above = next(text.strip() for text in reversed(lines[:number]) if text.strip())
        if not above.startswith("#"):
            undocumented.append(f"values.yaml:{number + 1}: {line.strip()}")
    assert undocumented == []


def test_chart_files_are_all_used() -> None:
    templates = {p.name for p in (CHART / "templates").iterdir()}
    assert {"deployment.yaml", "rbac.yaml", "service.yaml", "pdb.yaml", "servicemonitor.yaml", "NOTES.txt"} <= templates
    assert Path(CHART / "Chart.yaml").exists()
