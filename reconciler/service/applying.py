"""The service, step 3: carry out a plan in order, recording each success at once, telling listeners.

Stops at the first failure, or before the next action once cancelled; what was done is recorded
either way, so a re-run converges. A create (or replace) is journaled as pending before it starts,
for systems that say how long a create may take to appear (`create_settle_seconds`): killed with
it in flight (or given up on after timeouts), the next plan waits for its object rather than
create a second one (planning.py); one the server refused is settled at once, and so is one picked but never
sent because the apply stopped (a failure, Ctrl-C, or the journal itself that could not be written).
Independent actions may run at once (`parallelism`), within the order `prerequisites` keeps; then
the journal's group commits are written off the main thread, and what waits on one starts once it is durable.
One structlog event per step (env, system, resource, action, outcome); never a secret
(errors are redacted, values never reach here).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import structlog

from reconciler.cancellation import Cancellation
from reconciler.core.events import Event, EventKind, Listener
from reconciler.core.model import OwnershipRecord, PendingCreate, ResourceKey
from reconciler.core.plan import Action, ActionKind, Plan
from reconciler.errors import ApplyError, CancelledError, PlanError, ReconcilerError
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation, Provider
from reconciler.service.session import Session
from reconciler.spec.secrets import parse_secret_label
from reconciler.state import StateStore

log = structlog.get_logger("reconciler.service")

DEFAULT_PARALLELISM = 10
"""`reconcile apply`'s default, Terraform's: a system that rate-limits answers 429 and its client backs off."""


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


def _log_step(logger: Any, env: str, action: Action, outcome: str, **extra: object) -> None:
    logger.info(
        "apply.action",
        env=env,
        system=action.key.system,
        resource=f"{action.key.kind}/{action.key.name}",
        action=action.kind.value,
        outcome=outcome,
        **extra,
    )


def record_all(
    state: StateStore,
    entries: Sequence[tuple[ResourceKey, OwnershipRecord | None]],
    intents: Sequence[PendingCreate] = (),
) -> None:
    """Record what several actions left, then journal the creates about to start as pending, at once where the
    store can (the file store: one write and one fsync for them all)."""
    batch = getattr(state, "record_all", None)
    if batch is not None:
        batch(entries, intents)
        return
    for key, record in entries:
        state.record(key, record)
    for pending in intents:
        state.intend(pending)


def prerequisites(plan: Plan, concurrent: Callable[[str], bool]) -> list[frozenset[int]]:
    """For each action, the earlier actions (by index) it must wait for.

    An action waits for the last earlier action on its own resource, on a resource it depends on or
    that depends on it; a delete waits for everything before it and everything after waits for it
    (deletes keep their order, and a replace's cascade stays around it); a system that does not
    declare `concurrent_apply` runs its actions one after another in plan order.
    """
    waits: list[frozenset[int]] = []
    barrier: int | None = None  # the last delete
    last_of: dict[ResourceKey, int] = {}
    users: dict[ResourceKey, list[int]] = {}
    last_in_system: dict[str, int] = {}
    for index, action in enumerate(plan.actions):
        uses = action.desired.depends_on if action.desired is not None else ()
        if action.kind == ActionKind.DELETE:
            before = set(range(barrier + 1 if barrier is not None else 0, index))
            waits.append(frozenset(before | ({barrier} if barrier is not None else set())))
            barrier = index
            last_of, users, last_in_system = {}, {}, {}
            continue
        before = {last_of[key] for key in (action.key, *uses) if key in last_of}
        before.update(users.get(action.key, ()))
        if not concurrent(action.key.system) and action.key.system in last_in_system:
            before.add(last_in_system[action.key.system])
        if barrier is not None:
            before.add(barrier)
        waits.append(frozenset(before))
        last_of[action.key] = index
        for key in uses:
            users.setdefault(key, []).append(index)
        last_in_system[action.key.system] = index
    return waits


@dataclass
class _Running:
    index: int
    action: Action
    future: Future[tuple[ApplyOutcome | None, ReconcilerError | None]]


_Ended = list[tuple[_Running, ApplyOutcome | None, ReconcilerError | None]]
"""Steps that ended together, each with its outcome or its error."""


@dataclass
class _Batch:
    """One group commit: what the scheduling rounds since the last one left to write, and what waits on it."""

    ended: _Ended = field(default_factory=list)
    """Steps that ended: told about, and their dependents free to start, once their records are durable."""
    entries: list[tuple[ResourceKey, OwnershipRecord | None]] = field(default_factory=list)
    intents: list[PendingCreate] = field(default_factory=list)
    starting: list[int] = field(default_factory=list)
    """Actions sent once this commit is durable: the creates whose pending lines it writes, and the actions waiting
    for records it (or the commit before it) writes."""


def _run(
    provider: Provider, action: Action, context: ApplyContext
) -> tuple[ApplyOutcome | None, ReconcilerError | None]:
    try:
        return provider.apply(action, context), None
    except ReconcilerError as exc:
        return None, exc


def _inline(
    call: Callable[[], tuple[ApplyOutcome | None, ReconcilerError | None]],
) -> Future[tuple[ApplyOutcome | None, ReconcilerError | None]]:
    future: Future[tuple[ApplyOutcome | None, ReconcilerError | None]] = Future()
    future.set_result(call())  # anything but a ReconcilerError propagates here, as it always did
    return future


def apply_plan(
    session: Session,
    plan: Plan,
    listener: Listener = lambda _event: None,
    cancellation: Cancellation | None = None,
    *,
    parallelism: int = 1,
) -> ApplyReport:
    """Carry out the plan, recording each success at once; stops starting actions at the first failure or
    cancellation and lets the running ones finish (and be recorded).

    With `parallelism` 1 the actions run one after another in plan order, on this thread. With more,
    up to that many run at once on worker threads, each only once its `prerequisites` are done; the
    records and every event but progress lines stay on this thread, and the state journal is written by a
    journal thread, one group commit at a time, while this one tells about the last round and collects what
    ends: the rounds that queue up during one commit are written together by the next. An action's
    dependents start only once its record is durable, a create only once its pending line is.
    """
    signal = cancellation or Cancellation()
    env = session.env.name
    step_log = log.bind()  # the logger as configured now, bound once: structlog's proxy binds anew on every call
    records = session.state.load()
    for key in plan.adopted:
        previous = records.get(key, OwnershipRecord(key, ""))
        records[key] = OwnershipRecord(key, plan.live_ids[key], previous.fingerprints, previous.memo)
    for key in plan.forgotten:
        records.pop(key, None)
    if plan.adopted or plan.forgotten:
        session.state.save(records)
    for action in plan.actions:
        if action.key.system not in session.providers:
            raise PlanError(
                f"the plan has {action.key} but {action.key.system} is not configured in {plan.environment}"
            )
    ids: dict[ResourceKey, str] = dict(plan.live_ids)
    known = MappingProxyType(ids)  # what actions read: written only here, under `guard`
    observations = session.observations
    report = ApplyReport(applied=True)
    guard = threading.Lock()

    def tell(event: Event) -> None:
        with guard:  # progress lines come from worker threads
            listener(event)

    def concurrent(system: str) -> bool:
        return parallelism > 1 and bool(getattr(session.providers[system], "concurrent_apply", False))

    waits = prerequisites(plan, concurrent)
    finished: set[int] = set()  # ended, their records durable
    ended_steps: set[int] = set()
    next_up = 0  # every action before it has started
    started: set[int] = set()
    intended: set[int] = set()  # actions journaled as pending creates
    sent: set[int] = set()
    running: list[_Running] = []
    stopping = False
    pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply") if parallelism > 1 else None
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal") if parallelism > 1 else None
    journal = threading.Lock()  # the state store is written by one thread at a time

    def remember(key: ResourceKey, memo: Mapping[str, str]) -> None:
        with guard:  # may come from a worker thread
            previous = records.get(key) or OwnershipRecord(key, ids.get(key, ""))
            records[key] = replace(previous, memo={**previous.memo, **memo})
            record = records[key]
        with journal:
            session.state.record(key, record)

    def needs_intent(index: int) -> bool:
        action = plan.actions[index]
        settle = float(getattr(session.providers[action.key.system], "create_settle_seconds", 0.0))
        return settle > 0 and action.kind in (ActionKind.CREATE, ActionKind.REPLACE)

    def intent(index: int, now: float) -> PendingCreate:
        action = plan.actions[index]
        settle = float(getattr(session.providers[action.key.system], "create_settle_seconds", 0.0))
        return PendingCreate(action.key, now, now + settle)

    def start(index: int) -> None:
        """Send the action off (its pending create, if any, is journaled already)."""
        action = plan.actions[index]

        def progress(message: str, action: Action = action) -> None:
            tell(Event(EventKind.ACTION_PROGRESS, env, message, action))

        context = ApplyContext(
            known,  # its prerequisites' ids are in it, and nothing it reads is written while it runs (a copy per
            # action cost 61 us at 5,000 ids: it grew with N)
            lambda label: session.resolver.value(parse_secret_label(label)),
            progress,
            observation=observations.get(action.key.system, Observation({})),
            cancellation=signal,
            remember=remember,
        )
        sent.add(index)
        tell(Event(EventKind.ACTION_STARTED, env, "", action))
        _log_step(step_log, env, action, "started")
        provider = session.providers[action.key.system]
        if pool is None:
            future = _inline(lambda: _run(provider, action, context))
        else:
            future = pool.submit(contextvars.copy_context().run, _run, provider, action, context)
        running.append(_Running(index, action, future))

    def settle(steps: list[_Running]) -> tuple[_Ended, list[tuple[ResourceKey, OwnershipRecord | None]]]:
        """The records the steps that ended together leave (written with the next group commit)."""
        nonlocal stopping
        ended = [(step, *step.future.result()) for step in steps]
        entries: list[tuple[ResourceKey, OwnershipRecord | None]] = []
        with guard:  # `remember` writes records too
            for step, outcome, error in ended:
                key = step.action.key
                ended_steps.add(step.index)
                if outcome is None:
                    stopping = True
                    if error is not None and not error.retryable and step.index in intended:
                        entries.append((key, records.get(key)))  # answered (refused): nothing will land
                    continue
                if step.action.kind == ActionKind.DELETE or outcome.id is None:
                    records.pop(key, None)
                    ids.pop(key, None)
                else:
                    memo = records[key].memo if key in records else {}
                    memo = dict(outcome.memo) if outcome.memo is not None else dict(memo)
                    records[key] = OwnershipRecord(key, outcome.id, dict(outcome.fingerprints), memo)
                    ids[key] = outcome.id
                entries.append((key, records.get(key)))
        return ended, entries

    def announce(ended: _Ended) -> None:
        """Tell about each step that ended (its record is durable by now)."""
        for step, outcome, error in ended:
            action = step.action
            if error is not None or outcome is None:
                assert error is not None
                if report.exception is None or (isinstance(report.exception, CancelledError) and report.failed is None):
                    report.failed, report.error, report.exception = action, str(error), error
                _log_step(step_log, env, action, "failed", error=str(error), retryable=error.retryable)
                tell(Event(EventKind.ACTION_FAILED, env, str(error), action))
                continue
            report.done.append(action)
            report.notes += outcome.notes
            _log_step(step_log, env, action, "done")
            tell(Event(EventKind.ACTION_DONE, env, "; ".join(outcome.notes), action))

    def commit(batch: _Batch) -> None:
        with journal:  # `remember` writes the journal too
            record_all(session.state, batch.entries, batch.intents)

    def send(batch: _Batch) -> Future[None]:
        """The batch's group commit: on the journal thread (this one prepares the next round meanwhile) or here."""
        if writer is None:
            future: Future[None] = Future()
            commit(batch)  # an error propagates here, as it always did
            future.set_result(None)
            return future
        return writer.submit(commit, batch)

    queued = _Batch()  # what the rounds since the last group commit left: written together by the next one
    in_flight: tuple[Future[None], _Batch] | None = None

    def awaiting() -> int:
        """Actions picked to start, waiting for a group commit (the one being written, or the next)."""
        return len(queued.starting) + (len(in_flight[1].starting) if in_flight is not None else 0)

    def settling(indices: Iterable[int]) -> list[tuple[ResourceKey, OwnershipRecord | None]]:
        """Journal entries settling the pending lines of these picked creates, which were never sent."""
        with guard:
            return [(plan.actions[i].key, records.get(plan.actions[i].key)) for i in indices]

    def collect(steps: list[_Running]) -> None:
        ended, entries = settle(steps)
        queued.ended += ended
        queued.entries += entries

    def flush() -> None:
        """Send the queued rounds' group commit, unless one is being written (then the next one carries them)."""
        nonlocal queued, in_flight
        if stopping and queued.starting:  # picked, but their pending lines are not written yet: never sent
            queued.intents, queued.starting = [], []
        if in_flight is None and (queued.ended or queued.entries or queued.intents or queued.starting):
            in_flight, queued = (send(queued), queued), _Batch()

    def settle_unsent() -> None:
        """After an error (the journal could not be written, a second Ctrl-C): the creates picked but never sent
        have their pending lines settled, so the next plan does not wait `create_settle_seconds` for them."""
        entries = settling(sorted(intended - sent))
        if not entries:
            return
        try:
            with journal:
                record_all(session.state, entries)
        except ReconcilerError as exc:  # still failing (a full disk): the next plan waits for them, as after a kill
            log.warning("apply.unsent_not_settled", env=env, creates=len(entries), error=str(exc))

    def notice_cancel() -> None:
        """Stop starting actions once cancelled, before the first one not sent yet (picked ones included: Ctrl-C
        may come while the group commit they wait for is written)."""
        nonlocal stopping
        if stopping or not signal.cancelled:
            return
        upcoming = next((plan.actions[i] for i in range(len(plan.actions)) if i not in sent), None)
        if upcoming is None:
            return
        report.exception = CancelledError(f"{signal.reason} before {upcoming.kind.value} {upcoming.key}")
        report.error = str(report.exception)
        log.info("apply.cancelled", env=env, before=str(upcoming.key), done=len(report.done))
        stopping = True

    completed = False
    try:
        steps: list[_Running] = []
        while True:
            collect(steps)
            while next_up < len(plan.actions) and next_up in started:
                next_up += 1
            notice_cancel()
            if not stopping:
                now = time.time()  # wall clock: the next run, maybe another process, reads the pending creates
                for index in range(next_up, len(plan.actions)):
                    if len(running) + awaiting() >= parallelism:
                        break
                    if index in started or not waits[index] <= ended_steps:
                        continue
                    started.add(index)
                    if waits[index] <= finished and not needs_intent(index):
                        start(index)  # the records it waits for are durable
                        continue
                    # sent once the next group commit is durable: the records it waits for, its pending line
                    if needs_intent(index):
                        queued.intents.append(intent(index, now))
                        intended.add(index)
                    queued.starting.append(index)
            flush()
            if in_flight is None and not running:
                break
            waiting: list[Future[Any]] = [step.future for step in running]
            if in_flight is not None:
                waiting.append(in_flight[0])
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            steps = sorted((s for s in running if s.future in done), key=lambda s: s.index)
            running = [step for step in running if step.future not in done]
            if in_flight is None or in_flight[0] not in done:
                continue
            future, batch = in_flight
            in_flight = None
            future.result()  # a journal that cannot be written stops the apply, as it always did
            finished.update(step.index for step, _outcome, _error in batch.ended)
            collect(steps)
            steps = []
            notice_cancel()  # a Ctrl-C during that sync: what it journaled to start is not sent
            if stopping:  # picked before the failure or Ctrl-C, never sent: their pending lines are settled
                queued.entries += settling(i for i in batch.starting if i in intended)
            flush()  # the rounds that queued up during that sync are written while this one tells and sends
            announce(batch.ended)
            if not stopping:
                for index in batch.starting:
                    start(index)
        completed = True
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if writer is not None:
            writer.shutdown(wait=True)  # no commit is being written after it: a settling line comes last
        if not completed:
            settle_unsent()
        session.state.compact()  # this run's journal folded into the state file (a crash leaves it for the next load)
    finished_line = f"{len(report.done)} of {len(plan.actions)} action(s) done" + (
        f"; stopped: {report.error}" if report.exception is not None else ""
    )
    log.info("apply.finished", env=env, done=len(report.done), planned=len(plan.actions), ok=report.ok)
    listener(Event(EventKind.APPLY_FINISHED, env, finished_line))
    return report


def raise_for(report: ApplyReport) -> None:
    """`ApplyError` for a failed or cancelled apply, as retryable as its cause; nothing when it succeeded."""
    if report.failed is not None:
        next_step = (
            "whether it took effect is unknown: run apply again, it plans from what is live and settles it"
            if getattr(report.exception, "outcome_unknown", False)
            else "fix the cause and run apply again"
        )
        raise ApplyError(
            f"{report.failed.kind.value} {report.failed.key} failed: {report.error}\n"
            f"{len(report.done)} action(s) before it were applied and recorded; {next_step}",
            cause=report.exception,
        )
    if report.exception is not None:
        raise ApplyError(
            f"apply stopped: {report.error}\n"
            f"{len(report.done)} action(s) before it were applied and recorded; run apply again to carry on",
            cause=report.exception,
        )
