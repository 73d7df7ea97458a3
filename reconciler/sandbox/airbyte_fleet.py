"""A generated project of N Airbyte connections (each with its own source) for benchmarks and scale tests.

Writes `specs/airbyte/fleet.yaml` and `environments/<env>.yaml` into a fresh directory; the
environment reads the stand-in's URL and client secret from FLEET_AIRBYTE_URL and
FLEET_AIRBYTE_CLIENT_SECRET (see `fleet_environ`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reconciler.sandbox.launch import CLIENT_ID, CLIENT_SECRET, DEMO_SECRETS


def write_fleet(root: Path, connections: int, destinations: int = 10, environment: str = "bench") -> int:
    """Specs for `connections` connections, as many sources and `destinations` destinations; returns the resources."""
    sources = [
        {
            "name": f"app-db-{i:05d}",
            "type": "postgres",
            "configuration": {
                "host": f"db-{i:05d}.internal",
                "port": 5432,
                "database": "app",
                "username": "reader",
                "password": {"secretRef": {"env": "APP_POSTGRES_PASSWORD"}},
            },
        }
        for i in range(connections)
    ]
    sinks = [
        {
            "name": f"lake-{d:02d}",
            "type": "s3",
            "configuration": {
                "s3_bucket_name": f"lake-{d:02d}",
                "s3_bucket_path": "raw",
                "s3_bucket_region": "eu-west-1",
                "format": {"format_type": "Parquet"},
                "access_key_id": {"secretRef": {"env": "LAKE_AWS_ACCESS_KEY_ID"}},
                "secret_access_key": {"secretRef": {"env": "LAKE_AWS_SECRET_ACCESS_KEY"}},
            },
        }
        for d in range(destinations)
    ]
    links = [
        {
            "name": f"app-db-{i:05d}-to-lake",
            "source": f"app-db-{i:05d}",
            "destination": f"lake-{i % destinations:02d}",
            "schedule": {"cron": f"0 {i % 60} {i % 24} * * ?"},
            "namespaceDefinition": "custom_format",
            "namespaceFormat": f"app_{i:05d}",
            "streams": [
                {
                    "name": "users",
                    "namespace": "public",
                    "syncMode": "incremental_deduped_history",
                    "cursorField": ["updated_at"],
                },
                {"name": "orders", "namespace": "public", "syncMode": "full_refresh_overwrite"},
            ],
        }
        for i in range(connections)
    ]
    (root / "specs" / "airbyte").mkdir(parents=True)
    (root / "environments").mkdir()
    spec = {"sources": sources, "destinations": sinks, "connections": links}
    (root / "specs" / "airbyte" / "fleet.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env: dict[str, Any] = {
        "environment": environment,
        "airbyte": {
            "url": "${FLEET_AIRBYTE_URL}",
            "auth": {"clientId": CLIENT_ID, "clientSecret": {"secretRef": {"env": "FLEET_AIRBYTE_CLIENT_SECRET"}}},
            "workspace": "Default Workspace",
            "sources": {s["name"]: {} for s in sources},
            "destinations": {d["name"]: {} for d in sinks},
            "connections": {c["name"]: {} for c in links},
        },
    }
    (root / "environments" / f"{environment}.yaml").write_text(yaml.safe_dump(env, sort_keys=False))
    return len(sources) + len(sinks) + len(links)


def fleet_environ(url: str) -> dict[str, str]:
    """The variables a fleet project needs, pointed at the stand-in at `url`."""
    return {
        **DEMO_SECRETS,
        "FLEET_AIRBYTE_URL": url,
        "FLEET_AIRBYTE_CLIENT_SECRET": CLIENT_SECRET,
        "RECONCILER_FINGERPRINT_KEY": "fleet",
    }
