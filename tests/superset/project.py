"""Test helper: the example project pointed at real Superset servers, and the CLI and engine on it.

Environments: `prod` (the session's prod, with the fixture dashboards), `qa` (the example's
replication of prod, onto a fresh QA) and `staging`, written here: a fresh QA reconciled from
the specs alone, with pruning on.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler import engine
from reconciler.cli import main
from reconciler.systems.superset.provider import SupersetProvider
from tests.helpers import copy_example
from tests.testbeds.superset_bed import SupersetInstance

STAGING = """\
environment: staging
superset:
  url: ${SUPERSET_STAGING_URL}
  auth: {username: admin, password: {secretRef: {env: SUPERSET_STAGING_PASSWORD}}}
  databases:
    warehouse: {sqlalchemyUri: "${SUPERSET_STAGING_WAREHOUSE_URI}"}
  dashboards: all
  roles: [analyst, sales-viewer]
  prune: true
"""
SUPERSET = ("--system", "superset")


@dataclass
class SupersetProject:
    root: Path
    environ: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--root", str(self.root), *args], env=self.environ, catch_exceptions=False)

    def plan(self, env: str, *extra: str) -> Result:
        return self.run("plan", "--env", env, *SUPERSET, *extra)

    def apply(self, env: str, *extra: str) -> Result:
        return self.run("apply", "--env", env, "--auto-approve", *SUPERSET, *extra)

    @contextmanager
    def provider(self, env: str) -> Iterator[tuple[engine.Session, SupersetProvider]]:
        """The engine on one environment's Superset only, and its provider (for the client's counters)."""
        with engine.open_session(self.root, env, self.environ, systems=["superset"]) as session:
            provider = session.providers["superset"]
            assert isinstance(provider, SupersetProvider)
            yield session, provider

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def spec_files(self) -> dict[str, bytes]:
        base = self.root / "specs" / "superset"
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def superset_project(
    tmp_path: Path, prod: SupersetInstance, staging: SupersetInstance, qa: SupersetInstance
) -> SupersetProject:
    """The example with its Superset asset specs removed (roles kept), ready for a first pull."""
    root = copy_example(tmp_path)
    for folder in ("dashboards", "charts", "datasets", "databases"):
        shutil.rmtree(root / "specs" / "superset" / folder, ignore_errors=True)
    (root / "environments" / "staging.yaml").write_text(STAGING)
    environ = {"RECONCILER_FINGERPRINT_KEY": "test-fingerprint-key"}
    for env, instance in (("PROD", prod), ("STAGING", staging), ("QA", qa)):
        environ[f"SUPERSET_{env}_URL"] = instance.url
        environ[f"SUPERSET_{env}_PASSWORD"] = instance.password
        environ[f"SUPERSET_{env}_WAREHOUSE_URI"] = instance.warehouse_uri
    return SupersetProject(root, environ)
