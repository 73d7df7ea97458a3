"""Image rollouts an adversary attacks: a kill mid-rollout, a failed rollback, a half-moved component, a carrier
changed during the gate, `valueFrom`, absent and LOADING locations (issue 13, items 1, 2, 6, 7, 9, 10).

The CLI (in-process, and a real subprocess for the kill) against the Kubernetes stand-in and the Dagster stand-in,
whose health follows the images the stand-in runs (a tag with "broken" fails to load).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.kube_server import KubeStandIn
from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example

QA = "dagster-qa"
INGESTION = "/apis/apps/v1/namespaces/dagster-qa/deployments/dagster-user-code-ingestion"
DAEMON = "/apis/apps/v1/namespaces/dagster-qa/deployments/dagster-daemon"
IMAGES_MAP = "/api/v1/namespaces/dagster-qa/configmaps/dagster-images"
OLD_INGESTION, NEW_INGESTION = "ghcr.io/acme/dagster-ingestion:2026.11.18", "ghcr.io/acme/dagster-ingestion:2026.11.20"
OLD_DBT, NEW_DBT = "ghcr.io/acme/dbt-project:1.9.0", "ghcr.io/acme/dbt-project:1.9.1"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        yield Project(root, standins, standins.environment(), systems=("workloads",))


def kube(project: Project) -> KubeStandIn:
    assert project.standins.kube is not None
    return project.standins.kube


def image(project: Project, path: str = INGESTION) -> str:
    return str(kube(project).get_object(path)["spec"]["template"]["spec"]["containers"][0]["image"])


def dbt_env(project: Project) -> dict[str, object]:
    env = kube(project).get_object(DAEMON)["spec"]["template"]["spec"]["containers"][0]["env"]
    return dict(next(item for item in env if item["name"] == "DBT_IMAGE"))


def dbt_key(project: Project) -> str:
    return str(kube(project).get_object(IMAGES_MAP)["data"]["dbt"])


def when_image(project: Project, wanted: str, then: Callable[[], None]) -> threading.Thread:
    """Call `then()` as soon as the ingestion Deployment carries `wanted` (what a second writer would see)."""

    def watch() -> None:
        for _ in range(3000):
            if image(project) == wanted:
                then()
                return
            threading.Event().wait(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def kill_qa_apply_at(project: Project, reached: Callable[[str], bool]) -> None:
    """`apply --env qa --system workloads` in a process of its own, SIGKILLed at the first output line `reached`."""
    environ = {**os.environ, **project.environ, "PYTHONUNBUFFERED": "1"}
    args = ["--root", str(project.root), "apply", "--env", "qa", "--auto-approve", "--system", "workloads"]
    process = subprocess.Popen(
        [sys.executable, "-c", "from reconciler.cli import main; main()", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if reached(line):
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "".join(seen)


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_kill_during_a_broken_rollout_is_degraded_on_the_re_run_which_gates_and_rolls_back(project: Project) -> None:
    kube(project).fail_images("*dagster-ingestion:2026.11.20", reason="ImagePullBackOff")
    # killed while it waits for the broken rollout
    kill_qa_apply_at(project, lambda line: "dagster-user-code-ingestion" in line and "updated" in line)
    assert image(project) == NEW_INGESTION  # the broken image is live, its rollout stuck

    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert "No changes" not in plan.output
    assert "~ update workloads.image/ingestion@deployment/dagster-user-code-ingestion/user-code" in plan.output
    assert 'health: "degraded: rollout of dagster-user-code-ingestion' in plan.output
    health = project.run("health", "--env", "qa")
    assert health.exit_code == 1  # plan and health agree: degraded
    assert "deployment dagster-qa/dagster-user-code-ingestion" in health.output and "rollout" in health.output

    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 1, applied.output
    assert "ImagePullBackOff" in applied.output
    assert f"rolled back to {OLD_INGESTION}" in applied.output  # the last image that passed, recorded before
    assert image(project) == OLD_INGESTION
    assert "Traceback" not in applied.output

    after = project.run("plan", "--env", "qa")
    assert f'image: "{OLD_INGESTION}" -> "{NEW_INGESTION}"' in after.output and "degraded" not in after.output
    assert project.run("health", "--env", "qa").exit_code == 0  # and they agree again: healthy


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_component_moves_as_a_unit_a_failed_daemon_rollout_puts_the_config_map_key_back_too(
    project: Project,
) -> None:
    kube(project).fail_images("busybox:*", reason="CrashLoopBackOff")  # the daemon's pods crash once restarted
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 1, applied.output
    assert "CrashLoopBackOff" in applied.output and f"rolled back to {OLD_DBT}" in applied.output
    assert dbt_env(project)["value"] == OLD_DBT
    assert dbt_key(project) == OLD_DBT  # written first and passed alone, but it is dbt's: back with the rest
    assert image(project) == OLD_INGESTION  # stopped before ingestion

    kube(project).clear_failed_images()
    assert project.run("apply", "--env", "qa", "--auto-approve").exit_code == 0
    assert (dbt_env(project)["value"], dbt_key(project), image(project)) == (NEW_DBT, NEW_DBT, NEW_INGESTION)
    assert "No changes." in project.run("plan", "--env", "qa").output
    state = (project.root / ".reconciler" / "state" / "qa.json").read_text()
    assert f'"lastGood": "{NEW_DBT}"' in state and f'"lastGood": "{NEW_INGESTION}"' in state


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_failed_rollback_says_the_gate_failed_the_rollback_failed_and_what_is_live_then_plans_degraded(
    project: Project,
) -> None:
    kube(project).fail_images("*dagster-ingestion:2026.11.20")
    watcher = when_image(project, NEW_INGESTION, lambda: kube(project).force_conflicts(50))  # every write conflicts
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    watcher.join(timeout=10)
    kube(project).force_conflicts(0)
    assert applied.exit_code == 1, applied.output
    assert "the health gate failed: rollout of deployment dagster-qa/dagster-user-code-ingestion failed" in (
        applied.output
    )
    assert f"The rollback to {OLD_INGESTION} failed too" in applied.output and "conflicting" in applied.output
    assert f"Live now: dagster-qa: deployment/dagster-user-code-ingestion/user-code = {NEW_INGESTION}" in (
        applied.output
    )
    assert image(project) == NEW_INGESTION

    plan = project.run("plan", "--env", "qa")
    assert (
        "No changes" not in plan.output
        and 'health: "degraded: rollout of dagster-user-code-ingestion failed' in plan.output
    )
    again = project.run("apply", "--env", "qa", "--auto-approve")  # once writes go through, it finishes the job
    assert again.exit_code == 1 and f"rolled back to {OLD_INGESTION}" in again.output
    assert image(project) == OLD_INGESTION


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_gate_does_not_pass_on_an_image_someone_else_wrote_during_the_rollout(project: Project) -> None:
    other = "ghcr.io/acme/dagster-ingestion:2026.11.19"

    def second_writer() -> None:
        def set_other(obj: dict[str, object]) -> None:
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = other  # type: ignore[index]

        kube(project).edit(INGESTION, set_other)

    watcher = when_image(project, NEW_INGESTION, second_writer)
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    watcher.join(timeout=10)
    assert applied.exit_code == 1, applied.output
    assert f"now holds {other}, not {NEW_INGESTION}" in applied.output
    assert "healthy" not in applied.output.split("dagster-user-code-ingestion/user-code: ")[-1]
    assert image(project) == other  # someone else's write is not rolled back over


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_the_gate_confirms_the_image_the_location_serves(project: Project) -> None:
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert f"dagster location ingestion: serves {NEW_INGESTION}" in applied.output


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_an_env_var_set_with_value_from_is_not_an_image_yet_and_is_set(project: Project) -> None:
    def from_config_map(obj: dict[str, object]) -> None:
        container = obj["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        ref = {"configMapKeyRef": {"name": "dagster-images", "key": "dbt"}}
        container["env"] = [{"name": "DBT_IMAGE", "valueFrom": ref}]

    kube(project).edit(DAEMON, from_config_map)
    plan = project.run("plan", "--env", "qa")
    assert plan.exit_code == 0, plan.output
    assert f'image: "(valueFrom configMapKeyRef dagster-images/dbt)" -> "{NEW_DBT}"' in plan.output
    assert "workloads.image/ingestion" in plan.output  # the other components are planned as usual
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert dbt_env(project) == {"name": "DBT_IMAGE", "value": NEW_DBT}
    assert "No changes." in project.run("plan", "--env", "qa").output


def test_health_fails_when_a_pinned_location_is_absent_and_the_plan_shows_it_degraded(project: Project) -> None:
    assert project.run("health", "--env", "qa").exit_code == 0
    project.edit("specs/workloads.yaml", "dagsterLocation: ingestion", "dagsterLocation: ingestion-v2")
    health = project.run("health", "--env", "qa")
    assert health.exit_code == 1
    assert "code location ingestion-v2" in health.output and "ABSENT" in health.output
    plan = project.run("plan", "--env", "qa")
    assert "Dagster has no code location 'ingestion-v2'" in plan.output


def test_a_loading_location_is_reported_as_loading_not_healthy(project: Project) -> None:
    project.standins.dagster["qa"].loading.add("analytics")
    health = project.run("health", "--env", "qa")
    assert health.exit_code == 1
    assert "LOADING: Dagster is still loading its code" in health.output
    assert "healthy (LOADING)" not in health.output
    assert "code location analytics is still LOADING" in project.run("plan", "--env", "qa").output
