"""Following git, for the controller's loop: the remote branch's commit, and a read-only copy of one revision.

The real `git` binary through subprocess (GitPython leaks in long-running processes): `ls-remote` each
poll, `fetch` into a bare mirror only when the commit changed, `archive` (streamed) a revision into
`<cache>/<repo>/revisions/<sha>` (files read-only), a `RevisionSource` over it for the service. The
project's `.reconciler/` (file state, fingerprint keys) is one directory shared by every revision, so
ownership records outlive the checkout they were made from. A token (RECONCILER_GIT_TOKEN) travels as an
`http.extraHeader` in `GIT_CONFIG_*` variables, never in argv, a URL or a message; every call has a
timeout; every failure is a `TemporaryError` with credentials redacted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import re
import secrets
import shutil
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog

from reconciler.errors import PermanentError, TemporaryError, redact_credentials
from reconciler.service.session import STATE_DIR
from reconciler.spec.files import read_spec_tree

log = structlog.get_logger("reconciler.controller")

SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
GIT_TIMEOUT_SECONDS = 120.0
KEEP_REVISIONS = 3
"""Checked-out revisions kept besides the ones in use (the applied ones)."""
PARTIAL_GRACE_SECONDS = 3600.0
"""A revision being written (`.<sha>.<id>.partial`) younger than this may be another controller's, sharing the
cache: `prune` leaves it alone."""


@dataclass(frozen=True)
class RevisionSource:
    """The specs of one git revision (`SpecSource`): read from its read-only checkout under `root`."""

    root: Path
    revision: str

    def read(self) -> dict[str, str]:
        return read_spec_tree(self.root)


class GitFollower:
    """One repository's branch: its remote commit, fetched on change, checked out per revision."""

    def __init__(
        self,
        repo: str,
        branch: str,
        cache_dir: Path,
        *,
        path: str = ".",
        environ: Mapping[str, str] | None = None,
        timeout: float = GIT_TIMEOUT_SECONDS,
        on_request: Callable[[str], None] = lambda _kind: None,
    ) -> None:
        self.repo = _normalise(repo)
        self.branch = branch
        self.path = _inner_path(path)
        self.timeout = timeout
        self._on_request = on_request
        variables = dict(os.environ if environ is None else environ)
        # stripped: a Secret made `--from-file` keeps the file's trailing newline, which would fail every auth
        self._token = (variables.pop("RECONCILER_GIT_TOKEN", "") or "").strip()
        self._env = {**variables, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
        if self._token:
            basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
            self._secrets: tuple[str, ...] = (self._token, basic)
            self._env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        else:
            self._secrets = ()
        digest = hashlib.sha256(self.repo.encode()).hexdigest()[:12]
        self.home = cache_dir / f"repo-{digest}"
        self.mirror = self.home / "mirror.git"
        self.revisions = self.home / "revisions"
        self.state_dir = self.home / "project-state"
        """The `.reconciler/` every revision's checkout links to: file state and fingerprint keys."""

    # ---- git calls -------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_credentials(text)

    def _git(self, *args: str, what: str) -> bytes:
        command = ["git", *args]
        try:
            done = subprocess.run(command, capture_output=True, env=self._env, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TemporaryError(
                f"git {what} of {self._redact(self.repo)} timed out after {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise TemporaryError(f"cannot run git: {exc.strerror or exc}") from None
        if done.returncode != 0:
            message = self._redact(done.stderr.decode(errors="replace").strip()) or f"exit code {done.returncode}"
            raise TemporaryError(f"git {what} of {self._redact(self.repo)} failed: {message}")
        return done.stdout

    def remote_head(self) -> str:
        """The commit the followed branch points at in the remote (`git ls-remote`); fetches nothing."""
        self._on_request("ls-remote")
        ref = f"refs/heads/{self.branch}"
        out = self._git("ls-remote", "--", self.repo, ref, what="ls-remote").decode(errors="replace")
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref and SHA.match(sha):
                return sha
        raise TemporaryError(f"branch {self.branch} not found in {self._redact(self.repo)}")

    def _has(self, sha: str) -> bool:
        if not (self.mirror / "HEAD").exists():
            return False
        try:
            self._git("--git-dir", str(self.mirror), "cat-file", "-e", f"{sha}^{{commit}}", what="cat-file")
        except TemporaryError:
            return False
        return True

    def fetch(self, sha: str) -> None:
        """Bring `sha` into the bare mirror, unless it is there already."""
        if self._has(sha):
            return
        if not (self.mirror / "HEAD").exists():
            self.mirror.parent.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", str(self.mirror), what="init")
        self._on_request("fetch")
        refspec = f"+refs/heads/{self.branch}:refs/heads/{self.branch}"
        self._git(
            "--git-dir", str(self.mirror), "fetch", "--quiet", "--no-tags", "--", self.repo, refspec, what="fetch"
        )
        if not self._has(sha):
            raise TemporaryError(f"{sha[:12]} is not on {self.branch} after fetching (the branch moved on)")

    # ---- revisions -------------------------------------------------------------------------

    def checkout(self, sha: str) -> RevisionSource:
        """A read-only copy of `sha` (fetched when needed) and a spec source over its project directory."""
        if not SHA.match(sha):
            raise PermanentError(f"not a commit id: {sha!r}")
        target = self.revisions / sha
        project = target / self.path if self.path else target
        if not (target / ".complete").exists():
            try:
                self.fetch(sha)
                self._materialise(sha, target)
            except OSError as exc:  # a read-only or full disk, a file where a directory should be
                raise TemporaryError(
                    f"cannot write the git cache {self.home}: {exc.strerror or exc}"
                    + (f" ({exc.filename})" if exc.filename else "")
                ) from None
        if not project.is_dir():
            raise PermanentError(f"{self.path} is not a directory in {sha[:12]}")
        return RevisionSource(project, sha)

    def _extract(self, sha: str, scratch: Path) -> None:
        """`git archive` of `sha` streamed into `scratch` (never the whole tar in memory: a huge commit)."""
        command = ["git", "--git-dir", str(self.mirror), "archive", "--format=tar", sha]
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env)
        except OSError as exc:
            raise TemporaryError(f"cannot run git: {exc.strerror or exc}") from None
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(self.timeout, kill)
        timer.start()
        unreadable = False
        try:
            assert process.stdout is not None and process.stderr is not None
            try:
                with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                    tar.extractall(scratch, filter=_refusing_links(sha, self.path))
            except tarfile.ReadError:
                unreadable = True  # git failed or was killed: its exit code and stderr say why, below
            finally:
                process.stdout.close()
            stderr = process.stderr.read()
            code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        if timed_out.is_set():
            raise TemporaryError(f"git archive of {sha[:12]} timed out after {self.timeout:g} s")
        if code != 0 or unreadable:
            message = self._redact(stderr.decode(errors="replace").strip()) or f"exit code {code}, unreadable tar"
            raise TemporaryError(f"git archive of {sha[:12]} failed: {message}")

    def _materialise(self, sha: str, target: Path) -> None:
        # a name of its own: another controller sharing the cache may be writing the same revision right now
        scratch = target.with_name(f".{sha}.{os.getpid()}-{secrets.token_hex(4)}.partial")
        scratch.mkdir(parents=True)
        try:
            self._extract(sha, scratch)
        except BaseException:
            _remove(scratch)
            raise
        project = scratch / self.path if self.path else scratch
        if project.is_dir():
            _remove(project / STATE_DIR)  # never a committed `.reconciler/`: state is the controller's own
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (project / STATE_DIR).symlink_to(self.state_dir, target_is_directory=True)
        (scratch / ".complete").write_text(sha + "\n")
        _read_only(scratch)
        if (target / ".complete").exists():  # another controller finished it first: theirs is in use, keep it
            _remove(scratch)
            return
        _remove(target)  # an incomplete leftover (never one in use: a revision appears whole, by rename)
        try:
            scratch.rename(target)
        except OSError:
            _remove(scratch)
            if not (target / ".complete").exists():
                raise
            return
        log.info("git.checked_out", revision=sha, path=str(target))

    def prune(self, keep: set[str]) -> None:
        """Remove checked-out revisions not in `keep`, but the `KEEP_REVISIONS` most recent ones."""
        if not self.revisions.is_dir():
            return
        young = time.time() - PARTIAL_GRACE_SECONDS
        others = [
            entry
            for entry in self.revisions.iterdir()
            if entry.name not in keep and not (entry.name.endswith(".partial") and entry.stat().st_mtime > young)
        ]
        others.sort(key=lambda entry: entry.stat().st_mtime, reverse=True)
        for entry in others[KEEP_REVISIONS:]:
            _remove(entry)


def _refusing_links(sha: str, path: str) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """The tar filter of a revision: the stdlib's `data` filter (no absolute path, no link out of the
    checkout), and no link into the project's `.reconciler/` (the controller's state and fingerprint keys,
    which a spec file linked there would read into a plan or an error message). A refusal is the commit's."""
    state = posixpath.join(path, STATE_DIR) if path else STATE_DIR

    def check(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo:
        if member.issym() or member.islnk():
            base = posixpath.dirname(member.name) if member.issym() else ""
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if target == state or target.startswith(state + "/"):
                raise PermanentError(
                    f"commit {sha[:12]} is refused: {member.name} links into {state}/, the controller's own state"
                )
        try:
            return tarfile.data_filter(member, destination)
        except tarfile.FilterError:
            what = (
                f"links to {member.linkname!r}, outside the repository"
                if member.issym() or member.islnk()
                else ("is not a plain file, directory or link inside the repository")
            )
            raise PermanentError(f"commit {sha[:12]} is refused: {member.name} {what}") from None

    return check


def _normalise(repo: str) -> str:
    """An https/ssh/file URL as given; a local path made absolute (git reads it as a repository path)."""
    if "://" in repo or re.match(r"^[\w.-]+@[\w.-]+:", repo):
        return repo
    return str(Path(repo).expanduser().resolve())


def _inner_path(path: str) -> str:
    inner = PurePosixPath(path.strip() or ".")
    if inner.is_absolute() or ".." in inner.parts:
        raise PermanentError(f"--path must be a directory inside the repository, not {path!r}")
    return "" if str(inner) == "." else str(inner)


def _read_only(root: Path) -> None:
    for directory, names, files in os.walk(root):
        for name in files:
            item = Path(directory, name)
            if not item.is_symlink():
                item.chmod(stat.S_IRUSR | stat.S_IRGRP)
        Path(directory).chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
        names[:] = [name for name in names if not Path(directory, name).is_symlink()]


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.exists():
        return
    for directory, names, _files in os.walk(path):
        Path(directory).chmod(stat.S_IRWXU)
        names[:] = [name for name in names if not Path(directory, name).is_symlink()]
    shutil.rmtree(path)
