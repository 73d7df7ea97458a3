"""The reconcile service: one way to plan and apply an environment, for the CLI, the demo and the controller.

`ReconcileService(source, listeners=[...]).apply("qa")` opens the environment from its spec
source, takes its write lock, plans (or checks a saved plan against a fresh one), lets the
caller approve, applies (up to `parallelism` independent actions at once), and tells every
listener as it goes. A dry run is `plan`: stop after it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.cancellation import Cancellation
from reconciler.core.events import Event, EventKind, Listener
from reconciler.core.model import ResourceKey
from reconciler.core.plan import Override, Plan, only_actions
from reconciler.service.applying import DEFAULT_PARALLELISM, ApplyReport, apply_plan
from reconciler.service.planning import check_saved_plan, make_plan
from reconciler.service.session import ProviderFactory, Session, locked, open_session
from reconciler.service.source import FolderSource, SpecSource


@dataclass
class ReconcileService:
    """Plans and applies the environments of one spec source; listeners hear every step, in order."""

    source: SpecSource
    environ: Mapping[str, str] | None = None
    """Variables for `${VAR}` and `secretRef: {env: ...}` (default: the process environment)."""
    listeners: Sequence[Listener] = ()
    cancellation: Cancellation = field(default_factory=Cancellation)
    """Set it (from another thread, a signal handler) to stop an apply within a poll of a long wait."""
    factories: Mapping[str, ProviderFactory] | None = None
    """How each system's provider is made (default: every registered system)."""
    parallelism: int = DEFAULT_PARALLELISM
    """How many independent actions may run at once (1: one after another, in plan order); Terraform's 10 by default."""

    @classmethod
    def of_folder(
        cls, root: Path, environ: Mapping[str, str] | None = None, listeners: Sequence[Listener] = ()
    ) -> ReconcileService:
        return cls(FolderSource(root), environ, listeners)

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)

    def plan(
        self,
        env: str,
        *,
        systems: Sequence[str] = (),
        allow_mass_delete: bool = False,
        allow: Collection[Override] = (),
    ) -> Plan:
        """Observe and plan `env` (reads only, no lock); `allow` lifts the refusals a person allowed. The listings
        start while the specs load (`open_session(prefetch=True)`); never in `apply`, which lists under the lock."""
        with open_session(
            self.source, env, self.environ, factories=self.factories, systems=systems, prefetch=True
        ) as session:
            plan = make_plan(session, allow_mass_delete=allow_mass_delete, allow=allow)
        self.emit(Event(EventKind.PLAN_MADE, env, plan=plan))
        return plan

    def apply(
        self,
        env: str,
        *,
        systems: Sequence[str] = (),
        saved: Plan | None = None,
        allow_mass_delete: bool = False,
        allow: Collection[Override] = (),
        approve: Callable[[Plan], None] = lambda _plan: None,
        command: str = "reconcile apply",
        only: Collection[ResourceKey] | None = None,
    ) -> ApplyReport:
        """Lock `env`, plan (or check `saved`), `approve` it (which may raise to stop), apply; the report says how
        it ended (`raise_for` turns a failure into `ApplyError`). With `only`, just the plan's actions on those
        resources run (the controller re-applying drift), or `PlanError` says why they cannot run alone."""
        with (
            open_session(
                self.source,
                env,
                self.environ,
                factories=self.factories,
                systems=systems,
                cancellation=self.cancellation,
            ) as session,
            locked(session, command, self.emit),
        ):
            return self._apply(session, saved, allow_mass_delete, allow, approve, only)

    def _apply(
        self,
        session: Session,
        saved: Plan | None,
        allow_mass_delete: bool,
        allow: Collection[Override],
        approve: Callable[[Plan], None],
        only: Collection[ResourceKey] | None = None,
    ) -> ApplyReport:
        self.cancellation.raise_if_cancelled()
        to_run = (
            check_saved_plan(session, saved)
            if saved is not None
            else make_plan(session, allow_mass_delete=allow_mass_delete, allow=allow)
        )
        if only is not None:
            to_run = only_actions(to_run, only)
        self.emit(Event(EventKind.PLAN_MADE, session.env.name, plan=to_run))
        if not to_run.has_changes and not to_run.adopted and not to_run.forgotten:
            return ApplyReport()
        if to_run.has_changes:
            approve(to_run)
        return apply_plan(session, to_run, self.emit, self.cancellation, parallelism=self.parallelism)
