"""`reconcile --help` stays fast: no heavy library, spec model or system command is imported until a command needs
it (the systems' commands are listed from their registry declarations)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler import registry
from reconciler.cli import main
from reconciler.registry import EXTRA_VARIABLE
from reconciler.sandbox.airbyte_fleet import fleet_environ, write_fleet
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.sandbox.launch import CLIENT_ID, CLIENT_SECRET

HEAVY = (
    "kubernetes",
    "httpx",
    "structlog",
    "ruamel.yaml",
    "pydantic",
    "yaml",
    "reconciler.service",
    "reconciler.clients.kube",
    "reconciler.spec.loader",
    "reconciler.providers.base",
    "reconciler.core.model",
    "importlib.metadata",
)
"""What `reconcile --help` must not import (pydantic and yaml: every system's spec models and loaders;
importlib.metadata: the registry reads the plugins' entry points itself)."""
SYSTEM_MODULES = tuple(f"{declared.system.rpartition('.')[0]}." for declared in registry.declarations())
"""The built-in systems' modules (`reconciler.systems.airbyte.`...): their packages' own modules are light."""


def imported_after(args: Sequence[str], environ: dict[str, str] | None = None) -> tuple[list[str], str]:
    """Run `reconcile <args>` in a fresh interpreter: the modules it imported (of HEAVY and the systems' own), and
    what it printed."""
    probe = (
        "import json, sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main({list(args)!r}, prog_name='reconcile')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"heavy = [m for m in sys.modules if m in {list(HEAVY)!r} or m.startswith({SYSTEM_MODULES!r})]\n"
        "print(json.dumps(sorted(heavy)))\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=environ)
    assert ran.returncode == 0, ran.stderr
    *printed, modules = ran.stdout.splitlines()
    return json.loads(modules), "\n".join(printed)


def test_help_imports_no_client_library_spec_model_or_system_command() -> None:
    imported, printed = imported_after(["--help"])
    assert imported == []
    for declared in registry.declarations():  # every system's command is still listed, by name
        for command in declared.commands:
            assert f"  {command.verb or command.name} " in printed


@pytest.mark.parametrize("verb", ["pull", "import", "verify"])
def test_a_verbs_help_lists_its_systems_commands_without_importing_them(verb: str) -> None:
    imported, printed = imported_after([verb, "--help"])
    assert set(imported) <= {"structlog"}  # `reconcile`'s own callback (logging) runs before a group's --help
    names = {c.name for d in registry.declarations() for c in d.commands if c.verb == verb}
    assert names and all(f"  {name} " in printed for name in names)


def test_a_system_commands_own_help_imports_that_command_and_no_other_system() -> None:
    imported, printed = imported_after(["pull", "superset", "--help"])
    assert "reconciler.systems.superset.commands" in imported
    assert not [m for m in imported if m.startswith(("reconciler.systems.airbyte.", "reconciler.systems.workloads."))]
    assert "Usage: reconcile pull superset [OPTIONS]" in printed and "--dashboard SLUG" in printed


def test_validating_an_environment_without_kubernetes_imports_no_kubernetes(tmp_path: Path) -> None:
    """The kubernetes library (about half a second) is imported by what talks to a cluster, not by every command."""
    write_fleet(tmp_path, 3, 1)
    probe = (
        "import json, sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main(['--root', {str(tmp_path)!r}, 'validate', '--env', 'bench'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "kube = [m for m in sys.modules if m == 'kubernetes' or m.startswith('reconciler.clients.kube')]\n"
        "print(json.dumps(sorted(kube)))\n"
    )
    environ = {**os.environ, **fleet_environ("http://127.0.0.1:9/unused")}
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=environ)
    assert ran.returncode == 0, ran.stderr
    assert "valid" in ran.stdout
    assert json.loads(ran.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("verb", ["validate", "plan"])
def test_an_airbyte_only_environment_imports_no_other_system(tmp_path: Path, verb: str) -> None:
    """The systems an environment does not configure (and whose spec files do not exist) stay unimported, by the
    loader, the session's providers and its secret cluster alike: their packages' own modules hold only their
    declarations."""
    write_fleet(tmp_path, 3, 1)
    probe = (
        "import json, sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main(['--root', {str(tmp_path)!r}, {verb!r}, '--env', 'bench'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({SYSTEM_MODULES!r}))))\n"
    )
    with AirbyteStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start() as server:
        environ = {**os.environ, **fleet_environ(server.url)}
        ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=environ)
    assert ran.returncode == 0, ran.stderr
    if verb == "validate":
        assert "bench: valid (3 sources, 1 destinations, 3 connections)" in ran.stdout
    imported = json.loads(ran.stdout.splitlines()[-1])
    assert "reconciler.systems.airbyte.system" in imported
    assert [m for m in imported if not m.startswith("reconciler.systems.airbyte.")] == []


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command under `group` (groups included), by its path on the command line, loaded."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, (*path, name)
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_command_has_working_help_and_every_group_lists_what_click_would() -> None:
    found = dict(commands(main))
    declared = {(c.verb, c.name) if c.verb else (c.name,): c for d in registry.declarations() for c in d.commands}
    assert set(declared) <= set(found) and {("plan",), ("controller",), ("github", "comment")} <= set(found)
    for path, command in found.items():
        result = CliRunner().invoke(main, [*path, "--help"], prog_name="reconcile")
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith(f"Usage: reconcile {' '.join(path)} [OPTIONS]"), path
        if path in declared:  # the command's help is its declaration's, word for word
            assert command.help == declared[path].help, path
            assert " ".join(declared[path].help.split()) in " ".join(result.output.split()), path
    for group in [main, *(command for command in found.values() if isinstance(command, click.Group))]:
        context = click.Context(group, info_name="reconcile")
        lazy, eager = context.make_formatter(), context.make_formatter()
        group.format_commands(context, lazy)
        click.Group.format_commands(group, context, eager)  # click's own: from the loaded commands
        assert lazy.getvalue() == eager.getvalue() != ""


PLUGIN = """\
import dataclasses

import click

from reconciler.registry import Command
from tests.fake_system import SYSTEM as NOTES

COUNT = Command("count-notes", "Count the notes an environment declares (git -> screen).", "{module}:count")
EXPORT = Command("notes", "Write the notes out (git -> screen).", "{module}:export", verb="export")
SYSTEM = dataclasses.replace(NOTES, commands=(COUNT, EXPORT))


@click.command(name=COUNT.name, help=COUNT.help)
def count() -> None:
    click.echo("counted")


@click.command(name=EXPORT.name, help=EXPORT.help)
def export() -> None:
    click.echo("exported")
"""


def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, text: str) -> dict[str, str]:
    (tmp_path / f"{module}.py").write_text(text.replace("{module}", module))
    monkeypatch.syspath_prepend(str(tmp_path))
    return {EXTRA_VARIABLE: module}


def test_a_plugin_systems_commands_are_listed_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin exposing only `SYSTEM` brings commands, top level and under a verb of its own."""
    environ = plugin(tmp_path, monkeypatch, "notes_with_commands", PLUGIN)
    listed = CliRunner().invoke(main, ["--help"], env=environ)
    assert listed.exit_code == 0, listed.output
    assert "count-notes  Count the notes an environment declares (git -> screen)." in listed.output
    assert "  export " in listed.output and "  pull " in listed.output
    assert (
        "  notes  Write the notes out (git -> screen)."
        in CliRunner().invoke(main, ["export", "--help"], env=environ).output
    )
    assert CliRunner().invoke(main, ["count-notes"], env=environ).output == "counted\n"
    assert CliRunner().invoke(main, ["export", "notes"], env=environ).output == "exported\n"
    assert "count-notes" not in CliRunner().invoke(main, ["--help"], env={EXTRA_VARIABLE: ""}).output


MISMATCHED = """\
from reconciler.registry import Declaration
from tests.fake_system import SYSTEM

DECLARATION = Declaration(name="notes", system="{module}", schema_kinds=("notes",))
"""


def test_a_declaration_its_system_does_not_match_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = plugin(tmp_path, monkeypatch, "notes_mismatched", MISMATCHED)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text("environment: dev\n")
    result = CliRunner().invoke(main, ["--root", str(tmp_path), "validate"], env=environ)
    assert result.exit_code == 1
    assert "Error: notes_mismatched.SYSTEM (notes) does not match the declaration of notes" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_plugin_that_cannot_be_loaded_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "notes_broken.py").write_text("raise ImportError('no such dependency')\n")
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text("environment: dev\n")
    environ = {**os.environ, EXTRA_VARIABLE: "notes_broken", "PYTHONPATH": str(tmp_path)}
    for args in (["--help"], ["--root", str(tmp_path), "validate"]):
        ran = subprocess.run(
            [sys.executable, "-m", "reconciler.cli", *args], capture_output=True, text=True, timeout=60, env=environ
        )
        assert ran.returncode == 1, (args, ran.stderr)
        assert ran.stderr == "Error: cannot load system module notes_broken: no such dependency\n", args
