"""Image rollouts as real clusters shape them, against the Kubernetes and Dagster stand-ins.

Dagster's Helm chart renders each user-code Deployment with `DAGSTER_CURRENT_IMAGE` set, in the
container's env, to the very image of that container; the code server reports that variable as the
image it serves (`displayMetadata`). Setting the container's image alone leaves it naming the old one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example
from tests.workloads.test_rollout_trust import INGESTION, NEW_INGESTION, OLD_INGESTION, image, kill_qa_apply_at, kube


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        yield Project(root, standins, standins.environment(), systems=("workloads",))


def current_image_env(project: Project) -> list[dict[str, Any]]:
    container = kube(project).get_object(INGESTION)["spec"]["template"]["spec"]["containers"][0]
    return [item for item in container.get("env") or [] if item["name"] == "DAGSTER_CURRENT_IMAGE"]


def as_helm_renders_it(project: Project) -> None:
    def add(obj: dict[str, Any]) -> None:
        container = obj["spec"]["template"]["spec"]["containers"][0]
        container.setdefault("env", []).append({"name": "DAGSTER_CURRENT_IMAGE", "value": container["image"]})

    kube(project).edit(INGESTION, add)
    assert current_image_env(project) == [{"name": "DAGSTER_CURRENT_IMAGE", "value": OLD_INGESTION}]


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_location_deployed_by_dagsters_helm_chart_passes_the_gate_on_the_image_it_now_serves(
    project: Project,
) -> None:
    as_helm_renders_it(project)
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output  # was: "serves 2026.11.18, not 2026.11.20", rolled back
    assert f"dagster location ingestion: serves {NEW_INGESTION}" in applied.output
    assert image(project) == NEW_INGESTION
    assert current_image_env(project) == [{"name": "DAGSTER_CURRENT_IMAGE", "value": NEW_INGESTION}]
    assert "No changes." in project.run("plan", "--env", "qa").output


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_rollback_puts_dagster_current_image_back_with_the_image(project: Project) -> None:
    as_helm_renders_it(project)
    kube(project).fail_images("*dagster-ingestion:2026.11.20", reason="ImagePullBackOff")
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 1, applied.output
    assert f"rolled back to {OLD_INGESTION}" in applied.output
    assert image(project) == OLD_INGESTION
    assert current_image_env(project) == [{"name": "DAGSTER_CURRENT_IMAGE", "value": OLD_INGESTION}]


# ---- two components on one Deployment -----------------------------------------------------------------

DAEMON = "/apis/apps/v1/namespaces/dagster-qa/deployments/dagster-daemon"
OLD_PLATFORM, NEW_PLATFORM = "ghcr.io/acme/dagster-platform:1.0", "ghcr.io/acme/dagster-platform:1.1"
PLATFORM = """
  zplatform:
    repository: ghcr.io/acme/dagster-platform
    carriers:
      - kind: containerImage
        deployment: dagster-daemon
        container: dagster-daemon
"""


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Project]:
    """The daemon Deployment carries two components: dbt (its DBT_IMAGE) and the platform (its image)."""
    root = copy_example(tmp_path)
    (root / "specs" / "workloads.yaml").write_text((root / "specs" / "workloads.yaml").read_text() + PLATFORM)
    for env, tag in (("prod", "1.0"), ("qa", "1.1")):
        path = root / "environments" / f"{env}.yaml"
        text = path.read_text()
        path.write_text(text.replace("    analytics:\n", f'    zplatform:\n      tag: "{tag}"\n    analytics:\n', 1))
    with running_standins(root) as standins:
        yield Project(root, standins, standins.environment(), systems=("workloads",))


def daemon_image(project: Project) -> str:
    return str(kube(project).get_object(DAEMON)["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_failed_rollout_of_one_component_is_finished_even_when_another_shares_its_deployment(
    shared: Project,
) -> None:
    """The platform's broken image is left live (its rollback's writes conflicted); dbt, on the same Deployment and
    unchanged, is degraded by it too. The next apply must roll the platform back, not stop at dbt."""
    project = shared
    assert daemon_image(project) == OLD_PLATFORM
    kube(project).fail_images("*dagster-platform:1.1", reason="ImagePullBackOff")

    def conflict_once_live() -> None:
        for _ in range(3000):
            if daemon_image(project) == NEW_PLATFORM:
                kube(project).force_conflicts(50)
                return
            threading.Event().wait(0.01)

    watcher = threading.Thread(target=conflict_once_live, daemon=True)
    watcher.start()
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    watcher.join(timeout=10)
    kube(project).force_conflicts(0)
    assert applied.exit_code == 1, applied.output
    assert f"The rollback to {OLD_PLATFORM} failed too" in applied.output, applied.output
    assert daemon_image(project) == NEW_PLATFORM

    again = project.run("apply", "--env", "qa", "--auto-approve")
    assert again.exit_code == 1, again.output
    assert f"rolled back to {OLD_PLATFORM}" in again.output, again.output
    assert daemon_image(project) == OLD_PLATFORM


# ---- a kill at another moment: during the rollback ------------------------------------------------------


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_kill_while_the_rollback_rolls_out_is_finished_by_the_next_apply(project: Project) -> None:
    """Killed after the rollback was written, while it waits for the old image to become available again: the
    next apply plans the pinned image again (degraded or not, by then), gates it and rolls back again, recorded
    lastGood intact."""
    kube(project).fail_images("*dagster-ingestion:2026.11.20", reason="ImagePullBackOff")

    def slow_rollouts_from_now() -> None:  # the rollback's own rollout: a wide window for the kill (under the
        for _ in range(3000):  # sandbox's 5 s progress deadline, so it is not a failure of its own)
            if image(project) == NEW_INGESTION:
                kube(project).rollout_seconds = 4
                return
            threading.Event().wait(0.01)

    threading.Thread(target=slow_rollouts_from_now, daemon=True).start()
    kill_qa_apply_at(project, lambda line: "rolling back dagster-qa: deployment/dagster-user-code-ingestion" in line)
    assert image(project) == OLD_INGESTION  # written back, not yet available

    kube(project).rollout_seconds = 0.2
    plan = project.run("plan", "--env", "qa")
    assert "~ update workloads.image/ingestion@deployment/dagster-user-code-ingestion/user-code" in plan.output
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 1, applied.output
    assert f"rolled back to {OLD_INGESTION}" in applied.output and "Traceback" not in applied.output
    assert image(project) == OLD_INGESTION
    after = project.run("plan", "--env", "qa")
    assert f'image: "{OLD_INGESTION}" -> "{NEW_INGESTION}"' in after.output and "degraded" not in after.output
