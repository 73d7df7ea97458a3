"""The reconcile service: open an environment from a spec source, plan, apply; typed events to listeners.

Used by the CLI, the demo, the systems' commands and (next) the controller alike:

    source.py     where specs come from (`SpecSource`; `FolderSource` today, a git revision later)
    session.py    an environment opened: providers, secrets, state, its write lock; its alert records
    planning.py   observe every system and plan; check a saved plan against a fresh one
    applying.py   carry a plan out in order, recording each success; events, logs, cancellation
    reconcile.py  `ReconcileService`: lock -> plan -> approve -> apply, for every caller
    pull_request.py  the pull-request plan comment: plan each environment, find the marked comment, edit it
"""

from reconciler.cancellation import Cancellation
from reconciler.core.events import Event, EventKind, Listener
from reconciler.service.applying import ApplyReport, apply_plan, raise_for
from reconciler.service.planning import check_saved_plan, desired_state, make_plan, observe, observe_systems
from reconciler.service.reconcile import ReconcileService
from reconciler.service.session import (
    STATE_DIR,
    ProviderFactory,
    Session,
    alert_store,
    default_providers,
    load_environment,
    lock_path,
    locked,
    open_alert_store,
    open_provider,
    open_session,
    secret_cluster,
    state_path,
    validate,
)
from reconciler.service.source import FolderSource, SpecSource

__all__ = [
    "STATE_DIR",
    "ApplyReport",
    "Cancellation",
    "Event",
    "EventKind",
    "FolderSource",
    "Listener",
    "ProviderFactory",
    "ReconcileService",
    "Session",
    "SpecSource",
    "alert_store",
    "apply_plan",
    "check_saved_plan",
    "default_providers",
    "desired_state",
    "load_environment",
    "lock_path",
    "locked",
    "make_plan",
    "observe",
    "observe_systems",
    "open_alert_store",
    "open_provider",
    "open_session",
    "raise_for",
    "secret_cluster",
    "state_path",
    "validate",
]
