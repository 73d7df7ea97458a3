"""`reconcile validate` on workloads specs (repositories, pins, shared carriers), and a kubeconfig that is not one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example

DIGEST = "sha256:" + "cd" * 32


def validate(root: Path) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), "validate"], catch_exceptions=False)


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


# ---- item 8: two components on one carrier ----------------------------------------------------------


def test_two_components_on_one_carrier_are_refused_naming_both(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    edit(
        root,
        "specs/workloads.yaml",
        "        deployment: dagster-user-code-analytics\n",
        "        deployment: dagster-user-code-ingestion\n",
    )
    result = validate(root)
    assert result.exit_code == 1
    assert (
        "specs/workloads.yaml:30: components.analytics.carriers.0: analytics and ingestion both carry their image in "
        "deployment/dagster-user-code-ingestion/user-code"
    ) in result.output


def test_two_components_meeting_in_one_namespace_only_in_an_environment_are_refused_there(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    edit(
        root,
        "specs/workloads.yaml",
        "        deployment: dagster-user-code-analytics\n",
        "        deployment: dagster-user-code-ingestion\n        namespace: dagster-qa\n",
    )
    result = validate(root)
    assert result.exit_code == 1
    assert "environments/qa.yaml" in result.output and "environments/prod.yaml" not in result.output
    assert (
        "workloads.kubernetes.namespace: ingestion and analytics both carry their image in dagster-qa: "
        "deployment/dagster-user-code-ingestion/user-code in this environment"
    ) in result.output


# ---- item 11: repositories, digest-only pins, `latest`, the kubeconfig --------------------------------


@pytest.mark.parametrize(
    ("repository", "message"),
    [
        ("ghcr.io/Acme/dbt-project", "must be lower case"),
        ("ghcr.io/acme/dbt-project:1.0", "holds a tag ('1.0')"),
        ("dbt:1.0", "holds a tag ('1.0')"),
        ("https://ghcr.io/acme/dbt-project", "has a URL scheme: write it as 'ghcr.io/acme/dbt-project'"),
        ("ghcr.io/acme/dbt project", "must not be empty or contain spaces"),
        (f"ghcr.io/acme/dbt-project@{DIGEST}", "holds a digest"),
    ],
)
def test_a_repository_docker_would_refuse_is_refused_at_its_line(tmp_path: Path, repository: str, message: str) -> None:
    root = copy_example(tmp_path)
    edit(root, "specs/workloads.yaml", "repository: ghcr.io/acme/dbt-project", f"repository: {repository}")
    result = validate(root)
    assert result.exit_code == 1
    assert "specs/workloads.yaml:6: components.dbt.repository: image repository" in result.output
    assert message in result.output and "Traceback" not in result.output


def test_registry_hosts_with_ports_and_nested_paths_are_valid(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    edit(root, "specs/workloads.yaml", "ghcr.io/acme/dbt-project", "registry.internal:5000/data/team__a/dbt.project")
    assert validate(root).exit_code == 0


def test_latest_is_valid_but_warned_about_at_its_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    edit(root, "environments/qa.yaml", 'tag: "2026.11.12"', 'tag: "latest"')
    result = CliRunner().invoke(main, ["--root", str(root), "validate"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Warning: environments/qa.yaml:46: workloads.images.analytics.tag: 'latest' names no version" in (
        result.stderr
    )
    edit(root, "environments/qa.yaml", 'tag: "latest"', f'tag: "latest"\n      digest: {DIGEST}')
    pinned = CliRunner().invoke(main, ["--root", str(root), "validate"], catch_exceptions=False)
    assert pinned.exit_code == 0 and "Warning" not in pinned.stderr  # the digest pins it


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        yield Project(root, standins, standins.environment(), systems=("workloads",))


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_digest_only_pin_validates_plans_and_applies(project: Project) -> None:
    project.edit("environments/qa.yaml", 'tag: "2026.11.12"', f"digest: {DIGEST}")
    assert validate(project.root).exit_code == 0
    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert f'-> "ghcr.io/acme/dagster-analytics@{DIGEST[:40]}' in plan.output
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert "No changes." in project.run("plan", "--env", "qa").output


@pytest.mark.parametrize(
    "kubeconfig",
    ["clusters: [{name: a, cluster: {server: http://x}}\n", "- just\n- a list\n", "clusters: 5\n", "\x00\x01"],
)
def test_a_malformed_kubeconfig_is_a_clear_error_not_a_traceback(project: Project, kubeconfig: str) -> None:
    path = project.root / "broken-kubeconfig"
    path.write_text(kubeconfig)
    result = project.run("plan", "--env", "qa", KUBECONFIG_QA=str(path))
    assert result.exit_code == 1
    assert f"Error: workloads: cannot load Kubernetes configuration: cannot load kubeconfig {path}" in result.output
    assert "Traceback" not in result.output
