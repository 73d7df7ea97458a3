"""`reconcile --help` stays fast: no heavy client library is imported until a command needs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reconciler.sandbox.airbyte_fleet import fleet_environ, write_fleet

HEAVY = ("kubernetes", "httpx", "structlog", "ruamel.yaml", "reconciler.service", "reconciler.clients.kube")


def test_help_imports_no_client_library() -> None:
    probe = (
        "import json, sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(ran.stdout.splitlines()[-1]) == []


def test_validating_an_environment_without_kubernetes_imports_no_kubernetes(tmp_path: Path) -> None:
    """The kubernetes library (about half a second) is imported by what talks to a cluster, not by every command."""
    write_fleet(tmp_path, 3, 1)
    probe = (
        "import json, sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main(['--root', {str(tmp_path)!r}, 'validate', '--env', 'bench'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "kube = [m for m in sys.modules if m == 'kubernetes' or m.startswith('reconciler.clients.kube')]\n"
        "print(json.dumps(sorted(kube)))\n"
    )
    environ = {**os.environ, **fleet_environ("http://127.0.0.1:9/unused")}
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=environ)
    assert ran.returncode == 0, ran.stderr
    assert "valid" in ran.stdout
    assert json.loads(ran.stdout.splitlines()[-1]) == []
