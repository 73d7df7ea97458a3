"""The service, step 3: carry out a plan in order, recording each success at once, telling listeners.

Stops at the first failure, or before the next action once cancelled; what was done is recorded
either way, so a re-run converges. One structlog event per step (env, system, resource, action,
outcome); never a secret (errors are redacted, values never reach here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from reconciler.cancellation import Cancellation
from reconciler.core.events import Event, EventKind, Listener
from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, ActionKind, Plan
from reconciler.errors import ApplyError, CancelledError, PlanError, ReconcilerError
from reconciler.providers.base import ApplyContext, Observation
from reconciler.service.session import Session
from reconciler.spec.secrets import parse_secret_label

log = structlog.get_logger("reconciler.service")


@dataclass
class ApplyReport:
    """What an apply did: the actions done (and recorded), the one that failed and why."""

    done: list[Action] = field(default_factory=list)
    failed: Action | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    exception: ReconcilerError | None = None
    """The failure itself (says whether retrying can help), or the `CancelledError` that stopped the run."""
    applied: bool = False
    """False when the plan had nothing to carry out (no changes, adoptions or forgotten records)."""

    @property
    def ok(self) -> bool:
        return self.exception is None

    @property
    def cancelled(self) -> bool:
        return isinstance(self.exception, CancelledError)


def _observations(session: Session, plan: Plan) -> Mapping[str, Observation]:
    """Each system's observation from making `plan` in this session, if it was made here."""
    if session.observed is not None and session.observed[0] is plan:
        return session.observed[1]
    return {}


def _log_step(session: Session, action: Action, outcome: str, **extra: object) -> None:
    log.info(
        "apply.action",
        env=session.env.name,
        system=action.key.system,
        resource=f"{action.key.kind}/{action.key.name}",
        action=action.kind.value,
        outcome=outcome,
        **extra,
    )


def apply_plan(
    session: Session,
    plan: Plan,
    listener: Listener = lambda _event: None,
    cancellation: Cancellation | None = None,
) -> ApplyReport:
    """Carry out the plan in order, recording each success at once; stops at the first failure or cancellation."""
    signal = cancellation or Cancellation()
    env = session.env.name
    records = session.state.load()
    for key in plan.adopted:
        records[key] = OwnershipRecord(key, plan.live_ids[key], records.get(key, OwnershipRecord(key, "")).fingerprints)
    for key in plan.forgotten:
        records.pop(key, None)
    if plan.adopted or plan.forgotten:
        session.state.save(records)
    ids: dict[ResourceKey, str] = dict(plan.live_ids)
    observations = _observations(session, plan)
    report = ApplyReport(applied=True)
    for action in plan.actions:
        provider = session.providers.get(action.key.system)
        if provider is None:
            raise PlanError(
                f"the plan has {action.key} but {action.key.system} is not configured in {plan.environment}"
            )
        if signal.cancelled:
            report.exception = CancelledError(f"{signal.reason} before {action.kind.value} {action.key}")
            report.error = str(report.exception)
            log.info("apply.cancelled", env=env, before=str(action.key), done=len(report.done))
            break

        def progress(message: str, action: Action = action) -> None:
            listener(Event(EventKind.ACTION_PROGRESS, env, message, action))

        context = ApplyContext(
            ids,
            lambda label: session.resolver.value(parse_secret_label(label)),
            progress,
            observation=observations.get(action.key.system),
            cancellation=signal,
        )
        listener(Event(EventKind.ACTION_STARTED, env, "", action))
        _log_step(session, action, "started")
        try:
            outcome = provider.apply(action, context)
        except ReconcilerError as exc:
            report.failed, report.error, report.exception = action, str(exc), exc
            _log_step(session, action, "failed", error=str(exc), retryable=exc.retryable)
            listener(Event(EventKind.ACTION_FAILED, env, str(exc), action))
            break
        if action.kind == ActionKind.DELETE or outcome.id is None:
            records.pop(action.key, None)
            ids.pop(action.key, None)
        else:
            records[action.key] = OwnershipRecord(action.key, outcome.id, dict(outcome.fingerprints))
            ids[action.key] = outcome.id
        session.state.record(action.key, records.get(action.key))
        report.done.append(action)
        report.notes += outcome.notes
        _log_step(session, action, "done")
        listener(Event(EventKind.ACTION_DONE, env, "; ".join(outcome.notes), action))
    session.state.compact()  # this run's journal folded into the state file (a crash leaves it for the next load)
    finished = f"{len(report.done)} of {len(plan.actions)} action(s) done" + (
        f"; stopped: {report.error}" if report.exception is not None else ""
    )
    log.info("apply.finished", env=env, done=len(report.done), planned=len(plan.actions), ok=report.ok)
    listener(Event(EventKind.APPLY_FINISHED, env, finished))
    return report


def raise_for(report: ApplyReport) -> None:
    """`ApplyError` for a failed or cancelled apply, as retryable as its cause; nothing when it succeeded."""
    if report.failed is not None:
        raise ApplyError(
            f"{report.failed.kind.value} {report.failed.key} failed: {report.error}\n"
            f"{len(report.done)} action(s) before it were applied and recorded; fix the cause and run apply again",
            cause=report.exception,
        )
    if report.exception is not None:
        raise ApplyError(
            f"apply stopped: {report.error}\n"
            f"{len(report.done)} action(s) before it were applied and recorded; run apply again to carry on",
            cause=report.exception,
        )
