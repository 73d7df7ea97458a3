"""The Superset commands (`pull superset`: live -> git; `verify superset`: live -> screen), above the service.

pull: live dashboards (all, or by slug) -> one export -> `specs/superset/` written the way
`to_files` lays it out, merged with what is there. Only files whose bytes change are written,
and asset files nothing produces any more are removed, so re-pulling an unchanged dashboard
changes no file. Databases the environment file does not declare yet are added to it (URI
without password, the password as a reference), comments and order kept.

verify: every chart of every dashboard the environment should have runs its query there (its
saved query context, else the query its params describe); a chart that fails or could not be
checked at all makes the command exit 1, naming it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from reconciler.atomic import staged_write, swap_in_directory
from reconciler.errors import ReconcilerError, SpecError
from reconciler.registry import Invocation
from reconciler.spec.editing import edit_yaml_text
from reconciler.spec.files import read_spec_tree
from reconciler.spec.loader import load_environments
from reconciler.systems.superset import PULL, VERIFY
from reconciler.systems.superset.loading import ASSET_FOLDERS
from reconciler.systems.superset.rendering import render_verification
from reconciler.systems.superset.rules.assets import SYSTEM
from reconciler.systems.superset.rules.bundle import from_files, read_bundle, to_files
from reconciler.systems.superset.rules.pull import (
    ConnectionEntry,
    changed_files,
    connection_entries,
    pulled_secrets,
    pulled_slugs,
    replace_assets,
    without_connections,
)
from reconciler.systems.superset.rules.verify import Verification

SPEC_DIR = Path("specs") / "superset"


def _asset_files(spec_dir: Path) -> dict[str, str]:
    """The asset files under `specs/superset/` (roles.yaml and anything else left out), by relative path."""
    found: dict[str, str] = {}
    for folder in ASSET_FOLDERS:
        base = spec_dir / folder
        for path in sorted(base.rglob("*")) if base.is_dir() else ():
            if path.is_file():
                found[path.relative_to(spec_dir).as_posix()] = path.read_text(encoding="utf-8")
    return found


def _stage(spec_dir: Path, current: Mapping[str, str], wanted: Mapping[str, str]) -> tuple[Path | None, int, int]:
    """A complete copy of `spec_dir` as it should be, in a hidden folder beside it (None: no change)."""
    write, remove = changed_files(current, wanted)
    if not write and not remove:
        return None, 0, 0
    spec_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{spec_dir.name}.pull-", dir=spec_dir.parent))
    try:
        if spec_dir.is_dir():
            shutil.copytree(spec_dir, staged, dirs_exist_ok=True)
        for relative in write:
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(wanted[relative], encoding="utf-8")
        for relative in remove:
            (staged / relative).unlink()
        for folder in sorted((p for p in staged.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(folder.iterdir()):
                folder.rmdir()
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged, len(write), len(remove)


def _declare(entries: Sequence[ConnectionEntry], slugs: Sequence[str]) -> Callable[[Any], bool]:
    """An edit of the environment file declaring new databases and selecting new dashboards."""

    def declare(document: Any) -> bool:
        section = document["superset"]
        changed = False
        if entries:
            if section.get("databases") is None:
                section["databases"] = {}
            for entry in entries:
                connection: dict[str, Any] = {"sqlalchemyUri": entry.sqlalchemy_uri}
                if entry.password_variable:
                    connection["password"] = {"secretRef": {"env": entry.password_variable}}
                section["databases"][entry.name] = connection
            changed = True
        selected = section.get("dashboards")
        if selected != "all":
            if selected is None:
                section["dashboards"] = selected = []
            for slug in slugs:
                if slug not in selected:
                    selected.append(slug)
                    changed = True
        return changed

    return declare


def _check_result(
    root: Path, env_name: str, environ: Mapping[str, str], wanted: Mapping[str, str], env_file: str, env_text: str
) -> None:
    """Validate the project as the pull would leave it; a `ReconcilerError` (nothing written yet) otherwise."""
    prefix = SPEC_DIR.as_posix() + "/"
    files = {
        path: text
        for path, text in read_spec_tree(root).items()
        if not (path.startswith(prefix) and path.removeprefix(prefix).split("/", 1)[0] in ASSET_FOLDERS)
    }
    files.update({prefix + relative: text for relative, text in wanted.items() if relative.endswith((".yaml", ".yml"))})
    files[env_file] = env_text
    try:
        load_environments(files, environ, only=env_name)
    except SpecError as error:
        lines = "\n".join(f"  {problem}" for problem in error.problems)
        raise ReconcilerError(f"pull superset wrote nothing: the result would not validate:\n{lines}") from error


def pull_superset(root: Path, env_name: str, environ: Mapping[str, str], slugs: Sequence[str] = ()) -> list[str]:
    """Write the live dashboards (all, or `slugs`) of an environment into `specs/superset/`; report lines."""
    from reconciler import service
    from reconciler.systems.superset.provider import connect

    with service.open_provider(root, env_name, environ, SYSTEM, connect) as (session, provider):
        client = provider.client
        listed = client.list_dashboards()
        live_slugs = {d.slug for d in listed if d.slug}
        unknown = sorted(set(slugs) - live_slugs)
        if unknown:
            known = ", ".join(sorted(live_slugs)) or "none"
            raise ReconcilerError(f"no dashboard {', '.join(unknown)} in {env_name}'s Superset (it has: {known})")
        chosen = [d.id for d in listed if not slugs or d.slug in slugs]
        if not chosen:
            return [f"Nothing to pull: {env_name}'s Superset has no dashboards."]
        pulled = read_bundle(client.export_dashboards(sorted(chosen)))
        settings = provider.settings
        env_file = root / session.env.file
    spec_dir = root / SPEC_DIR
    current = _asset_files(spec_dir)
    wanted = to_files(replace_assets(from_files(current), without_connections(pulled)))
    entries = connection_entries(pulled, settings.databases, env_name)
    env_text = env_file.read_text(encoding="utf-8")
    new_env_text = edit_yaml_text(env_text, _declare(entries, pulled_slugs(pulled)))
    env_changed = new_env_text != env_text
    _check_result(root, env_name, environ, wanted, session.env.file, new_env_text)
    env_staged: Path | None = None
    try:  # the environment file too is written in full before anything is moved into place
        if env_changed:
            env_staged = staged_write(env_file.resolve(), new_env_text, env_file.stat().st_mode & 0o7777)
        staged, written, removed = _stage(spec_dir, current, wanted)
    except OSError as exc:  # a file name the file system refuses, a full disk, a read-only folder: nothing changed
        if env_staged is not None:
            env_staged.unlink(missing_ok=True)
        where = session.env.file if env_changed and env_staged is None else f"{SPEC_DIR}/"
        raise ReconcilerError(f"pull superset wrote nothing: cannot stage {where}: {exc}") from exc
    if staged is not None:
        try:
            swap_in_directory(staged, spec_dir)
        except OSError as exc:
            if env_staged is not None:
                env_staged.unlink(missing_ok=True)
            raise ReconcilerError(
                f"pull superset stopped: cannot move the staged {SPEC_DIR}/ into place ({exc}); "
                f"{session.env.file} is as it was, the staged copy is {staged.relative_to(root)}"
            ) from exc
    if env_staged is not None:
        os.replace(env_staged, env_file.resolve())
    counts = f"{len(pulled.of('dashboards'))} dashboard(s), {len(pulled.of('charts'))} chart(s)"
    lines = [
        f"Pulled {counts} from {env_name} into {SPEC_DIR}/: "
        + (f"{written} file(s) written, {removed} removed." if written or removed else "no file changed.")
    ]
    if env_changed:
        lines.append(f"Updated {session.env.file}: new database connections and dashboard selection.")
    for database, places in sorted(pulled_secrets(pulled).items()):
        lines.append(
            f"Left out the secrets in database {database}'s connection ({', '.join(places)}): "
            "pass the password through superset.databases.<name>.password: {secretRef: ...}."
        )
    variables = [entry.password_variable for entry in entries if entry.password_variable]
    if variables:
        lines.append("Set these environment variables to the database passwords (exports mask them):")
        lines += [f"  {name}" for name in variables]
    return lines


def verify_superset(root: Path, env_name: str, environ: Mapping[str, str]) -> Verification:
    """Run every chart of every dashboard `env_name` should have, in its Superset."""
    from reconciler import service
    from reconciler.systems.superset.provider import connect

    with service.open_provider(root, env_name, environ, SYSTEM, connect) as (_session, provider):
        return provider.verify()


pass_invocation = click.make_pass_decorator(Invocation)


@click.command(name=PULL.name, help=PULL.help)
@click.option("--env", "env_name", required=True, help="Environment to pull from (e.g. prod).")
@click.option("--dashboard", "dashboards", multiple=True, metavar="SLUG", help="Only this dashboard; repeatable.")
@pass_invocation
def pull_command(invocation: Invocation, env_name: str, dashboards: tuple[str, ...]) -> None:
    for line in pull_superset(invocation.root, env_name, dict(os.environ), dashboards):
        click.echo(line)


@click.command(name=VERIFY.name, help=VERIFY.help)
@click.option("--env", "env_name", required=True)
@pass_invocation
def verify_command(invocation: Invocation, env_name: str) -> None:
    verification = verify_superset(invocation.root, env_name, dict(os.environ))
    click.echo(render_verification(verification))
    if not verification.ok:
        raise ReconcilerError(verification.failure_message())
