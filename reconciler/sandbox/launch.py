"""Local stand-ins for the demo and `reconcile sandbox`: start them, and the variables that point at them.

The example environment files read their endpoints and secrets from environment variables
with defaults for these stand-ins, so the same specs serve the demo, the tests and production.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox.airbyte_server import AirbyteStandIn

CLIENT_ID = "reconciler"
CLIENT_SECRET = "sandbox-secret"
DEFAULT_PORTS = {"prod": 18001, "qa": 18002}

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

    def environment(self) -> dict[str, str]:
        """Variables that point the example environments at these stand-ins."""
        variables = dict(DEMO_SECRETS)
        for env, server in self.airbyte.items():
            prefix = f"AIRBYTE_{env.upper()}"
            variables[f"{prefix}_URL"] = server.url
            variables[f"{prefix}_CLIENT_ID"] = CLIENT_ID
            variables[f"{prefix}_CLIENT_SECRET"] = CLIENT_SECRET
        return variables


@contextmanager
def running_standins(
    host: str = "127.0.0.1", *, ports: dict[str, int] | None = None, data_dir: Path | None = None
) -> Iterator[StandIns]:
    """Start one Airbyte stand-in per environment (port 0 picks a free port); stop them on exit."""
    chosen = ports if ports is not None else {env: 0 for env in DEFAULT_PORTS}
    with ExitStack() as stack:
        servers: dict[str, AirbyteStandIn] = {}
        for env, port in chosen.items():
            state_file = data_dir / f"airbyte-{env}.json" if data_dir else None
            server = AirbyteStandIn(host, port, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, state_file=state_file)
            stack.enter_context(server)
            servers[env] = server
        yield StandIns(servers)


def run_sandbox(host: str, data_dir: Path, echo: Callable[[str], None]) -> None:
    """Serve the stand-ins in the foreground until Ctrl-C, printing how to reach them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with running_standins(host, ports=dict(DEFAULT_PORTS), data_dir=data_dir) as standins:
        for env, server in standins.airbyte.items():
            echo(f"Airbyte ({env}) stand-in: {server.url}")
            echo(f"  token: POST {server.url}/applications/token  client_id={CLIENT_ID} client_secret={CLIENT_SECRET}")
        echo(f"Data kept in {data_dir}. In another shell, point reconcile at these stand-ins (demo values only):")
        for name, value in sorted(standins.environment().items()):
            echo(f"  export {name}={value}")
        echo("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            echo("Stopping the stand-ins.")
