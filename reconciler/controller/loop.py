"""The controller's loop: follow git, sync each owned environment to a new commit, check drift in between.

Above the reconcile service (the very loop the CLI runs), beside the ports it is given:

    poll (every poll interval, jittered, or at once on a webhook, here or on a standby through the Lease)
      new commit -> for each owned environment, in order: validate -> plan -> apply (or plan only)
    drift check (every drift interval, jittered, between commits)
      plan against the applied revision -> drift policy -> enforce a subset / alert -> Notifier.drift

It acts only while `Leadership` says it leads and hands the service the term's `Cancellation`,
so a lost lease (or SIGTERM) stops every wait at once and no new action starts. A failure in one
environment never stops the others; an invalid commit is reported and the last good revision stays
applied. What it remembers per environment (applied and last good revision, last result) is in
memory; the records of what is owned are in the state store.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from reconciler.cancellation import Cancellation
from reconciler.controller.config import DriftSettings, Mode, OwnedEnvironment
from reconciler.controller.drift import Drifted, assess, to_enforce
from reconciler.controller.git import GitFollower, RevisionSource
from reconciler.controller.metrics import OUT_OF_SYNC, SYNCED, ControllerMetrics
from reconciler.controller.ports import (
    AlertRecord,
    AlertStore,
    AppliedCommit,
    DriftFinding,
    Leadership,
    Notifier,
    PollRelay,
)
from reconciler.core.events import Event, EventKind
from reconciler.core.model import ResourceKey
from reconciler.core.plan import Action, ActionKind, Plan
from reconciler.errors import PermanentError, ReconcilerError, SpecError, is_retryable
from reconciler.service import ApplyReport, ProviderFactory, ReconcileService, validate
from reconciler.spec.loader import environment_names

log = structlog.get_logger("reconciler.controller")

COMMAND = "reconcile controller"
STUCK_AFTER_INTERVALS = 3
MAX_NAP_SECONDS = 1.0
"""The longest the loop sleeps without looking at its stop, leadership and webhook signals."""


def jittered(seconds: float, rng: random.Random) -> float:
    """`seconds` +-10 %, so replicas and environments do not all poll at the same instant."""
    return seconds * rng.uniform(0.9, 1.1)


@dataclass(frozen=True)
class LoopSettings:
    poll_interval: float = 60.0
    drift_interval: float = 300.0
    environments: tuple[OwnedEnvironment, ...] = ()
    """Owned environments in apply order; empty: every environment of the repository, mode apply."""
    drift: DriftSettings = field(default_factory=DriftSettings)
    environ: Mapping[str, str] | None = None
    """Variables for `${VAR}` and `secretRef: {env: ...}` (default: the process environment)."""
    parallelism: int = 10
    factories: Mapping[str, ProviderFactory] | None = None


@dataclass
class EnvironmentStatus:
    """What the loop remembers of one environment."""

    name: str
    mode: Mode
    applied: str | None = None
    """The revision last applied in full (plan-only: last planned); drift is judged against it."""
    last_good: str | None = None
    """The last revision that validated."""
    attempted: str | None = None
    result: str = ""
    """`applied`, `planned`, `invalid`, `failed` or `cancelled` (empty: no sync finished yet)."""
    error: str = ""
    retry: bool = False
    """The last sync failed in a way trying again may fix (an API down, the lock held): the next poll retries."""
    settled: bool = False
    """What is live is `applied` and nothing since (no apply failed or cancelled half-way after it): an invalid
    commit on top leaves it so, and drift is still checked against `applied`."""

    @property
    def in_sync(self) -> bool:
        return self.result in ("applied", "planned") and self.applied == self.attempted


@dataclass
class _Run:
    """Listener of one service call: the plan it made and when, for metrics."""

    plan: Plan | None = None
    planned_at: float = 0.0
    on_event: Callable[[], None] = lambda: None

    def __call__(self, event: Event) -> None:
        self.on_event()
        if event.kind == EventKind.PLAN_MADE and event.plan is not None:
            self.plan = event.plan
            self.planned_at = time.monotonic()


@dataclass
class Controller:
    follower: GitFollower
    settings: LoopSettings
    leadership: Leadership
    notifier: Notifier
    metrics: ControllerMetrics
    rng: random.Random = field(default_factory=random.Random)
    statuses: dict[str, EnvironmentStatus] = field(default_factory=dict)
    head: str | None = None
    """The branch's commit last seen in the remote."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set by `shutdown` (shared with whatever must stop waiting with the loop, e.g. the notifier)."""
    records: Callable[[str], AlertStore] | None = None
    """Each environment's controller records, beside its state (the alert store): the revision last applied in
    full is kept there, so a restart or a new leader does not apply the same commit again over live drift that
    its policy says only to report."""

    def __post_init__(self) -> None:
        self._stop = self.stop
        self._nudge = threading.Event()
        self._term: Cancellation | None = None
        self._last_tick = time.monotonic()
        self._waiting = False
        for owned in self.settings.environments:
            self.statuses[owned.name] = EnvironmentStatus(owned.name, owned.mode)
        if isinstance(self.leadership, PollRelay):
            self.leadership.on_poll_requested(self._poll_requested)

    # ---- signals from other threads ---------------------------------------------------------------

    def wake(self, commit: str = "") -> None:
        """Poll at once (a push webhook); on a standby, have the leader poll instead (through the leadership)."""
        if not self.leadership.leading and isinstance(self.leadership, PollRelay):
            log.info("poll.forwarded", revision=commit)
            self.leadership.request_poll(commit)
            return
        log.info("poll.requested", revision=commit)
        self._nudge.set()

    def _poll_requested(self, request: str) -> None:
        """Another replica got a push webhook and asked the leader (this one) to poll."""
        log.info("poll.requested", request=request)
        self._nudge.set()

    def shutdown(self, reason: str = "shutting down") -> None:
        """Stop taking new work; the running apply stops before its next action (running ones finish)."""
        self._stop.set()
        self._nudge.set()
        if self._term is not None:
            self._term.cancel(reason)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def waiting_to_lead(self) -> bool:
        return self._waiting

    def alive(self) -> bool:
        """False once the loop has not ticked for three poll intervals (waiting to lead counts as alive)."""
        if self._waiting or self._stop.is_set():
            return True
        limit = STUCK_AFTER_INTERVALS * max(self.settings.poll_interval, MAX_NAP_SECONDS)
        return time.monotonic() - self._last_tick < limit

    def ready(self) -> bool:
        """A standby waiting to lead is ready (it serves all it should: probes, metrics; the chart's rolling
        update and PodDisruptionBudget count it); a leader once every owned environment has finished its first
        sync, whatever its result."""
        if self._waiting:
            return True
        return bool(self.statuses) and all(status.result for status in self.statuses.values())

    def _acting(self, term: Cancellation) -> bool:
        """Whether this replica may start something now: its term holds and the leadership says it leads."""
        return not term.cancelled and self.leadership.leading

    def _tick(self) -> None:
        self._last_tick = time.monotonic()

    # ---- running --------------------------------------------------------------------------------

    def run(self) -> int:
        """Lead, follow, repeat until `shutdown`; releases leadership on the way out. Returns the exit code (0)."""
        try:
            while not self._stop.is_set():
                self._waiting = True
                term = self.leadership.acquire(self._stop)
                self._waiting = False
                self._tick()
                if term is None:
                    break
                self._term = term
                if self._stop.is_set():
                    term.cancel("shutting down")
                    break
                self.metrics.leader.set(1)
                log.info("leader.acquired", identity=self.leadership.identity)
                try:
                    self._lead(term)
                finally:
                    term.cancel("not leading")  # whatever ended the term, nothing of it runs on
                    self.metrics.leader.set(0)
                    self._term = None
                if not self._stop.is_set():
                    log.warning("leader.lost", identity=self.leadership.identity, reason=term.reason)
        finally:
            self.leadership.release()
            self.metrics.leader.set(0)
            log.info("controller.stopped", identity=self.leadership.identity)
        return 0

    def run_once(self) -> int:
        """One sync of every environment to the branch's commit, then stop: 0 when all succeeded, else 1."""
        term = self.leadership.acquire(self._stop)
        if term is None:
            return 1
        self._term = term
        try:
            self.metrics.leader.set(1)
            self.poll(term)
        finally:
            self.metrics.leader.set(0)
            self.leadership.release()
        ok = bool(self.statuses) and all(status.in_sync for status in self.statuses.values())
        return 0 if ok else 1

    def _lead(self, term: Cancellation) -> None:
        self.head = None  # a new term starts with a sync: another leader may have applied in between
        for status in self.statuses.values():
            status.attempted = None
        next_poll = time.monotonic()
        next_drift = next_poll + jittered(self.settings.drift_interval, self.rng)
        while not self._stop.is_set() and self._acting(term):
            self._tick()
            now = time.monotonic()
            if self._nudge.is_set() or now >= next_poll:
                self._nudge.clear()
                self.poll(term)
                next_poll = time.monotonic() + jittered(self.settings.poll_interval, self.rng)
            elif now >= next_drift:
                self.check_drift(term)
                next_drift = time.monotonic() + jittered(self.settings.drift_interval, self.rng)
            else:
                self._nudge.wait(min(next_poll, next_drift, now + MAX_NAP_SECONDS) - now)

    # ---- following git ---------------------------------------------------------------------------

    def _service(self, source: RevisionSource, term: Cancellation, run: _Run) -> ReconcileService:
        return ReconcileService(
            source,
            self.settings.environ,
            listeners=[run],
            cancellation=term,
            factories=self.settings.factories,
            parallelism=self.settings.parallelism,
        )

    def _owned(self, source: RevisionSource) -> list[EnvironmentStatus]:
        if not self.settings.environments:
            for name in environment_names(source.read()):
                self.statuses.setdefault(name, EnvironmentStatus(name, Mode.APPLY))
        return list(self.statuses.values())

    def poll(self, term: Cancellation) -> None:
        """Look at the branch; on a new commit (or one to retry), sync every owned environment, in order."""
        try:
            head = self.follower.remote_head()
        except ReconcilerError as exc:
            log.error("git.poll_failed", error=str(exc))
            return
        pending = [s for s in self.statuses.values() if s.attempted != head or s.retry]
        if head == self.head and self.statuses and not pending:
            return
        if head != self.head:
            log.info("git.new_commit", revision=head, previous=self.head)
        try:
            source = self.follower.checkout(head)
            owned = self._owned(source)
        except PermanentError as exc:  # the commit itself (a symlink out of the repository...): never retried
            self.head = head
            self._refused(head, exc)
            return
        except ReconcilerError as exc:
            log.error("git.checkout_failed", revision=head, error=str(exc))
            return
        self.head = head
        for status in owned:
            if not self._acting(term):
                break
            if status.attempted == head and not status.retry:
                continue
            self.sync(status, head, source, term)
            self._tick()
        keep = {head, *(s.applied for s in self.statuses.values() if s.applied)}
        try:
            self.follower.prune(keep)
        except OSError as exc:
            log.warning("git.prune_failed", error=str(exc))

    def _refused(self, revision: str, exc: PermanentError) -> None:
        """A commit that cannot even be checked out: every owned environment reports it once, as an invalid
        commit; the last good revision stays applied and drift checks go on against it."""
        log.error("git.commit_refused", revision=revision, error=str(exc))
        for status in self.statuses.values():
            status.attempted, status.retry = revision, False
            status.result, status.error = "invalid", str(exc)
            self.metrics.sync_total.labels(env=status.name, result="invalid").inc()
            self.notifier.invalid_commit(status.name, revision, [str(exc)])

    def sync(self, status: EnvironmentStatus, revision: str, source: RevisionSource, term: Cancellation) -> None:
        """Validate, plan and apply (or plan only) one environment at `revision`; never raises."""
        env = status.name
        status.attempted, status.retry, status.error = revision, False, ""
        bound = log.bind(env=env, revision=revision)
        started = time.monotonic()
        try:
            validate(source, _environ() if self.settings.environ is None else self.settings.environ, env)
        except SpecError as exc:
            problems = [str(problem) for problem in exc.problems]
            status.result, status.error = "invalid", str(exc)
            self.metrics.sync_total.labels(env=env, result="invalid").inc()
            bound.warning("sync.invalid_commit", problems=len(problems), last_good=status.last_good)
            self.notifier.invalid_commit(env, revision, problems)
            return
        except ReconcilerError as exc:  # a secret that cannot be read, a bad kubeconfig...
            self._failed(status, revision, exc, "validate")
            return
        finally:
            self.metrics.duration.labels(env=env, phase="validate").observe(time.monotonic() - started)
        status.last_good = revision
        if status.mode == Mode.APPLY and not status.retry and self._remembered(env) == revision:
            status.applied, status.result = revision, "applied"  # by this replica earlier, or by another
            self.metrics.applied(env, revision)
            bound.info("sync.already_applied")
            return
        run = _Run(on_event=self._tick)
        service = self._service(source, term, run)
        started = time.monotonic()
        try:
            if status.mode == Mode.PLAN_ONLY:
                plan = service.plan(env)
                self._phases(env, started, run)
                self._planned(status, revision, plan)
                return
            report = service.apply(env, command=COMMAND)
        except ReconcilerError as exc:
            self._phases(env, started, run)
            self._failed(status, revision, exc, "plan" if run.plan is None else "apply")
            return
        self._phases(env, started, run)
        self._applied(status, revision, report, run.plan)

    def _phases(self, env: str, started: float, run: _Run) -> None:
        end = time.monotonic()
        planned = run.planned_at or end
        self.metrics.duration.labels(env=env, phase="plan").observe(max(0.0, planned - started))
        if run.planned_at:
            self.metrics.duration.labels(env=env, phase="apply").observe(max(0.0, end - planned))

    def _planned(self, status: EnvironmentStatus, revision: str, plan: Plan) -> None:
        news = _news(status, revision)
        status.applied, status.result, status.settled = revision, "planned", True
        self.metrics.sync_total.labels(env=status.name, result="planned").inc()
        self.metrics.resources(status.name, plan)
        log.info("sync.planned", env=status.name, revision=revision, mode="plan-only", **plan.summary())
        if news:
            self.notifier.applied(_commit(status.name, revision, plan.actions, Mode.PLAN_ONLY))

    def _applied(self, status: EnvironmentStatus, revision: str, report: ApplyReport, plan: Plan | None) -> None:
        env = status.name
        if report.ok:
            news = _news(status, revision) or bool(report.done)
            status.applied, status.result, status.settled = revision, "applied", True
            self.metrics.sync_total.labels(env=env, result="applied").inc()
            self.metrics.applied(env, revision)
            if plan is not None:
                self.metrics.resources(env, plan, applied=True)
            log.info("sync.applied", env=env, revision=revision, actions=len(report.done))
            self._remember(env, revision)
            if news:
                self.notifier.applied(_commit(env, revision, report.done, Mode.APPLY))
            return
        if report.cancelled:
            status.result, status.error, status.retry, status.settled = "cancelled", report.error, True, False
            self.metrics.sync_total.labels(env=env, result="cancelled").inc()
            log.warning("sync.cancelled", env=env, revision=revision, done=len(report.done), reason=report.error)
            return
        assert report.exception is not None
        self._failed(status, revision, report.exception, "apply", done=len(report.done))

    def _failed(
        self, status: EnvironmentStatus, revision: str, exc: ReconcilerError, step: str, *, done: int = 0
    ) -> None:
        env = status.name
        status.result, status.error, status.retry, status.settled = "failed", str(exc), is_retryable(exc), False
        self.metrics.sync_total.labels(env=env, result="failed").inc()
        log.error("sync.failed", env=env, revision=revision, step=step, error=str(exc), retry=status.retry, done=done)
        self.notifier.apply_failed(env, revision, str(exc))

    def _remembered(self, env: str) -> str | None:
        """The revision last applied in full to `env`, by any replica (None: none known)."""
        if self.records is None:
            return None
        try:
            record = self.records(env).load().get(_applied_key(env))
        except ReconcilerError as exc:
            log.warning("sync.applied_revision_unreadable", env=env, error=str(exc))
            return None
        return record.extra.get("revision") if record is not None else None

    def _remember(self, env: str, revision: str) -> None:
        if self.records is None:
            return
        key = _applied_key(env)
        try:
            store = self.records(env)
            records = store.load()
            records[key] = AlertRecord(key, "", "", revision, resolved=True, extra={"revision": revision})
            store.save(records)
        except ReconcilerError as exc:  # the next restart applies the commit again: nothing worse
            log.warning("sync.applied_revision_not_saved", env=env, revision=revision, error=str(exc))

    # ---- drift ------------------------------------------------------------------------------------

    def check_drift(self, term: Cancellation) -> None:
        """Plan every applied environment against its applied revision; enforce, report, or ignore what differs.
        An environment whose branch holds an invalid commit is checked too: nothing of that commit was applied."""
        for status in list(self.statuses.values()):
            if not self._acting(term):
                return
            if status.mode != Mode.APPLY or status.applied is None:
                continue  # plan-only or never applied
            if not status.in_sync and not (status.result == "invalid" and status.settled):
                continue  # a commit pending or half applied: the next sync decides, drift would undo it
            # in sync, or the branch holds an invalid commit (nothing of it applied): the applied revision stands
            self.drift_of(status, status.applied, term)
            self._tick()

    def drift_of(self, status: EnvironmentStatus, revision: str, term: Cancellation) -> list[DriftFinding]:
        env = status.name
        bound = log.bind(env=env, revision=revision)
        started = time.monotonic()
        try:
            source = self.follower.checkout(revision)
            run = _Run(on_event=self._tick)
            service = self._service(source, term, run)
            plan = service.plan(env)
        except ReconcilerError as exc:
            bound.error("drift.check_failed", error=str(exc))
            return []
        drifted = assess(plan, self.settings.drift)
        outcomes = self._enforce(env, service, to_enforce(drifted), bound)
        findings = [_finding(env, revision, item, outcomes.get(item.key, "reported only")) for item in drifted]
        for finding in findings:
            bound.info(
                "drift.found",
                system=finding.system,
                resource=f"{finding.kind}/{finding.name}",
                action=finding.action,
                policy=finding.policy,
                outcome=finding.outcome,
                fields=[change.name for change in finding.changes],
            )
        self.metrics.duration.labels(env=env, phase="drift").observe(time.monotonic() - started)
        counts = Counter((item.key.system, item.policy.value) for item in drifted)
        self.metrics.drift(env, [(system, policy, n) for (system, policy), n in counts.items()])
        self._drift_resources(env, plan, drifted, outcomes)
        self.notifier.drift(env, findings)
        if not findings:
            bound.debug("drift.none")
        return findings

    def _enforce(
        self,
        env: str,
        service: ReconcileService,
        keys: Sequence[ResourceKey],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> dict[ResourceKey, str]:
        if not keys:
            return {}
        try:
            report = service.apply(env, command=COMMAND, only=keys)
        except ReconcilerError as exc:
            bound.error("drift.enforce_failed", error=str(exc), resources=len(keys))
            return {key: f"re-apply failed: {exc}" for key in keys}
        done = {action.key for action in report.done}
        outcomes: dict[ResourceKey, str] = {}
        for key in keys:
            if key in done:
                outcomes[key] = "re-applied"
            elif report.failed is not None and report.failed.key == key:
                outcomes[key] = f"re-apply failed: {report.error}"
            elif report.exception is not None:
                outcomes[key] = f"not re-applied: {report.error}"
            else:
                outcomes[key] = "re-applied"  # gone from the fresh plan: nothing left to put back
        return outcomes

    def _drift_resources(
        self, env: str, plan: Plan, drifted: Sequence[Drifted], outcomes: Mapping[ResourceKey, str]
    ) -> None:
        status: dict[ResourceKey, str] = {key: SYNCED for key in plan.unchanged}
        for action in plan.actions:
            status[action.key] = SYNCED  # ignored drift
        for item in drifted:
            status[item.key] = SYNCED if outcomes.get(item.key) == "re-applied" else OUT_OF_SYNC
        self.metrics.set_resources(env, status)


def _applied_key(env: str) -> str:
    """The controller record holding the revision last applied to `env` (no Slack message stands for it)."""
    return f"synced/{env}"


def _news(status: EnvironmentStatus, revision: str) -> bool:
    """Whether a successful sync is worth telling: a revision new to this environment, or the end of a failure
    (not the same revision synced again by a new term or a retry with nothing done)."""
    return revision != status.applied or status.result not in ("applied", "planned")


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _finding(env: str, revision: str, item: Drifted, outcome: str) -> DriftFinding:
    key = item.key
    return DriftFinding(
        env, key.system, key.kind, key.name, item.action.kind.value, item.changes, item.policy.value, outcome, revision
    )


def _commit(env: str, revision: str, actions: Sequence[Action], mode: Mode) -> AppliedCommit:
    kinds = Counter(action.kind for action in actions)
    return AppliedCommit(
        env,
        revision,
        created=kinds[ActionKind.CREATE],
        updated=kinds[ActionKind.UPDATE],
        deleted=kinds[ActionKind.DELETE],
        replaced=kinds[ActionKind.REPLACE],
        mode=mode.value,
    )
