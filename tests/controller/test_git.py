"""Following git with the real binary: ls-remote every poll, fetch on change only, read-only revisions sharing
one `.reconciler/`, the token sent as a header and never shown, timeouts."""

from __future__ import annotations

import base64
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.controller.git import GitFollower
from reconciler.errors import PermanentError, TemporaryError
from tests.controller.conftest import GitRepo

TOKEN = "ghp_canaryTOKEN0123456789"


def follower(repo: GitRepo, tmp_path: Path, requests: list[str] | None = None, **kwargs: object) -> GitFollower:
    seen = requests if requests is not None else []
    return GitFollower(str(repo.remote), "main", tmp_path / "cache", on_request=seen.append, **kwargs)  # type: ignore[arg-type]


def test_polls_use_ls_remote_and_fetch_only_when_the_commit_changed(repo: GitRepo, tmp_path: Path) -> None:
    requests: list[str] = []
    git = follower(repo, tmp_path, requests)
    first = git.remote_head()
    assert first == repo.git("rev-parse", "HEAD")
    git.checkout(first)
    for _ in range(3):
        assert git.remote_head() == first
        git.checkout(first)
    assert requests == ["ls-remote", "fetch", "ls-remote", "ls-remote", "ls-remote"]
    second = repo.commit("more", repo.replace("environments/qa.yaml", "*/6", "*/4"))
    assert git.remote_head() == second
    source = git.checkout(second)
    assert requests[-2:] == ["ls-remote", "fetch"]
    assert "*/4" in source.read()["environments/qa.yaml"]
    assert "*/6" in git.checkout(first).read()["environments/qa.yaml"]  # the old revision, as it was


def test_a_revision_is_read_only_and_every_revision_shares_one_state_directory(repo: GitRepo, tmp_path: Path) -> None:
    committed = repo.commit("someone committed state", {".reconciler/state/qa.json": '{"records": "from git"}'})
    git = follower(repo, tmp_path)
    source = git.checkout(committed)
    spec = source.root / "environments" / "qa.yaml"
    assert not spec.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not (source.root / "environments").stat().st_mode & stat.S_IWUSR
    state = source.root / ".reconciler"
    assert state.is_symlink() and state.resolve() == git.state_dir.resolve()
    assert not (git.state_dir / "state" / "qa.json").exists()  # never the committed one
    (state / "state").mkdir()
    (state / "state" / "qa.json").write_text("{}")
    later = git.checkout(repo.commit("next"))
    assert (later.root / ".reconciler" / "state" / "qa.json").read_text() == "{}"


def test_old_revisions_are_pruned_but_the_kept_ones_stay(repo: GitRepo, tmp_path: Path) -> None:
    git = follower(repo, tmp_path)
    first = repo.git("rev-parse", "HEAD")
    git.checkout(first)
    shas = [repo.commit(f"commit {n}") for n in range(5)]
    for sha in shas:
        git.checkout(sha)
    git.prune({first, shas[-1]})
    left = {entry.name for entry in git.revisions.iterdir()}
    assert first in left and shas[-1] in left
    assert len(left) == 2 + 3  # the kept ones and the three most recent others
    assert git.state_dir.is_dir()


def test_a_project_in_a_subdirectory_and_paths_outside_the_repository(repo: GitRepo, tmp_path: Path) -> None:
    moved = repo.commit("moved", {"README.md": "top\n"})
    git = GitFollower(str(repo.remote), "main", tmp_path / "cache", path="environments")
    assert "qa.yaml" in {p.name for p in git.checkout(moved).root.iterdir()}
    with pytest.raises(PermanentError, match="inside the repository"):
        GitFollower(str(repo.remote), "main", tmp_path / "cache", path="../elsewhere")
    with pytest.raises(PermanentError, match="not a directory"):
        GitFollower(str(repo.remote), "main", tmp_path / "cache", path="nowhere").checkout(moved)


def test_a_missing_branch_or_repository_is_a_temporary_error(repo: GitRepo, tmp_path: Path) -> None:
    with pytest.raises(TemporaryError, match="branch release not found"):
        GitFollower(str(repo.remote), "release", tmp_path / "cache").remote_head()
    with pytest.raises(TemporaryError, match="ls-remote"):
        GitFollower(str(tmp_path / "no-such-repo"), "main", tmp_path / "cache").remote_head()


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bool]] = []
    hang = threading.Event()

    def do_GET(self) -> None:
        in_argv = any(
            TOKEN.encode() in path.read_bytes() for path in Path("/proc").glob("[0-9]*/cmdline") if _readable(path)
        )
        type(self).seen.append((self.path, self.headers.get("Authorization", ""), in_argv))
        if self.path.startswith("/slow"):
            self.hang.wait(10)
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


@pytest.fixture
def git_server() -> Iterator[str]:
    _Recorder.seen = []
    _Recorder.hang = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Recorder.hang.set()
    server.shutdown()
    server.server_close()


def test_the_token_goes_as_a_header_never_in_argv_or_an_error(git_server: str, tmp_path: Path) -> None:
    url = git_server.replace("http://", "http://someone:url-password@") + "/org/repo.git"
    git = GitFollower(url, "main", tmp_path / "cache", environ={"RECONCILER_GIT_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    with pytest.raises(TemporaryError) as raised:
        git.remote_head()
    message = str(raised.value)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    for secret in (TOKEN, basic, "url-password"):
        assert secret not in message
    assert "someone:***@" in message
    assert _Recorder.seen, "git never asked the server"
    path, authorization, in_argv = _Recorder.seen[0]
    assert path.startswith("/org/repo.git/info/refs")
    assert authorization == f"Basic {basic}"
    assert not in_argv


def test_every_git_call_has_a_timeout(git_server: str, tmp_path: Path) -> None:
    git = GitFollower(f"{git_server}/slow/repo.git", "main", tmp_path / "cache", timeout=0.5)
    with pytest.raises(TemporaryError, match=r"timed out after 0\.5 s"):
        git.remote_head()
