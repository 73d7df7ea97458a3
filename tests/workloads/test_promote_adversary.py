"""`reconcile promote` on target files a careless hand or another process shaped: symlinks, a BOM, duplicate keys.

Against the Kubernetes and Dagster stand-ins, as `test_promote.py`: either exactly the promoted pins
change, in the file the environment really is, or the command fails and the file is untouched.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from tests.helpers import Project
from tests.workloads.test_promote import PROD_FILE, PROD_IMAGES, apply_qa, changed, set_prod_images
from tests.workloads.test_promote import project as project  # the same fixture: the example on the stand-ins only


def test_a_symlinked_environment_file_is_edited_where_it_lives_and_stays_a_symlink(project: Project) -> None:
    """environments/prod.yaml -> ../shared/prod.yaml: the link is kept and the file it names gets the pin."""
    link = project.root / PROD_FILE
    real = project.root / "shared" / "prod.yaml"
    real.parent.mkdir()
    real.write_bytes(link.read_bytes())
    link.unlink()
    link.symlink_to(Path("..") / "shared" / "prod.yaml")
    before = real.read_bytes()
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 0, result.output
    assert link.is_symlink(), "promote replaced the symlink with a copy"
    assert changed(before, real.read_bytes()) == ['-      tag: "1.9.0"\n', '+      tag: "1.9.1"\n']
    assert project.run("validate").exit_code == 0


def test_a_file_with_a_byte_order_mark_keeps_it_and_changes_one_line(project: Project) -> None:
    path = project.root / PROD_FILE
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    before = path.read_bytes()
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 0, result.output
    after = path.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf")
    assert changed(before[3:], after[3:]) == ['-      tag: "1.9.0"\n', '+      tag: "1.9.1"\n']


def test_a_component_pinned_twice_is_refused_and_the_file_left_untouched(project: Project) -> None:
    apply_qa(project)
    before = set_prod_images(project, PROD_IMAGES + '    dbt:\n      tag: "1.8.0"\n')
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 1
    assert "environments/prod.yaml:42: dbt: duplicate key" in result.output
    assert "Traceback" not in result.output and "Promoted" not in result.output
    assert (project.root / PROD_FILE).read_bytes() == before


def test_a_digest_only_pin_takes_the_sources_tag_in_its_place(project: Project) -> None:
    digest = "sha256:" + "cd" * 32
    before = set_prod_images(project, PROD_IMAGES.replace('tag: "1.9.0"', f"digest: {digest}  # by digest"))
    apply_qa(project)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    assert result.exit_code == 0, result.output
    assert changed(before, (project.root / PROD_FILE).read_bytes()) == [
        f"-      digest: {digest}  # by digest\n",
        '+      tag: "1.9.1"  # by digest\n',
    ]


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failure", ["read-only directory", "disk full"])
def test_a_target_that_cannot_be_written_is_a_clear_error_and_the_file_is_untouched(
    project: Project, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    import reconciler.atomic

    apply_qa(project)
    path = project.root / PROD_FILE
    before = path.read_bytes()
    if failure == "read-only directory":

        def refuse(*_args: object, **_kwargs: object) -> tuple[int, str]:
            raise OSError(errno.EROFS, "Read-only file system", str(path.parent))

        monkeypatch.setattr(reconciler.atomic.tempfile, "mkstemp", refuse)
    else:
        real_fdopen = os.fdopen

        def full(descriptor: int, *args: object, **kwargs: object) -> io.StringIO:
            real_fdopen(descriptor).close()
            return _FullDisk()

        monkeypatch.setattr(reconciler.atomic.os, "fdopen", full)
    result = project.run("promote", "--from", "qa", "--to", "prod", "--component", "dbt")
    monkeypatch.undo()
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "Promoted" not in result.output
    assert f"Error: cannot write {PROD_FILE}" in result.output, result.output
    assert "left as it was" in result.output
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["prod.yaml", "qa.yaml"]
