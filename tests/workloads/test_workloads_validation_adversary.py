"""`reconcile validate` on image pins ending in a line break, as a careless hand writes them.

`tag: "1.9.1\\n"` (or a block scalar `tag: |`) is "1.9.1" and a line break; Python's `$` matches before
a final line break, so such pins validated and only the Kubernetes API refused them, mid-apply ("must
not have leading or trailing whitespace").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_example
from tests.workloads.test_workloads_validation import DIGEST, edit, validate


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('tag: "1.9.1"', 'tag: "1.9.1\\n"', "workloads.images.dbt: tag"),
        ('tag: "1.9.1"', f'digest: "{DIGEST}\\n"', "workloads.images.dbt: digest"),
    ],
)
def test_a_pin_ending_in_a_line_break_is_refused(tmp_path: Path, old: str, new: str, field: str) -> None:
    root = copy_example(tmp_path)
    edit(root, "environments/qa.yaml", old, new)
    result = validate(root)
    assert result.exit_code == 1, result.output
    assert field in result.output and "Traceback" not in result.output


def test_a_repository_ending_in_a_line_break_is_refused(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    edit(root, "specs/workloads.yaml", "repository: ghcr.io/acme/dbt-project", 'repository: "ghcr.io/acme/dbt\\n"')
    result = validate(root)
    assert result.exit_code == 1, result.output
    assert "components.dbt.repository" in result.output
