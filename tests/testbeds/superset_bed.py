"""Test bed, under the Superset integration tests: the sandbox's Superset servers, with the venv in `.cache/testbeds`.

The installer, config, metadata bootstrap, warehouses and start/stop live in
reconciler.sandbox.superset (the demo and `reconcile sandbox --with superset` run the same code);
this module pins them to the test cache and keeps the names the tests and bench use.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from reconciler.sandbox import superset
from reconciler.sandbox.superset import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    QA_ONLY_REGION,
    SUPERSET_PINS,
    SUPERSET_VERSION,
    create_warehouse,
    superset_env,
)
from reconciler.sandbox.superset import SupersetServer as SupersetInstance
from tests.testbeds import common
from tests.testbeds.common import CACHE

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USERNAME",
    "QA_ONLY_REGION",
    "SUPERSET_PINS",
    "SUPERSET_VERSION",
    "SupersetInstance",
    "as_dashboard_zip",
    "create_warehouse",
    "ensure_superset_venv",
    "start_superset",
    "start_superset_instances",
    "superset_env",
]


def say(message: str) -> None:
    common.say("superset", message)


def ensure_superset_venv() -> Path:
    """The Superset venv in the test cache, installed on first use; returns its directory."""
    return superset.ensure_superset_venv(CACHE, say)


def start_superset(name: str, port: int | None, workdir: Path) -> SupersetInstance:
    """Bootstrap and run one Superset instance in `workdir`; returns once `/health` answers."""
    return superset.start_superset(name, port, workdir, CACHE, say=say)


def start_superset_instances(names: Sequence[str], root: Path) -> dict[str, SupersetInstance]:
    """Start several instances side by side (`root/<name>` each); if one fails, the others are stopped."""
    return superset.start_superset_instances(names, root, CACHE, say=say)


def as_dashboard_zip(assets_zip: bytes) -> bytes:
    """The same files with `metadata.yaml` saying `type: Dashboard`, as Superset's dashboard imports want."""
    source = zipfile.ZipFile(io.BytesIO(assets_zip))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("/metadata.yaml"):
                data = yaml.safe_dump({"version": "1.0.0", "type": "Dashboard"}).encode()
            archive.writestr(name, data)
    return buffer.getvalue()
