"""Local stand-ins for the demo and `reconcile sandbox`: start them, seed them, and the variables that point at them.

One Airbyte per environment, one Kubernetes cluster (a namespace per environment, its
workloads seeded at the baseline environment's pinned images, as if Helm had deployed them)
and one Dagster GraphQL endpoint per environment. With `superset=True`, also two real Superset
servers, prod (its dashboards built at start-up, as if by hand in the UI) and qa, each on a
warehouse of its own (see superset.py; the first start installs Superset once). The example environment files read their
endpoints and secrets from environment variables with defaults for these stand-ins, so the same
specs serve the demo, the tests and production.
"""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.dagster_server import DagsterStandIn, UserCode
from reconciler.sandbox.kube_server import KubeStandIn
from reconciler.sandbox.kube_store import ApiStatusError
from reconciler.sandbox.local_servers import Say, say_to_stderr
from reconciler.sandbox.superset import SupersetPair
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import Environment, load_environments
from reconciler.systems.workloads import rules as workload_rules
from reconciler.systems.workloads.spec import ConfigMapKey, ContainerEnv, ContainerImage

CLIENT_ID = "reconciler"
CLIENT_SECRET = "sandbox-secret"
ENVIRONMENTS = ("prod", "qa")
BASELINE = "prod"
DEFAULT_PORTS = {
    "airbyte-prod": 18001,
    "airbyte-qa": 18002,
    "kube": 18010,
    "dagster-qa": 18021,
    "dagster-prod": 18022,
    "superset-prod": 18088,
    "superset-qa": 18089,
}

# Values of the example specs' secret references, for local stand-ins only.
DEMO_SECRETS = {
    "APP_POSTGRES_PASSWORD": "demo-prod-postgres-password",
    "QA_APP_POSTGRES_PASSWORD": "demo-qa-postgres-password",
    "SALESFORCE_CLIENT_SECRET": "demo-salesforce-client-secret",
    "SALESFORCE_REFRESH_TOKEN": "demo-salesforce-refresh-token",
    "HUBSPOT_ACCESS_TOKEN": "demo-hubspot-access-token",
    "MAILCHIMP_API_KEY": "demo-mailchimp-api-key",
    "LAKE_AWS_ACCESS_KEY_ID": "AKIADEMOPROD",
    "LAKE_AWS_SECRET_ACCESS_KEY": "demo-prod-aws-secret",
    "QA_LAKE_AWS_ACCESS_KEY_ID": "AKIADEMOQA",
    "QA_LAKE_AWS_SECRET_ACCESS_KEY": "demo-qa-aws-secret",
}


@dataclass
class StandIns:
    """Running stand-ins, by environment."""

    airbyte: dict[str, AirbyteStandIn]
    kube: KubeStandIn | None = None
    kubeconfig: Path | None = None
    dagster: dict[str, DagsterStandIn] = field(default_factory=dict)
    superset: SupersetPair | None = None

    def environment(self) -> dict[str, str]:
        """Variables that point the example environments at these stand-ins."""
        variables = dict(DEMO_SECRETS)
        for env, server in self.airbyte.items():
            prefix = f"AIRBYTE_{env.upper()}"
            variables[f"{prefix}_URL"] = server.url
            variables[f"{prefix}_CLIENT_ID"] = CLIENT_ID
            variables[f"{prefix}_CLIENT_SECRET"] = CLIENT_SECRET
        for env, dagster in self.dagster.items():
            variables[f"DAGSTER_{env.upper()}_URL"] = dagster.url
            if self.kubeconfig is not None:
                variables[f"KUBECONFIG_{env.upper()}"] = str(self.kubeconfig)
        if self.superset is not None:
            variables.update(self.superset.environment())
        return variables


def _deployment(namespace: str, name: str, containers: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 5,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def seed_workloads(kube: KubeStandIn, environments: Mapping[str, Environment], baseline: str) -> None:
    """Create every carrier object of every environment, at the baseline environment's images."""
    reference = environments.get(baseline)
    if reference is None or reference.workloads is None:
        return
    images = {
        name: version.reference(reference.workloads.components[name].repository)
        for name, version in reference.workloads.images.items()
    }
    deployments: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    config_maps: dict[tuple[str, str], dict[str, str]] = {}
    for env in environments.values():
        if env.workloads is None:
            continue
        for ref in workload_rules.carriers(env.workloads):
            image = images.get(ref.component, f"{env.workloads.components[ref.component].repository}:initial")
            carrier = ref.carrier
            if isinstance(carrier, ConfigMapKey):
                config_maps.setdefault((ref.namespace, carrier.config_map), {})[carrier.key] = image
                continue
            containers = deployments.setdefault((ref.namespace, carrier.deployment), {})
            container = containers.setdefault(carrier.container, {"name": carrier.container, "image": "busybox:1.36"})
            if isinstance(carrier, ContainerImage):
                container["image"] = image
            elif isinstance(carrier, ContainerEnv):
                container.setdefault("env", []).append({"name": carrier.env, "value": image})
    for (namespace, name), containers in sorted(deployments.items()):
        if not _exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"):
            kube.seed(_deployment(namespace, name, list(containers.values())), settled=True)
    for (namespace, name), data in sorted(config_maps.items()):
        if not _exists(kube, f"/api/v1/namespaces/{namespace}/configmaps/{name}"):
            kube.seed(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": namespace},
                    "data": data,
                }
            )


def _exists(kube: KubeStandIn, path: str) -> bool:
    try:
        kube.get_object(path)
    except ApiStatusError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def _user_code(env: Environment) -> dict[str, UserCode]:
    if env.workloads is None:
        return {}
    found: dict[str, UserCode] = {}
    for ref in workload_rules.carriers(env.workloads):
        if ref.dagster_location and isinstance(ref.carrier, ContainerImage):
            found[ref.dagster_location] = UserCode(ref.namespace, ref.carrier.deployment, ref.carrier.container)
    return found


def _example_environments(root: Path | None) -> dict[str, Environment]:
    if root is None or not (root / "environments").is_dir():
        return {}
    return load_environments(read_spec_tree(root), {})


@contextmanager
def running_standins(
    root: Path | None = None,
    host: str = "127.0.0.1",
    *,
    ports: Mapping[str, int] | None = None,
    data_dir: Path | None = None,
    superset: bool = False,
    say: Say = say_to_stderr,
) -> Iterator[StandIns]:
    """Start the stand-ins (port 0 = a free port), seeded for the project at `root`; stop them on exit.

    With `superset`, the Superset pair starts first, in the background (`standins.superset.wait()`).
    """
    chosen = dict(ports) if ports is not None else {name: 0 for name in DEFAULT_PORTS}
    environments = _example_environments(root)
    with ExitStack() as stack:
        scratch = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reconciler-sandbox-")))
        pair: SupersetPair | None = None
        if superset:
            ports = {env: chosen.get(f"superset-{env}", 0) for env in ENVIRONMENTS}
            pair = SupersetPair(root, scratch / "superset", ports, say)
            stack.callback(pair.stop)
            pair.start()
        servers: dict[str, AirbyteStandIn] = {}
        for env_name in ENVIRONMENTS:
            state_file = data_dir / f"airbyte-{env_name}.json" if data_dir else None
            port = chosen[f"airbyte-{env_name}"]
            server = AirbyteStandIn(host, port, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, state_file=state_file)
            servers[env_name] = stack.enter_context(server)
        standins = StandIns(servers, superset=pair)
        if any(env.workloads is not None for env in environments.values()):
            kube_state = data_dir / "kube.json" if data_dir else None
            kube = stack.enter_context(KubeStandIn(host, chosen["kube"], rollout_seconds=1.0, state_file=kube_state))
            seed_workloads(kube, environments, BASELINE)
            standins.kube = kube
            standins.kubeconfig = kube.write_kubeconfig(scratch / "kubeconfig")
            for name, env in environments.items():
                if env.workloads is not None and f"dagster-{name}" in chosen:
                    dagster = DagsterStandIn(kube, _user_code(env), host, chosen[f"dagster-{name}"])
                    standins.dagster[name] = stack.enter_context(dagster)
        yield standins


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_sandbox(root: Path, host: str, data_dir: Path, echo: Callable[[str], None], *, superset: bool = False) -> None:
    """Serve the stand-ins in the foreground until Ctrl-C, printing how to reach them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the Superset servers too, like Ctrl-C
    with running_standins(root, host, ports=DEFAULT_PORTS, data_dir=data_dir, superset=superset, say=echo) as standins:
        for env, server in standins.airbyte.items():
            echo(f"Airbyte ({env}) stand-in: {server.url}")
            echo(f"  token: POST {server.url}/applications/token  client_id={CLIENT_ID} client_secret={CLIENT_SECRET}")
        if standins.kube is not None:
            echo(
                f"Kubernetes stand-in: {standins.kube.url}  (bearer token {standins.kube.token}; "
                f"kubeconfig {standins.kubeconfig})"
            )
        for env, dagster in standins.dagster.items():
            echo(f"Dagster ({env}) GraphQL stand-in: {dagster.url}")
        if standins.superset is not None:
            servers = standins.superset.wait()
            for env, instance in servers.items():
                built = " (its dashboards built at start-up, as if by hand)" if env == "prod" and instance.fresh else ""
                echo(f"Superset ({env}): {instance.url}  user {instance.username} / {instance.password}{built}")
                echo(f"  warehouse {instance.warehouse_path}, log {instance.log_path}")
            pair = standins.superset
            echo(f"Superset answered after {pair.seconds_to_start:.0f} s (its venv: {pair.cache_dir}).")
        echo(f"Data kept in {data_dir}. In another shell, point reconcile at these stand-ins (demo values only):")
        for name, value in sorted(standins.environment().items()):
            echo(f"  export {name}={value}")
        if standins.superset is not None:
            echo("Then `reconcile plan --env qa` covers all three systems (Airbyte, workloads, Superset).")
        echo("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            echo("Stopping the stand-ins.")
