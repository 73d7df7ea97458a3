"""Command line: parse arguments -> call the service -> render -> exit code. Nothing else lives here.

`reconcile --help` stays fast: the service (and with it kubernetes, httpx and the systems' clients) and
structlog are imported by the commands that need them, never at start-up. A new command follows the same
pattern: register it here (or in its system's `commands` module) with only click at module level, import
what it runs inside its body (`from reconciler.controller.run import run_controller`), and name its heavy
modules in tests/test_startup.py's HEAVY, which fails when `--help` imports them. A system's commands are
listed from its registry declaration (name and help line) and imported when one runs or its own `--help` is
asked (`SystemsGroup`), so `--help` imports no system's spec models, loaders or commands either.
"""

from __future__ import annotations

import functools
import importlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from reconciler import registry
from reconciler.errors import ReconcilerError
from reconciler.registry import Invocation
from reconciler.spec import memory

if TYPE_CHECKING:
    from reconciler.cancellation import Cancellation
    from reconciler.core.plan import Plan


def _declared_at_import() -> tuple[registry.Declaration, ...]:
    """The systems, for the help texts built here; a plugin that cannot be loaded is no traceback at import but an
    `Error: ...` once the commands are listed or a command loads the systems."""
    try:
        return registry.declarations()
    except ReconcilerError:
        return ()


SCHEMA_KINDS = sorted({"environment", *(kind for declared in _declared_at_import() for kind in declared.schema_kinds)})
"""`reconcile schema`'s kinds, by name only (the models are built when the command runs)."""

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _configure_logging(debug: bool) -> None:
    import logging

    import structlog

    level = logging.DEBUG if debug else logging.WARNING
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer(colors=False)],
    )


def fail(message: str) -> NoReturn:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(EXIT_ERROR)


def warn(message: str) -> None:
    click.secho(f"Warning: {message}", fg="yellow", err=True)


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn reconciler errors into `Error: ...` and exit 1; tracebacks only with --debug."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        invocation = click.get_current_context().find_object(Invocation)
        try:
            return command(*args, **kwargs)
        except ReconcilerError as exc:
            if invocation is not None and invocation.debug:
                raise
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted")

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    return wrapper


GROUPS = {
    "pull": "Write what a live system has into the spec files (live -> git).",
    "import": "Alias of `pull` for Airbyte, kept for a release (live -> git).",
    "verify": "Check that what a live system holds works (live -> screen).",
}
"""The help of the verbs systems' commands share (`pull superset`, `import airbyte`)."""


def _declared(verb: str | None) -> dict[str, registry.Command]:
    """The systems' commands under `verb` (None: top level), by name; a later system's wins a name."""
    return {command.name: command for d in registry.declarations() for command in d.commands if command.verb == verb}


@functools.cache
def _command(target: str) -> click.Command:
    """A system's click command (`module:attribute`), imported now, its errors turned into `Error: ...`."""
    module_name, _, attribute = target.partition(":")
    try:
        command = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ReconcilerError(f"cannot load the command {target}: {exc}") from exc
    if not isinstance(command, click.Command):
        raise ReconcilerError(f"{target} is not a click command")
    if command.callback is not None:
        command.callback = guarded(command.callback)
    return command


class SystemsGroup(click.Group):
    """A group holding, besides its own commands, the systems' commands declared under its verb (and, at the top,
    the verbs themselves): listed from the declarations, imported only when one runs or its own `--help` is asked.
    """

    def __init__(self, *args: Any, verb: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verb = verb

    def _verbs(self) -> list[str]:
        if self.verb is not None:
            return []
        return sorted({c.verb for d in registry.declarations() for c in d.commands if c.verb is not None})

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except ReconcilerError as exc:  # a plugin that cannot be loaded: no traceback, as for any command
            fail(str(exc))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._guarded(lambda: sorted({*self.commands, *_declared(self.verb), *self._verbs()}))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self._guarded(self._verbs):
            return _verb_group(cmd_name)
        declared = self._guarded(lambda: _declared(self.verb)).get(cmd_name)
        return None if declared is None else self._guarded(lambda: _command(declared.target))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a declared command is listed with its declared help, without importing it."""
        declared = self._guarded(lambda: _declared(self.verb))
        listed: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.commands or name not in declared:
                command = self.get_command(ctx, name)
            else:
                command = click.Command(name, help=declared[name].help)
            if command is not None and not command.hidden:
                listed.append((name, command))
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in listed])


@functools.cache
def _verb_group(verb: str) -> SystemsGroup:
    return SystemsGroup(verb, help=GROUPS.get(verb, f"{verb} a system"), verb=verb)


@click.group(cls=SystemsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project directory holding specs/ and environments/.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="reconciler")
@click.pass_context
def main(ctx: click.Context, root: Path, debug: bool) -> None:
    """reconciler: git is the source of truth for Airbyte, Superset, dbt and Dagster."""
    _configure_logging(debug)
    memory.freeze_after_load()  # one command, then the process ends: loaded specs need no collecting
    ctx.obj = Invocation(root.resolve(), debug)


pass_invocation = click.make_pass_decorator(Invocation)


@main.command()
@click.option("--env", "env_name", help="Validate only this environment (default: all).")
@pass_invocation
@guarded
def validate(invocation: Invocation, env_name: str | None) -> None:
    """Check the specs offline: schema, references, cron, secrets (git -> screen). Exit 1 on any problem."""
    from reconciler import service

    environments = service.validate(invocation.root, _environ(), env_name)
    for name, env in environments.items():
        configured = registry.named(env.sections)
        counts = [system.summary(env.sections[system.name]) for system in configured]
        click.echo(f"{name}: valid ({'; '.join(counts) or 'no systems'})")
        for system in configured:
            for message in system.warnings(env.sections[system.name]):
                warn(message)


@main.command()
@click.option("--kind", type=click.Choice(SCHEMA_KINDS), default="environment", show_default=True)
def schema(kind: str) -> None:
    """Print the JSON Schema of a spec file kind, for editors and linters (code -> screen)."""

    from reconciler.spec.schema import json_schema

    click.echo(json.dumps(json_schema(kind), indent=2))


system_option = click.option(
    "--system",
    "systems",
    multiple=True,
    metavar="NAME",
    help=f"Only this system ({', '.join(s.name for s in _declared_at_import())}); repeatable. Default: every "
    "configured one.",
)


ALLOW_FLAGS = {
    "broken-dependents": "Allow deleting what live objects outside the specs still use (a chart's dataset): they "
    "are named in the plan, and left broken or deleted with it.",
    "source-shrink": "Allow replicating from a source that yields no dashboards, or far fewer than this environment "
    "holds from it (with prune on, the rest are deleted).",
}
"""`--allow-<name>` flags that lift one refusal of a plan (`core.plan.Override` by value)."""


def allow_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--allow-...` flags, handed to the command as `allow`, the `Override` values they name."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["allow"] = tuple(name for name in ALLOW_FLAGS if kwargs.pop(f"allow_{name.replace('-', '_')}"))
        return command(*args, **kwargs)

    for name, help_text in reversed(ALLOW_FLAGS.items()):
        wrapper = click.option(f"--allow-{name}", is_flag=True, help=help_text)(wrapper)
    return wrapper


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _emit_plan(plan: Plan, output_format: str) -> None:
    from reconciler.core.plan_codec import plan_to_json
    from reconciler.render.markdown import render_markdown
    from reconciler.render.text import render_plan

    if output_format == "json":
        click.echo(json.dumps(plan_to_json(plan), indent=2, default=str))
    elif output_format == "markdown":
        click.echo(render_markdown(plan))
    else:
        click.echo(render_plan(plan, colour=sys.stdout.isatty()))


@main.command()
@click.option("--env", "env_name", required=True, help="Environment to plan.")
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan (JSON) for apply.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--allow-mass-delete", is_flag=True, help="Allow a plan deleting most owned resources.")
@allow_options
@system_option
@pass_invocation
@guarded
def plan(
    invocation: Invocation,
    env_name: str,
    output_format: str,
    out: Path | None,
    detailed_exitcode: bool,
    allow_mass_delete: bool,
    allow: tuple[str, ...],
    systems: tuple[str, ...],
) -> None:
    """Observe the live systems and show what apply would change (live + git -> screen, or a plan file)."""
    from reconciler import service
    from reconciler.core.plan import Override
    from reconciler.core.plan_codec import plan_to_json

    if out is not None and not out.parent.is_dir():
        fail(f"cannot save the plan to {out}: no directory {out.parent}")
    result = service.ReconcileService.of_folder(invocation.root).plan(
        env_name, systems=systems, allow_mass_delete=allow_mass_delete, allow=[Override(name) for name in allow]
    )
    _emit_plan(result, output_format)
    if out is not None:
        try:
            out.write_text(json.dumps(plan_to_json(result), indent=2, default=str) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot save the plan to {out}: {exc.strerror or exc}")
        click.echo(f"Saved the plan to {out}; run `reconcile apply --env {env_name} {out}` to carry it out.", err=True)
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES)


@contextmanager
def _stop_on_signals(cancellation: Cancellation, armed: Callable[[], bool]) -> Iterator[None]:
    """Once `armed` (the plan approved), the first Ctrl-C (or SIGTERM) asks the apply to stop once the running
    actions end and are recorded (a rollout wait at once); before that, or a second time, it interrupts outright."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in stopping}

    def stop(number: int, _frame: FrameType | None) -> None:
        if cancellation.cancelled or not armed():
            raise KeyboardInterrupt
        cancellation.cancel(f"interrupted by {signal.Signals(number).name}")
        warn("stopping after the running actions (again to interrupt them)")

    for number in stopping:
        signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _line_printer() -> Callable[[str], None]:
    """Print a line on stdout at once: apply prints one per action, and `click.echo` asked the terminal (isatty)
    and looked for colour codes to strip on every line (7 % of the main thread at 5,000 actions). The lines carry
    colour only when stdout is a terminal, so nothing needs stripping."""
    stdout = sys.stdout  # as it is now: a test runner swaps it for the command

    def print_line(line: str) -> None:
        stdout.write(line + "\n")
        stdout.flush()

    return print_line


@main.command()
@click.option("--env", "env_name", required=True, help="Environment to apply.")
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-mass-delete", is_flag=True, help="Allow a plan deleting most owned resources.")
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Up to N independent actions at once (Airbyte's; dependencies and delete order kept). 1: one after "
    "another, in plan order.",
)
@allow_options
@system_option
@pass_invocation
@guarded
def apply(
    invocation: Invocation,
    env_name: str,
    plan_file: Path | None,
    auto_approve: bool,
    allow_mass_delete: bool,
    parallelism: int,
    allow: tuple[str, ...],
    systems: tuple[str, ...],
) -> None:
    """Make the live systems match the specs, or carry out a saved plan exactly (git -> live)."""
    from reconciler import service
    from reconciler.core.plan import Override
    from reconciler.core.plan_codec import plan_from_json
    from reconciler.render.report import ConsoleListener, apply_summary

    saved: Plan | None = None
    if plan_file is not None:
        try:
            saved = plan_from_json(json.loads(plan_file.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            fail(f"{plan_file} is not JSON: {exc}")

    approved = [auto_approve or plan_file is not None]

    def approve(_plan: Plan) -> None:
        if approved[0]:
            return
        if not sys.stdin.isatty():
            fail("apply needs --auto-approve when not run interactively (or pass a saved plan file)")
        click.confirm("Apply these changes?", abort=True)
        approved[0] = True

    console = ConsoleListener(_line_printer(), warn, colour=sys.stdout.isatty())
    reconcile = service.ReconcileService.of_folder(invocation.root, listeners=[console])
    reconcile.parallelism = parallelism
    with _stop_on_signals(reconcile.cancellation, lambda: approved[0]):
        report = reconcile.apply(
            env_name,
            systems=systems,
            saved=saved,
            allow_mass_delete=allow_mass_delete,
            allow=[Override(name) for name in allow],
            approve=approve,
        )
    if report.applied:
        click.echo(apply_summary(report.done, report.failed, cancelled=report.cancelled, error=report.exception))
    service.raise_for(report)


@main.group()
def github() -> None:
    """GitHub: the pull-request plan comment (git + live -> pull request)."""


@github.command(name="comment")
@click.option("--env", "environments", multiple=True, metavar="NAME", help="Plan this environment (repeatable; "
              "default: every environment file).")  # fmt: skip
@click.option("--repository", metavar="OWNER/NAME", help="Default: GITHUB_REPOSITORY.")
@click.option(
    "--pr", "number", type=click.IntRange(min=1), help="Pull request number. Default: from GITHUB_EVENT_PATH."
)
@click.option("--api-url", metavar="URL", help="GitHub API. Default: GITHUB_API_URL, else https://api.github.com.")
@click.option("--author", metavar="LOGIN", help="Only edit a marked comment by this login (e.g. github-actions[bot]).")
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_STEP_SUMMARY",
    help="Append the whole plan here. Default: GITHUB_STEP_SUMMARY.",
)
@system_option
@pass_invocation
@guarded
def github_comment(
    invocation: Invocation,
    environments: tuple[str, ...],
    repository: str | None,
    number: int | None,
    api_url: str | None,
    author: str | None,
    summary: Path | None,
    systems: tuple[str, ...],
) -> None:
    """Plan each environment and post it on the pull request as one comment, edited in place on every run
    (found again by a hidden marker). Over 60,000 characters the comment is cut; the job summary gets it all.
    The token comes from GITHUB_TOKEN only. Exit 1 when an environment could not be planned."""
    from dataclasses import replace

    from reconciler import service
    from reconciler.clients.github import GitHubClient
    from reconciler.render.pull_request import comment_body, summary_text
    from reconciler.service import pull_request

    environ = _environ()
    token = pull_request.github_token(environ)
    target = pull_request.pull_request_from(environ, repository=repository, number=number, api_url=api_url)
    sections = pull_request.plan_sections(
        service.ReconcileService.of_folder(invocation.root), environments, systems=systems
    )
    if summary is not None:
        try:
            used = summary.stat().st_size if summary.exists() else 0
            with summary.open("a", encoding="utf-8") as out:
                out.write(summary_text(sections, replace(target.header, summary=True), used=used) + "\n")
        except OSError as exc:  # the comment matters more: post it, pointing at `reconcile plan` instead
            warn(f"cannot write the job summary {summary}: {exc.strerror or exc}; the comment is posted without it")
            summary = None
    header = replace(target.header, summary=summary is not None)
    body, cut = comment_body(sections, header)
    with GitHubClient(target.repository, token, api_url=target.api_url) as client:
        published = pull_request.publish(client, target.number, body, author=author)
    verb = "Created" if published.created else "Updated"
    note = f" (cut to {len(body):,} characters; the whole plan is in {summary or 'reconcile plan'})" if cut else ""
    click.echo(f"{verb} the plan comment on {target.repository}#{target.number}: {published.comment.url}{note}")
    failed = [section.environment for section in sections if section.error is not None]
    if failed:
        fail(f"could not plan {', '.join(failed)} (the comment says why)")


@main.command(name="diff-env")
@click.argument("left")
@click.argument("right")
@pass_invocation
@guarded
def diff_env(invocation: Invocation, left: str, right: str) -> None:
    """What differs between two environments' desired states (git -> screen, offline)."""
    from reconciler import service
    from reconciler.core.compare import compare_environments
    from reconciler.render.table import render_table

    environments = service.validate(invocation.root, _environ())
    for name in (left, right):
        if name not in environments:
            fail(f"no environment {name!r} (known: {', '.join(sorted(environments))})")
    rows = compare_environments(environments[left], environments[right])
    if not rows:
        click.echo(f"{left} and {right} declare the same images and resources.")
        return
    click.echo(render_table(["what", "name", left, right], [(r.area, r.item, r.left, r.right) for r in rows]))


def with_real_servers(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--with superset` (repeatable) for the demo and the sandbox, which install and run real servers."""
    return click.option(
        "--with",
        "with_systems",
        type=click.Choice(["superset"]),
        multiple=True,
        help=f"{what} (superset: prod and qa; installed once, about 2 minutes).",
    )


@main.command()
@click.option("--keep", is_flag=True, help="Leave the stand-ins running at the end until Ctrl-C.")
@with_real_servers("Add a system's chapter on real servers")
@click.option(
    "--screenshots",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --with superset: save PNGs of the prod and QA dashboards here (needs chromium).",
)
@pass_invocation
@guarded
def demo(invocation: Invocation, keep: bool, with_systems: tuple[str, ...], screenshots: Path | None) -> None:
    """The whole loop on local stand-ins in a scratch copy: validate, plan, apply, re-plan, drift (git -> stand-ins)."""
    from reconciler.demo import run_demo

    if screenshots is not None and "superset" not in with_systems:
        fail("--screenshots needs --with superset")
    run_demo(invocation.root, echo=click.echo, keep=keep, superset="superset" in with_systems, screenshots=screenshots)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".reconciler/sandbox"),
    show_default=True,
    help="Where the stand-ins keep their data between runs.",
)
@with_real_servers("Also run real servers for this system")
@pass_invocation
@guarded
def sandbox(invocation: Invocation, host: str, data_dir: Path, with_systems: tuple[str, ...]) -> None:
    """Run the local stand-in servers in the foreground (Ctrl-C stops them); no data leaves this machine."""
    from reconciler.sandbox.launch import run_sandbox

    directory = data_dir if data_dir.is_absolute() else invocation.root / data_dir
    run_sandbox(invocation.root, host, directory, echo=click.echo, superset="superset" in with_systems)


def _seconds_option(name: str, envvar: str, default: float, help: str) -> Callable[[F], F]:
    """A controller option of more than 0 seconds, also read from `envvar`."""
    return click.option(
        name,
        envvar=envvar,
        show_envvar=True,
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=True,
        help=help,
    )


def _split_names(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """`--env a --env b`, or RECONCILER_ENVIRONMENTS=a,b."""
    if value:
        return value
    import os

    return tuple(name.strip() for name in os.environ.get("RECONCILER_ENVIRONMENTS", "").split(",") if name.strip())


def _default_identity() -> str:
    import socket

    return socket.gethostname()


@main.command()
@click.option(
    "--repo",
    envvar="RECONCILER_REPO",
    show_envvar=True,
    required=True,
    help="Git repository: https URL, path or file:// URL.",
)
@click.option(
    "--branch", envvar="RECONCILER_BRANCH", show_envvar=True, default="main", show_default=True, help="Branch followed."
)
@click.option(
    "--path",
    "inner_path",
    envvar="RECONCILER_PATH",
    show_envvar=True,
    default=".",
    show_default=True,
    help="Project directory in the repo.",
)
@click.option(
    "--env",
    "environments",
    multiple=True,
    callback=_split_names,
    help="Environment owned, applied in this order; repeatable (RECONCILER_ENVIRONMENTS=a,b). Default: "
    "controller.yaml's, else every one in the repository.",
)
@click.option(
    "--config",
    envvar="RECONCILER_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="controller.yaml.",
)
@_seconds_option("--poll-interval", "RECONCILER_POLL_INTERVAL", 60.0, "Seconds between git polls (+-10% jitter).")
@_seconds_option("--drift-interval", "RECONCILER_DRIFT_INTERVAL", 300.0, "Seconds between drift checks (+-10% jitter).")
@click.option(
    "--listen",
    envvar="RECONCILER_LISTEN",
    show_envvar=True,
    default="0.0.0.0:8080",
    show_default=True,
    help="HOST:PORT of /healthz, /readyz, /metrics and /webhook/github.",
)
@click.option(
    "--cache-dir",
    envvar="RECONCILER_CACHE_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The git mirror and checked-out revisions.  [default: $HOME/.cache/reconciler]",
)
@click.option(
    "--leader-election/--no-leader-election",
    envvar="RECONCILER_LEADER_ELECTION",
    show_envvar=True,
    default=False,
    show_default=True,
    help="Take a Lease before acting.",
)
@click.option(
    "--lease-namespace",
    envvar="RECONCILER_LEASE_NAMESPACE",
    show_envvar=True,
    help="Namespace of the Lease.  [default: POD_NAMESPACE, else the in-cluster namespace]",
)
@click.option(
    "--lease-name", envvar="RECONCILER_LEASE_NAME", show_envvar=True, default="reconciler-leader", show_default=True
)
@click.option(
    "--identity",
    envvar="RECONCILER_IDENTITY",
    show_envvar=True,
    help="This replica's Lease holder identity.  [default: hostname]",
)
@click.option(
    "--kubeconfig",
    envvar="RECONCILER_KUBECONFIG",
    show_envvar=True,
    help="The Lease's cluster.  [default: in-cluster when KUBERNETES_SERVICE_HOST is set, else KUBECONFIG]",
)
@_seconds_option(
    "--lease-duration",
    "RECONCILER_LEASE_DURATION",
    15.0,
    "Seconds an unrenewed Lease lasts before another replica takes it.",
)
@_seconds_option(
    "--lease-renew-deadline",
    "RECONCILER_LEASE_RENEW_DEADLINE",
    10.0,
    "Seconds the leader may fail to renew before it stops acting (less than --lease-duration).",
)
@_seconds_option(
    "--lease-retry-period", "RECONCILER_LEASE_RETRY_PERIOD", 2.0, "Seconds between attempts to take or renew the Lease."
)
@click.option("--once", is_flag=True, help="One sync of every environment, then exit (1 if any failed).")
@pass_invocation
@guarded
def controller(
    invocation: Invocation,
    repo: str,
    branch: str,
    inner_path: str,
    environments: tuple[str, ...],
    config: Path | None,
    poll_interval: float,
    drift_interval: float,
    listen: str,
    cache_dir: Path | None,
    leader_election: bool,
    lease_namespace: str | None,
    lease_name: str,
    identity: str | None,
    kubeconfig: str | None,
    lease_duration: float,
    lease_renew_deadline: float,
    lease_retry_period: float,
    once: bool,
) -> None:
    """Follow a git branch and keep the owned environments applied; report drift (git -> live, continuously)."""
    from reconciler.controller.app import ControllerSettings, build
    from reconciler.controller.logs import configure_logging

    memory.long_running()  # every revision's specs stay collectable: frozen only until the next new load
    configure_logging(debug=invocation.debug)
    settings = ControllerSettings(
        repo=repo,
        branch=branch,
        path=inner_path,
        environments=environments,
        config=config,
        poll_interval=poll_interval,
        drift_interval=drift_interval,
        listen=listen,
        cache_dir=cache_dir or Path.home() / ".cache" / "reconciler",
        leader_election=leader_election,
        lease_namespace=lease_namespace,
        lease_name=lease_name,
        identity=identity or _default_identity(),
        kubeconfig=kubeconfig,
        lease_duration=lease_duration,
        lease_renew_deadline=lease_renew_deadline,
        lease_retry_period=lease_retry_period,
    )
    sys.exit(build(settings).run(once=once))


if __name__ == "__main__":
    main()
