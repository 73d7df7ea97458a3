"""Promotion rewrites exactly the image lines of a commented environment file, and its read-back catches any other."""

from __future__ import annotations

import difflib

import pytest

from reconciler.spec.loader import Environment, load_environments
from reconciler.systems.workloads.promotion import PromotionRefused, check_promoted, rewrite_image_pins
from reconciler.systems.workloads.spec import ImageVersion

PROD = """\
# Production: pinned images. Promote with `reconcile promote --from qa --to prod`.
environment: prod

workloads:
  kubernetes: {namespace: dagster-prod}   # the prod cluster
  images:
    # dbt models, launched by Dagster runs
    dbt:
      tag: "1.8.0"      # released 2026-11-01
    ingestion: {tag: '2026.11.2'}  # flow style kept
    analytics:
      tag: 2026.10.9
      digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_only_the_tag_lines_change_and_comments_and_quotes_survive() -> None:
    after = rewrite_image_pins(
        PROD,
        "environments/prod.yaml",
        {
            "dbt": ImageVersion(tag="1.9.1"),
            "ingestion": ImageVersion(tag="2026.11.5"),
        },
    )
    assert changed_lines(PROD, after) == [
        '-      tag: "1.8.0"      # released 2026-11-01',
        "-    ingestion: {tag: '2026.11.2'}  # flow style kept",
        '+      tag: "1.9.1"      # released 2026-11-01',
        "+    ingestion: {tag: '2026.11.5'}  # flow style kept",
    ]


def test_digests_are_replaced_added_and_removed_in_place() -> None:
    digest = "sha256:" + "2" * 64
    after = rewrite_image_pins(
        PROD,
        "environments/prod.yaml",
        {
            "analytics": ImageVersion(tag="2026.11.1", digest=digest),
            "dbt": ImageVersion(tag="1.9.1", digest=digest),
        },
    )
    diff = changed_lines(PROD, after)
    assert f'+      digest: "{digest}"' in diff and '+      tag: "2026.11.1"' in diff  # tags always quoted
    assert diff.count(f'+      digest: "{digest}"') == 2  # analytics replaced, dbt added under its tag
    removed = rewrite_image_pins(PROD, "environments/prod.yaml", {"analytics": ImageVersion(tag="2026.11.1")})
    assert "digest" not in removed.split("analytics:")[1]


WORKLOADS = """components:
  dbt: {repository: ghcr.io/acme/dbt, carriers: [{kind: configMapKey, configMap: images, key: dbt}]}
  ingestion: {repository: ghcr.io/acme/ingestion, carriers: [{kind: configMapKey, configMap: images, key: ingestion}]}
"""


def load_prod(text: str) -> Environment:
    files = {"specs/workloads.yaml": WORKLOADS, "environments/prod.yaml": text}
    return load_environments(files, {})["prod"]


def test_the_read_back_refuses_an_edit_that_moved_another_pin_or_anything_else() -> None:
    before = load_prod("environment: prod\nworkloads:\n  images: {dbt: {tag: '1'}, ingestion: {tag: '2'}}\n")
    wanted = {"dbt": ImageVersion(tag="3")}
    check_promoted(
        before, load_prod("environment: prod\nworkloads:\n  images: {dbt: {tag: '3'}, ingestion: {tag: '2'}}\n"), wanted
    )
    both = load_prod("environment: prod\nworkloads:\n  images: {dbt: {tag: '3'}, ingestion: {tag: '3'}}\n")
    with pytest.raises(PromotionRefused, match=r"wrong pins \(ingestion: 3 \(expected 2\)\)"):
        check_promoted(before, both, wanted)
    stale_digest = load_prod(
        "environment: prod\nworkloads:\n  images:\n"
        f"    dbt: {{tag: '3', digest: 'sha256:{'a' * 64}'}}\n"
        "    ingestion: {tag: '2'}\n"
    )
    with pytest.raises(PromotionRefused, match="wrong pins"):
        check_promoted(before, stale_digest, wanted)
    elsewhere = load_prod(
        "environment: prod\ndescription: changed\nworkloads:\n  images: {dbt: {tag: '3'}, ingestion: {tag: '2'}}\n"
    )
    with pytest.raises(PromotionRefused, match="more than the image pins"):
        check_promoted(before, elsewhere, wanted)
