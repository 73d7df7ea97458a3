"""`reconcile promote` against the Kubernetes and Dagster stand-ins: the pins it writes, and the source it trusts."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.kube_server import KubeStandIn
from reconciler.sandbox.launch import running_standins
from tests.helpers import Project, copy_example

DIGEST = "sha256:" + "ab" * 32
PROD_FILE = "environments/prod.yaml"
PROD_IMAGES = """  images:
    dbt:
      tag: "1.9.0"
    ingestion:
      tag: "2026.11.18"
    analytics:
      tag: "2026.11.12"
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """The example project on the stand-ins only (Kubernetes, and Dagster's GraphQL answers derived from it)."""
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        project = Project(root, standins, standins.environment(), systems=("workloads",))
        project.edit("environments/qa.yaml", "timeoutSeconds: 300\n", "timeoutSeconds: 300\n    pollSeconds: 0.1\n")
        kube(project).rollout_seconds = 0.2
        yield project


def kube(project: Project) -> KubeStandIn:
    assert project.standins.kube is not None
    return project.standins.kube


def prod_bytes(project: Project) -> bytes:
    return (project.root / PROD_FILE).read_bytes()


def set_prod_images(project: Project, images: str, *, crlf: bool = False) -> bytes:
    """Replace prod's `images:` block with `images` (written as is), the whole file in CRLF when asked."""
    path = project.root / PROD_FILE
    text = path.read_text().replace(PROD_IMAGES, images)
    assert images in text
    data = (text.replace("\n", "\r\n") if crlf else text).encode()
    path.write_bytes(data)
    return data


def changed(before: bytes, after: bytes) -> list[str]:
    """The lines that differ, as `-old` / `+new`, line endings kept visible."""
    old, new = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    return [
        line for line in difflib.unified_diff(old, new, n=0) if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def apply_qa(project: Project) -> None:
    applied = project.run("apply", "--env", "qa", "--auto-approve")
    assert applied.exit_code == 0, applied.output


# ---- item 3: the right pins, to the right values --------------------------------------------------


def test_a_one_line_flow_mapping_gets_exactly_the_promoted_component(project: Project) -> None:
    before = set_prod_images(
        project,
        '  images: {dbt: {tag: "1.9.0"}, ingestion: {tag: "2026.11.18"}, analytics: {tag: "2026.11.12"}}\n',
    )
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "ingestion")
    assert result.exit_code == 0, result.output
    assert changed(before, prod_bytes(project)) == [
        '-  images: {dbt: {tag: "1.9.0"}, ingestion: {tag: "2026.11.18"}, analytics: {tag: "2026.11.12"}}\n',
        '+  images: {dbt: {tag: "1.9.0"}, ingestion: {tag: "2026.11.20"}, analytics: {tag: "2026.11.12"}}\n',
    ]
    assert "Promoted ingestion 2026.11.18 -> 2026.11.20" in result.output


def test_a_digest_the_source_does_not_pin_is_dropped_not_left_beside_the_new_tag(project: Project) -> None:
    before = set_prod_images(
        project,
        f'  images:\n    dbt: {{digest: {DIGEST}, tag: "1.9.0"}}   # pulled by digest\n'
        '    ingestion:\n      tag: "2026.11.18"\n    analytics:\n      tag: "2026.11.12"\n',
    )
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 0, result.output
    assert changed(before, prod_bytes(project)) == [
        f'-    dbt: {{digest: {DIGEST}, tag: "1.9.0"}}   # pulled by digest\n',
        '+    dbt: {tag: "1.9.1"}   # pulled by digest\n',
    ]
    plan = project.run("plan", "--env", "prod")
    assert '-> "ghcr.io/acme/dbt-project:1.9.1"' in plan.output and "@sha256" not in plan.output


def test_an_anchor_shared_by_two_components_is_refused_and_the_file_left_untouched(project: Project) -> None:
    before = set_prod_images(
        project,
        '  images:\n    dbt:\n      tag: "1.9.0"\n    ingestion: &same {tag: "2026.11.12"}\n    analytics: *same\n',
    )
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "ingestion")
    assert result.exit_code == 1
    assert "environments/prod.yaml:38: workloads.images.ingestion uses &same" in result.output
    assert "Promoted" not in result.output and "Traceback" not in result.output
    assert prod_bytes(project) == before


# ---- item 4: files that still validate, byte for byte around the pins ------------------------------


def test_tags_are_always_written_quoted_so_a_version_never_becomes_a_number(project: Project) -> None:
    project.edit("environments/qa.yaml", 'tag: "1.9.1"', 'tag: "1.10"')
    before = set_prod_images(project, PROD_IMAGES.replace('tag: "1.9.0"', "tag: 1.9.0"))
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 0, result.output
    assert changed(before, prod_bytes(project)) == ["-      tag: 1.9.0\n", '+      tag: "1.10"\n']
    assert project.run("validate").exit_code == 0


def test_a_pin_written_as_a_variable_is_refused_not_overwritten(project: Project) -> None:
    before = set_prod_images(project, PROD_IMAGES.replace('tag: "1.9.0"', "tag: ${PROD_DBT_TAG:-1.9.0}"))
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 1
    assert "workloads.images.dbt.tag is '${PROD_DBT_TAG:-1.9.0}'" in result.output
    assert "comes from a variable" in result.output
    assert prod_bytes(project) == before


def test_a_multi_line_flow_mapping_and_braces_in_comments_keep_every_other_byte(project: Project) -> None:
    before = set_prod_images(
        project,
        "  images: {   # { a brace in a comment\n"
        '    dbt: {tag: "1.9.0"},      # dbt } models\n'
        "    ingestion: {\n"
        "      tag: '2026.11.18'   # {not: yaml}\n"
        "    },\n"
        '    analytics: {tag: "2026.11.12"}\n'
        "  }\n",
    )
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod")
    assert result.exit_code == 0, result.output
    assert changed(before, prod_bytes(project)) == [
        '-    dbt: {tag: "1.9.0"},      # dbt } models\n',
        '+    dbt: {tag: "1.9.1"},      # dbt } models\n',
        "-      tag: '2026.11.18'   # {not: yaml}\n",
        "+      tag: '2026.11.20'   # {not: yaml}\n",
    ]
    assert project.run("validate").exit_code == 0


def test_a_crlf_file_stays_crlf_with_one_changed_line_per_image(project: Project) -> None:
    before = set_prod_images(project, PROD_IMAGES, crlf=True)
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod")
    assert result.exit_code == 0, result.output
    after = prod_bytes(project)
    assert changed(before, after) == [
        '-      tag: "1.9.0"\r\n',
        '+      tag: "1.9.1"\r\n',
        '-      tag: "2026.11.18"\r\n',
        '+      tag: "2026.11.20"\r\n',
    ]
    assert after.count(b"\n") == after.count(b"\r\n") == before.count(b"\r\n")


def test_a_digest_is_added_under_the_tag_in_a_block_entry(project: Project) -> None:
    project.edit(
        "environments/qa.yaml", 'tag: "1.9.1"          # being validated in QA', f'tag: "1.9.1"\n      digest: {DIGEST}'
    )
    before = set_prod_images(project, PROD_IMAGES)
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 0, result.output
    assert changed(before, prod_bytes(project)) == [
        '-      tag: "1.9.0"\n',
        '+      tag: "1.9.1"\n',
        f'+      digest: "{DIGEST}"\n',
    ]


# ---- item 5: a source that is live, rolled out and healthy for every carrier ------------------------


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_promote_refuses_dbt_while_the_qa_daemon_is_in_crash_loop_back_off(project: Project) -> None:
    """dbt has no Dagster location: its daemon's rollout is the only sign its image is bad."""
    project.edit("environments/qa.yaml", "rollbackOnFailure: true", "rollbackOnFailure: false")
    project.edit("environments/qa.yaml", "timeoutSeconds: 300", "timeoutSeconds: 3")
    kube(project).fail_images("busybox:*", reason="CrashLoopBackOff")  # the daemon's container crashes on start
    failed = project.run("apply", "--env", "qa", "--auto-approve")
    assert failed.exit_code == 1 and "CrashLoopBackOff" in failed.output
    plan = project.run("plan", "--env", "qa")
    assert "dbt-project:" not in plan.output and "degraded" in plan.output  # dbt carriers run 1.9.1, not rolled out
    before = prod_bytes(project)

    refused = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert refused.exit_code == 1
    assert "qa runs the pinned images but they are not rolled out and healthy" in refused.output
    assert "dagster-qa: deployment/dagster-daemon/dagster-daemon/env/DBT_IMAGE (carrier of dbt)" in refused.output
    assert "CrashLoopBackOff" in refused.output
    assert prod_bytes(project) == before


def test_promote_refuses_a_rollout_that_is_still_in_progress(project: Project) -> None:
    apply_qa(project)
    kube(project).rollout_seconds = 3600.0  # the next rollout takes an hour
    kube(project).edit(
        "/apis/apps/v1/namespaces/dagster-qa/deployments/dagster-user-code-ingestion",
        lambda d: d["spec"]["template"]["metadata"].setdefault("annotations", {}).update({"restartedAt": "now"}),
    )
    before = prod_bytes(project)
    refused = project.run("promote", "--from", "qa", "--to", "prod", "--component", "ingestion")
    assert refused.exit_code == 1
    assert "deployment/dagster-user-code-ingestion/user-code (carrier of ingestion): rollout not complete" in (
        refused.output
    )
    assert prod_bytes(project) == before


def test_promote_goes_ahead_once_every_carrier_is_rolled_out_and_healthy(project: Project) -> None:
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod")
    assert result.exit_code == 0, result.output
    assert "Promoted dbt 1.9.0 -> 1.9.1, ingestion 2026.11.18 -> 2026.11.20" in result.output
