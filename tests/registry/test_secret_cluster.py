"""`{secretRef: {kubernetes: ...}}` reads the cluster the environment names, whatever systems it has."""

from __future__ import annotations

from reconciler.engine import secret_cluster
from reconciler.spec.environment import ClusterSettings
from reconciler.spec.loader import load_environments

AIRBYTE_ONLY = """\
environment: dev
secrets:
  kubernetes: {kubeconfig: kube/config, context: ops}
airbyte:
  url: http://airbyte.example
"""
WORKLOADS_ONLY = """\
environment: dev
workloads:
  kubernetes: {kubeconfig: kube/dagster, namespace: dagster}
"""


def test_an_environment_without_workloads_names_its_secret_cluster() -> None:
    env = load_environments({"environments/dev.yaml": AIRBYTE_ONLY}, {})["dev"]
    assert secret_cluster(env) == ("secrets", ClusterSettings(kubeconfig="kube/config", context="ops"))


def test_without_a_secret_cluster_the_workloads_cluster_reads_secrets_as_before() -> None:
    env = load_environments({"environments/dev.yaml": WORKLOADS_ONLY}, {})["dev"]
    found = secret_cluster(env)
    assert found is not None and found[0] == "workloads" and found[1].kubeconfig == "kube/dagster"


def test_no_cluster_at_all_means_no_kubernetes_secrets() -> None:
    without = "\n".join(
        line for line in AIRBYTE_ONLY.splitlines() if "secrets" not in line and "kubernetes" not in line
    )
    env = load_environments({"environments/dev.yaml": without + "\n"}, {})["dev"]
    assert secret_cluster(env) is None
