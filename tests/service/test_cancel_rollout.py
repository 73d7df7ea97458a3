"""A 300 s rollout wait is cancelled within a second: the apply stops with a clear error, records up to date.

Against the Kubernetes stand-in: QA's ingestion image never becomes ready (ImagePullBackOff), so
the provider waits on its rollout; the dbt images before it roll out and are recorded.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import ApplyError
from reconciler.sandbox.launch import running_standins
from reconciler.service import Event, EventKind, FolderSource, ReconcileService, raise_for
from reconciler.systems.workloads.rules import component_of
from tests.helpers import copy_example


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_cancelling_during_a_rollout_wait_stops_the_apply_promptly_with_its_records_up_to_date(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    with running_standins(root) as standins:
        assert standins.kube is not None
        standins.kube.fail_images("*dagster-ingestion:*")
        environ = standins.environment() | {"DAGSTER_QA_URL": "http://127.0.0.1:9/graphql"}  # never reached
        reconcile = ReconcileService(FolderSource(root), environ)
        asked: list[float] = []

        def cancel_while_ingestion_rolls_out(event: Event) -> None:
            waiting = event.kind == EventKind.ACTION_PROGRESS and "updated" in event.message
            if waiting and event.action is not None and component_of(event.action.key) == "ingestion" and not asked:
                asked.append(time.monotonic() + 0.3)
                threading.Timer(0.3, reconcile.cancellation.cancel, ["the controller is shutting down"]).start()

        reconcile.listeners = [cancel_while_ingestion_rolls_out]
        report = reconcile.apply("qa", systems=("workloads",))
        stopped = time.monotonic()

        assert asked, "the ingestion rollout was never waited for"
        assert stopped - asked[0] < 1.0  # the wait polls every 2 s and would give up only after 300 s
        assert report.cancelled and report.failed is not None and component_of(report.failed.key) == "ingestion"
        assert {component_of(action.key) for action in report.done} == {"dbt"}
        state = json.loads((root / ".reconciler" / "state" / "qa.json").read_text())
        assert {str(action.key) for action in report.done} <= set(state["resources"])  # recorded as each finished
        with pytest.raises(ApplyError, match="the controller is shutting down while waiting for") as raised:
            raise_for(report)
        assert "rollout and health gate were not confirmed" in str(raised.value)
        assert raised.value.retryable
