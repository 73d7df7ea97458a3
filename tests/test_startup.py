"""`reconcile --help` stays fast: no heavy client library is imported until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

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
