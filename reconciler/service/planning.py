"""The service, step 2: observe every system of a session and plan; check a saved plan against a fresh one.

Reads only. Each system's `Observation` is kept on the session with the plan it led to, so the
apply of that plan hands every system what it saw (`ApplyContext.observation`).

A create an interrupted apply sent whose outcome nothing recorded (a pending create, state.py) may
still land: the server finishes a request it has read even after its client died. When the live
system does not show its object yet, planning observes again until it does or the create's settle
time has passed, and only then plans to create it; only such keys pay, never a normal re-run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime

import structlog

from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, PendingCreate, ResourceKey
from reconciler.core.plan import Override, Plan, PlanInputs, Refusal, build_plan, changed_since
from reconciler.core.saved_plan import saved_plan_differences
from reconciler.errors import PlanError
from reconciler.providers.base import Observation
from reconciler.service.session import Session

log = structlog.get_logger("reconciler.service")

SETTLE_POLLS = (0.25, 0.5, 1.0, 2.0, 5.0)
"""Seconds between observations while a pending create may still land (the last one repeats)."""


def desired_state(session: Session) -> list[DesiredResource]:
    desired: list[DesiredResource] = []
    for provider in session.providers.values():
        desired += provider.desired(session.fingerprinter)
    return desired


def observe_systems(
    session: Session, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
) -> dict[str, Observation]:
    """Each system's own observation of its desired and owned resources."""
    observations: dict[str, Observation] = {}
    for system, provider in session.providers.items():
        mine = [resource for resource in desired if resource.key.system == system]
        owned = {key: record for key, record in records.items() if key.system == system}
        observations[system] = provider.observe(mine, owned)
    return observations


def merged(observations: Mapping[str, Observation]) -> Observation:
    """Every system's observation as one (payloads stay with each system's own)."""
    live: dict[ResourceKey, LiveResource] = {}
    depends: dict[ResourceKey, Sequence[ResourceKey]] = {}
    warnings: list[str] = []
    unmanaged: dict[ResourceKey, tuple[str, ...]] = {}
    protected: dict[ResourceKey, str] = {}
    refusals: list[Refusal] = []
    for observation in observations.values():
        live.update(observation.live)
        depends.update(observation.depends)
        warnings += observation.warnings
        unmanaged.update(observation.unmanaged_dependents)
        protected.update(observation.protected)
        refusals += observation.refusals
    return Observation(live, depends, tuple(warnings), unmanaged, protected, tuple(refusals))


def observe(
    session: Session, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
) -> Observation:
    return merged(observe_systems(session, desired, records))


def await_pending_creates(
    session: Session,
    desired: Sequence[DesiredResource],
    records: Mapping[ResourceKey, OwnershipRecord],
    observations: dict[str, Observation],
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Observation], tuple[str, ...]]:
    """The observations once every wanted pending create whose object is not live has landed or settled, and a
    note for each one waited for. A wait never outlasts its system's `create_settle_seconds` from now (a clock
    set back cannot make it longer)."""
    wanted = {resource.key for resource in desired}
    pending = {key: item for key, item in session.state.pending().items() if key in wanted}
    if not pending:
        return observations, ()
    start = clock()

    def deadline(item: PendingCreate) -> float:
        provider = session.providers.get(item.key.system)
        cap = float(getattr(provider, "create_settle_seconds", 0.0))
        return min(item.settle_by, start + cap)

    def missing(current: Mapping[str, Observation]) -> list[PendingCreate]:
        live, now = merged(current).live, clock()
        return [item for key, item in sorted(pending.items()) if key not in live and now < deadline(item)]

    awaited = missing(observations)
    attempt = 0
    while still := missing(observations):
        remaining = max(deadline(item) for item in still) - clock()
        log.warning(
            "plan.awaiting_creates",
            env=session.env.name,
            resources=[str(item.key) for item in still],
            seconds_left=round(remaining, 1),
        )
        sleep(max(0.0, min(SETTLE_POLLS[min(attempt, len(SETTLE_POLLS) - 1)], remaining)))
        attempt += 1
        observations = observe_systems(session, desired, records)
    live = merged(observations).live
    notes = tuple(
        f"{item.key}: an interrupted apply sent its create at {_when(item.sent_at)} and recorded no outcome; "
        f"waited {clock() - start:.1f}s for it: "
        + ("it landed, and is taken as this resource" if item.key in live else "it never appeared, so it is created")
        for item in awaited
    )
    return observations, notes


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def make_plan(session: Session, *, allow_mass_delete: bool = False, allow: Collection[Override] = ()) -> Plan:
    """Observe the live systems and plan; reads only. The session keeps the observations with the plan.
    `allow` lifts the refusals a person allowed for this plan (`--allow-broken-dependents`, ...)."""
    records = session.state.load()
    desired = desired_state(session)
    observations = observe_systems(session, desired, records)
    observations, notes = await_pending_creates(session, desired, records, observations)
    observation = merged(observations)
    prune = frozenset(system for system, provider in session.providers.items() if provider.prune)
    plan = build_plan(
        PlanInputs(
            environment=session.env.name,
            desired=desired,
            live=observation.live,
            records={k: v for k, v in records.items() if k.system in session.providers},
            prune=prune,
            live_depends=observation.depends,
            observe_warnings=(*notes, *observation.warnings),
            unmanaged_dependents=observation.unmanaged_dependents,
            protected=observation.protected,
            refusals=observation.refusals,
            allowed=frozenset(allow),
            mass_delete_ratio=session.env.settings.state.mass_delete_ratio,
            allow_mass_delete=allow_mass_delete,
            systems=tuple(session.providers),
        )
    )
    session.observations = observations
    log.info("plan.made", env=session.env.name, systems=list(session.providers), **plan.summary())
    return plan


def check_saved_plan(session: Session, saved: Plan) -> Plan:
    """The plan to run for a saved one: a fresh plan identical to it, or `PlanError` naming what differs.

    Refused when the environment, the live state, a secret, the specs or the plan file itself
    changed since it was made (an edited id, desired state, or an action added or removed).
    The fresh plan is what runs, with the observations it was made from.
    """
    if saved.environment != session.env.name:
        raise PlanError(f"the plan is for environment {saved.environment!r}, not {session.env.name!r}")
    if saved.systems and set(saved.systems) != set(session.providers):
        flags = " ".join(f"--system {name}" for name in saved.systems)
        raise PlanError(f"the plan covers {', '.join(saved.systems)}; apply it with {flags}")
    current = make_plan(session, allow_mass_delete=True, allow=tuple(Override))  # the saved plan passed them
    if current.observed_digest != saved.observed_digest:
        changed = [str(key) for key in changed_since(saved, current)][:5]
        raise PlanError(
            "the live state changed since this plan was made"
            + (f" ({', '.join(changed)})" if changed else "")
            + "; run `reconcile plan` again and review the new plan"
        )
    differences = saved_plan_differences(saved, current)
    if differences:
        more = f" (and {len(differences) - 1} more difference(s))" if len(differences) > 1 else ""
        raise PlanError(
            f"the saved plan is not what a plan made now would do: {differences[0]}{more}; the plan file, "
            "the specs or a secret changed since it was made. Run `reconcile plan` again and review the new plan"
        )
    return current
