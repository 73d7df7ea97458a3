"""The git follower against hostile commits and a hostile disk: symlinks out of the repository or into the
controller's own `.reconciler/`, a cache directory it cannot write, two controllers sharing one cache."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.controller.git import GitFollower
from reconciler.errors import PermanentError, TemporaryError
from tests.controller.conftest import GitRepo, RunningController, wait_for
from tests.controller.test_git import _Recorder
from tests.controller.test_git import git_server as git_server  # the recording git server fixture


def _symlink_commit(repo: GitRepo, link: str, target: str) -> str:
    path = repo.work / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return repo.commit(f"a symlink {link} -> {target}")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("specs/airbyte/passwd.yaml", "/etc/passwd"),
        ("specs/airbyte/up.yaml", "../../../../../../../../etc/passwd"),
        ("specs/airbyte/key.yaml", "../../.reconciler/keys/qa.fingerprint.key"),
        ("specs/state", "../.reconciler"),
    ],
)
def test_a_commit_with_a_symlink_out_of_the_repository_or_into_its_state_is_refused(
    repo: GitRepo, tmp_path: Path, link: str, target: str
) -> None:
    sha = _symlink_commit(repo, link, target)
    git = GitFollower(str(repo.remote), "main", tmp_path / "cache")
    with pytest.raises(PermanentError) as refused:
        git.checkout(sha)
    assert link in str(refused.value) and sha[:12] in str(refused.value)
    assert not (git.revisions / sha).exists()
    assert not [entry for entry in git.revisions.iterdir() if entry.name.endswith(".partial")]


def test_a_symlink_inside_the_repository_is_kept(repo: GitRepo, tmp_path: Path) -> None:
    sha = _symlink_commit(repo, "specs/airbyte/alias.yaml.txt", "../../environments/qa.yaml")
    source = GitFollower(str(repo.remote), "main", tmp_path / "cache").checkout(sha)
    assert (source.root / "specs/airbyte/alias.yaml.txt").read_text() == repo.read("environments/qa.yaml")


def test_a_cache_directory_that_cannot_be_written_is_a_reconciler_error_not_a_crash(
    repo: GitRepo, tmp_path: Path
) -> None:
    sha = repo.git("rev-parse", "HEAD")
    warm = GitFollower(str(repo.remote), "main", tmp_path / "cache")
    warm.fetch(sha)  # the mirror is there; writing a revision is what fails (a file where a directory should be)
    warm.revisions.write_text("not a directory\n")
    with pytest.raises(TemporaryError, match="cannot write the git cache"):
        GitFollower(str(repo.remote), "main", tmp_path / "cache").checkout(sha)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file\n")
    with pytest.raises(TemporaryError, match="cannot write the git cache"):
        GitFollower(str(repo.remote), "main", blocked / "cache").checkout(sha)


def test_the_loop_survives_a_refused_commit_reports_it_and_applies_the_next(
    repo: GitRepo, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    running = start_controller()
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    bad = _symlink_commit(repo, "specs/airbyte/passwd.yaml", "/etc/passwd")
    refused = wait_for(lambda: running.notifier.of("invalid_commit"), "the refused commit reported")
    assert refused[0][:2] == ("qa", bad) and "passwd.yaml" in refused[0][2][0]
    (repo.work / "specs/airbyte/passwd.yaml").unlink()
    fixed = repo.commit("the symlink removed", repo.replace("environments/qa.yaml", "*/6", "*/4"))
    wait_for(lambda: running.applied("qa", fixed), "the next commit applied")
    assert running.thread.is_alive()
    assert len(running.notifier.of("invalid_commit")) == 1  # told once, not at every poll


def test_two_controllers_sharing_one_cache_directory_check_out_the_same_revision_at_once(
    repo: GitRepo, tmp_path: Path
) -> None:
    sha = repo.git("rev-parse", "HEAD")
    GitFollower(str(repo.remote), "main", tmp_path / "cache").fetch(sha)
    errors: list[BaseException] = []
    sources: list[Path] = []
    start = threading.Barrier(6)

    def check_out() -> None:
        git = GitFollower(str(repo.remote), "main", tmp_path / "cache")
        start.wait()
        try:
            for _ in range(5):
                sources.append(git.checkout(sha).root)
        except BaseException as exc:  # any failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=check_out) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(sources) == 30
    assert all((root / "environments" / "qa.yaml").is_file() for root in sources)


@pytest.mark.parametrize("written", ["ghp_canaryTOKEN0123456789\n", " ghp_canaryTOKEN0123456789\r\n"])
def test_a_token_read_from_a_secret_file_with_its_trailing_newline_still_authenticates(
    git_server: str, tmp_path: Path, written: str
) -> None:
    """`kubectl create secret --from-file` keeps the file's newline: the header must carry the token alone."""
    git = GitFollower(
        f"{git_server}/org/repo.git", "main", tmp_path / "cache", environ={"RECONCILER_GIT_TOKEN": written}
    )
    with pytest.raises(TemporaryError) as raised:
        git.remote_head()
    basic = base64.b64encode(b"x-access-token:ghp_canaryTOKEN0123456789").decode()
    assert _Recorder.seen and _Recorder.seen[0][1] == f"Basic {basic}"
    assert "ghp_canaryTOKEN0123456789" not in str(raised.value)


def test_a_force_pushed_branch_is_followed_to_its_new_history(repo: GitRepo, tmp_path: Path) -> None:
    git = GitFollower(str(repo.remote), "main", tmp_path / "cache")
    old = repo.commit("to be rewritten", repo.replace("environments/qa.yaml", "*/6", "*/5"))
    git.checkout(git.remote_head())
    repo.git("reset", "--hard", "HEAD~1")
    repo.git("commit", "--quiet", "--allow-empty", "-m", "rewritten")
    repo.git("push", "--quiet", "--force", "origin", "HEAD:main")
    new = repo.git("rev-parse", "HEAD")
    assert git.remote_head() == new != old
    assert "*/6" in git.checkout(new).read()["environments/qa.yaml"]
    assert "*/5" in git.checkout(old).read()["environments/qa.yaml"]  # the applied one, gone from the branch
    repo.git("--git-dir", str(repo.remote), "update-ref", "-d", "refs/heads/main")  # the branch deleted
    with pytest.raises(TemporaryError, match="branch main not found"):
        git.remote_head()


def test_a_submodule_is_an_empty_directory_in_the_revision_never_fetched(repo: GitRepo, tmp_path: Path) -> None:
    """A submodule's content is another repository's: `git archive` leaves its directory empty, so specs
    kept there are missing (validation says so) rather than fetched from a URL the commit chose."""
    other = tmp_path / "other"
    other.mkdir()
    extra = GitRepo(other, tmp_path / "other.git")
    extra.git("init", "--quiet", "-b", "main")
    (other / "connections.yaml").write_text("connections: []\n")
    extra.git("add", "-A")
    extra.git("commit", "--quiet", "-m", "extra specs")
    repo.git("-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(other), "specs/extra")
    sha = repo.commit("a submodule under specs/")
    source = GitFollower(str(repo.remote), "main", tmp_path / "cache").checkout(sha)
    assert (source.root / "specs" / "extra").is_dir()
    assert list((source.root / "specs" / "extra").iterdir()) == []
    assert not any(name.startswith("specs/extra/") for name in source.read())
