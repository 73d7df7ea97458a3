"""Bounded parallel apply: independent Airbyte actions run at once within the dependency order, and a kill
part-way through a parallel apply loses nothing and duplicates nothing when apply runs again."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence

import pytest

from reconciler import state as state_module
from reconciler.core.model import OwnershipRecord, PendingCreate, ResourceKey
from reconciler.sandbox.airbyte_server import LateCreate
from reconciler.state import FileStateStore
from tests.helpers import Project

SAFETY_SECONDS = 120  # only so that a broken build fails instead of hanging


def kill_apply_once_received(project: Project, late: LateCreate, what: str, *options: str) -> None:
    """Apply prod's Airbyte in a process of its own and SIGKILL it as soon as `late`'s create reached the server."""
    command = [sys.executable, "-m", "reconciler.cli", "--root", str(project.root), "apply", "--env", "prod"]
    command += ["--system", "airbyte", "--auto-approve", *options]
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **project.environ}
    )
    try:
        assert late.received.wait(SAFETY_SECONDS), f"{what} never reached the server"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=SAFETY_SECONDS)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def live_names(project: Project, kind: str) -> list[str]:
    return sorted(str(item["name"]) for item in project.prod.stored(kind) if not item.get("tombstone"))


def test_a_parallel_apply_converges_in_dependency_order(project: Project) -> None:
    applied = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", "4")
    assert applied.exit_code == 0, applied.output
    done = [line.split()[2] for line in applied.output.splitlines() if line.endswith(" done")]
    connections = [key for key in done if key.startswith("airbyte.connection/")]
    assert len(connections) >= 4, applied.output
    for connection in connections:  # `<source>-to-lake`: its source and destination were done before it
        source = connection.removeprefix("airbyte.connection/").removesuffix("-to-lake")
        position = done.index(connection)
        assert done.index(f"airbyte.source/{source}") < position, applied.output
        assert done.index("airbyte.destination/lake") < position, applied.output
    again = project.run("plan", "--env", "prod")
    assert "No changes." in again.output, again.output


@pytest.mark.parametrize("parallelism", ["1", "4"])
def test_each_round_of_an_apply_is_one_journal_write_records_first_then_the_creates_it_starts(
    project: Project, monkeypatch: pytest.MonkeyPatch, parallelism: str
) -> None:
    """What ended and the creates started after it share one journal write (one fsync), the records first: one
    after another, N creates are N + 1 writes (the first create's pending line, then each record with the next
    one's), not 2N."""
    appended: list[str] = []
    real_append = FileStateStore._append
    monkeypatch.setattr(
        FileStateStore, "_append", lambda store, text: (appended.append(text), real_append(store, text))[1]
    )
    applied = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", parallelism)
    assert applied.exit_code == 0, applied.output
    creates = applied.output.count(" done")
    lines = [[json.loads(line) for line in text.splitlines()] for text in appended]
    assert sum(1 for entries in lines for entry in entries if "pendingCreate" in entry) == creates
    assert sum(1 for entries in lines for entry in entries if "id" in entry) == creates
    for entries in lines:  # within a write, the records of what ended come before the creates that start after it
        kinds = ["pendingCreate" in entry for entry in entries]
        assert kinds == sorted(kinds), entries
    if parallelism == "1":
        assert len(appended) == creates + 1, appended
    else:
        assert len(appended) <= creates + 1, appended
    assert "No changes." in project.run("plan", "--env", "prod").output


def test_the_journal_is_synced_off_the_main_thread_and_nothing_is_sent_before_what_it_waits_for_is_durable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, each group commit is written by a journal thread while the main thread carries on (it tells
    about the last round and collects what ends meanwhile); still, a create reaches the server only once its
    pending line is durable, and a connection only once its source's and destination's records are. The journal
    is made slow here: anything sent before its write returned would be at the server by then."""
    writers: list[str] = []
    early: list[str] = []
    durable: dict[str, set[str]] = {
        kind: set(live_names(project, kind)) for kind in ("sources", "destinations", "connections")
    }
    real_record_all = FileStateStore.record_all

    def slow_record_all(
        store: FileStateStore,
        entries: Sequence[tuple[ResourceKey, OwnershipRecord | None]],
        intents: Sequence[PendingCreate] = (),
    ) -> None:
        writers.append(threading.current_thread().name)
        time.sleep(0.02)
        for kind in ("sources", "destinations", "connections"):
            sent = set(live_names(project, kind)) - durable[kind]
            early.extend(f"{kind}/{name} was sent before its pending line was durable" for name in sorted(sent))
        connections = live_names(project, "connections")
        for key, _record in entries:
            waiting = [name for name in connections if key.kind == "destination" or name == f"{key.name}-to-lake"]
            if key.kind in ("source", "destination") and waiting:
                early.append(f"{waiting} were sent before the record of {key} was durable")
        real_record_all(store, entries, intents)
        for pending in intents:
            durable[f"{pending.key.kind}s"].add(pending.key.name)

    monkeypatch.setattr(FileStateStore, "record_all", slow_record_all)
    applied = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", "4")
    assert applied.exit_code == 0, applied.output
    assert not early, early
    assert writers and all(name.startswith("journal") for name in writers), writers
    for kind in ("sources", "destinations", "connections"):
        names = [item["name"] for item in project.prod.stored(kind) if not item.get("tombstone")]
        assert names and len(names) == len(set(names)), f"duplicate {kind}: {names}"
    assert "No changes." in project.run("plan", "--env", "prod").output


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_kill_during_a_parallel_apply_then_a_rerun_ends_with_no_duplicates_and_nothing_lost(
    project: Project,
) -> None:
    project.prod.latency_seconds = 0.4  # slow enough to kill it part-way
    command = [sys.executable, "-m", "reconciler.cli", "--root", str(project.root), "apply", "--env", "prod"]
    command += ["--system", "airbyte", "--auto-approve", "--parallelism", "4"]
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **project.environ}
    )
    try:
        assert first.stdout is not None
        deadline = time.monotonic() + SAFETY_SECONDS
        while time.monotonic() < deadline:
            line = first.stdout.readline()
            assert line, "the apply ended before it could be killed"
            if line.rstrip().endswith(" done"):
                break
        time.sleep(0.5)  # more creates are in flight now
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=SAFETY_SECONDS)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    made_before = {kind: live_names(project, kind) for kind in ("sources", "destinations", "connections")}
    assert 0 < sum(map(len, made_before.values())) < 10, made_before  # killed part-way

    project.prod.latency_seconds = 0.0
    rerun = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", "4")
    assert rerun.exit_code == 0, rerun.output
    for kind in ("sources", "destinations", "connections"):
        names = live_names(project, kind)
        assert not [name for name, count in Counter(names).items() if count > 1], f"duplicate {kind}: {names}"
        assert set(made_before[kind]) <= set(names)
    assert "No changes." in project.run("plan", "--env", "prod").output


def test_a_create_landing_after_the_rerun_listed_is_adopted_not_made_twice(project: Project) -> None:
    """The killed apply's create of salesforce-to-lake reaches the server, which carries it out only after the
    re-run has listed connections (a real Airbyte finishes a request it has read, client or no client). The
    re-run must find it, not create a second `salesforce-to-lake`."""
    late = project.prod.land_create_late("connections", "salesforce-to-lake")
    kill_apply_once_received(project, late, "the create", "--parallelism", "10")
    assert "salesforce-to-lake" not in live_names(project, "connections")  # still in flight on the server

    rerun = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", "10")
    assert late.landed.is_set(), "the held create was never released by the re-run's listing"

    assert rerun.exit_code == 0, rerun.output
    names = live_names(project, "connections")
    assert names.count("salesforce-to-lake") == 1, names
    for kind in ("sources", "destinations"):
        assert len(set(live_names(project, kind))) == len(live_names(project, kind)), live_names(project, kind)
    assert "No changes." in project.run("plan", "--env", "prod").output


def _pending_create(project: Project, name: str, settle_in: float) -> None:
    """What a killed apply leaves when it had sent the create of connection `name`: a pending create, no record."""
    store = FileStateStore(project.root / ".reconciler" / "state" / "prod.json", "prod")
    store.load()
    now = time.time()
    store.intend(PendingCreate(ResourceKey("airbyte", "connection", name), now - 1.0, now + settle_in))


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_pending_create_that_never_lands_is_waited_for_then_created_once(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    gone = next(item for item in project.prod.stored("connections") if item["name"] == "hubspot-to-lake")
    project.prod.edit("connections", gone["connectionId"], {"tombstone": True})  # as if its create never landed
    state = project.root / ".reconciler" / "state" / "prod.json"
    body = json.loads(state.read_text())
    del body["resources"]["airbyte.connection/hubspot-to-lake"]
    state.write_text(json.dumps(body))
    _pending_create(project, "hubspot-to-lake", settle_in=1.5)
    project.prod.stats.reset()

    rerun = project.run("apply", "--env", "prod", "--auto-approve")
    assert rerun.exit_code == 0, rerun.output
    assert "it never appeared, so it is created" in rerun.output, rerun.output
    assert project.prod.stats.by_route.get("GET /connections", 0) > 1  # it looked again before creating
    assert live_names(project, "connections").count("hubspot-to-lake") == 1
    again = project.run("plan", "--env", "prod")
    assert "No changes." in again.output and "interrupted apply" not in again.output, again.output


def test_a_pending_create_already_landed_or_settled_costs_nothing(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    project.prod.stats.reset()
    assert "No changes." in project.run("plan", "--env", "prod").output
    baseline = project.prod.stats.by_route
    _pending_create(project, "hubspot-to-lake", settle_in=600)  # its object is there: the create was answered
    _pending_create(project, "app-postgres-to-lake", settle_in=-1)  # settled by time
    project.prod.stats.reset()
    plan = project.run("plan", "--env", "prod")
    assert "No changes." in plan.output and "interrupted apply" not in plan.output, plan.output
    assert project.prod.stats.by_route == baseline  # no second look


def test_a_replace_killed_with_its_create_in_flight_is_refused_never_duplicated(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    project.edit("specs/airbyte/connections.yaml", "    source: salesforce\n", "    source: hubspot\n")
    salesforce_streams = "".join(
        f"      - name: {name}\n        syncMode: incremental_append\n        cursorField: [SystemModstamp]\n"
        for name in ("Account", "Opportunity")
    )
    project.edit(
        "specs/airbyte/connections.yaml",
        salesforce_streams,
        "      - name: contacts\n        syncMode: full_refresh_overwrite\n",
    )
    assert "replace" in project.run("plan", "--env", "prod").output
    late = project.prod.land_create_late("connections", "salesforce-to-lake")
    kill_apply_once_received(project, late, "the replace's create")

    rerun = project.run("apply", "--env", "prod", "--auto-approve")
    assert late.landed.is_set()
    assert rerun.exit_code == 1 and "neither take that one over nor create a second" in rerun.output, rerun.output
    assert live_names(project, "connections").count("salesforce-to-lake") == 1


def test_a_create_the_server_refused_leaves_nothing_to_wait_for(project: Project) -> None:
    project.edit("specs/airbyte/connections.yaml", "      - name: Account\n", "      - name: NoSuchStream\n")
    failed = project.run("apply", "--env", "prod", "--auto-approve")
    assert failed.exit_code == 1 and "salesforce-to-lake" in failed.output, failed.output
    store = FileStateStore(project.root / ".reconciler" / "state" / "prod.json", "prod")
    store.load()
    assert store.pending() == {}  # refused: answered, nothing can land later

    project.edit("specs/airbyte/connections.yaml", "      - name: NoSuchStream\n", "      - name: Account\n")
    rerun = project.run("apply", "--env", "prod", "--auto-approve")
    assert rerun.exit_code == 0 and "interrupted apply" not in rerun.output, rerun.output
    assert live_names(project, "connections").count("salesforce-to-lake") == 1


@pytest.mark.parametrize("parallelism", ["1", "4", "64"])
def test_a_journal_that_cannot_be_written_stops_the_apply_and_the_rerun_waits_for_nothing_never_sent(
    project: Project, monkeypatch: pytest.MonkeyPatch, parallelism: str
) -> None:
    """The disk fills up under the second group commit: the apply stops with a plain error (exit 1, no traceback),
    the creates it had picked are never sent, and their pending lines (written, maybe, but not durable) are
    settled: the re-run waits for none of them (a wait of `create_settle_seconds` each), creates each once."""
    syncs = [0]
    real_sync = state_module._sync_data

    def full_disk_once(descriptor: int) -> None:
        syncs[0] += 1
        if syncs[0] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_sync(descriptor)

    monkeypatch.setattr(state_module, "_sync_data", full_disk_once)
    failed = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", parallelism)
    assert failed.exit_code == 1, failed.output
    assert "Error: cannot write state journal" in failed.output and "Traceback" not in failed.output, failed.output
    monkeypatch.setattr(state_module, "_sync_data", real_sync)

    rerun = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", parallelism)
    assert rerun.exit_code == 0, rerun.output
    assert "never appeared" not in rerun.output, rerun.output
    for kind in ("sources", "destinations", "connections"):
        names = live_names(project, kind)
        assert names and len(names) == len(set(names)), f"duplicate {kind}: {names}"
    again = project.run("plan", "--env", "prod")
    assert "No changes." in again.output and "interrupted apply" not in again.output, again.output


@pytest.mark.parametrize("parallelism", ["1", "4", "64"])
def test_a_ctrl_c_while_a_group_commit_is_written_sends_none_of_the_creates_it_journals(
    project: Project, monkeypatch: pytest.MonkeyPatch, parallelism: str
) -> None:
    """Ctrl-C arrives while the journal writes the pending lines of the creates about to start: the apply stops
    after the running actions, so none of those creates is sent (their pending lines are settled), and the re-run
    creates each once without waiting for them."""
    interrupted: list[str] = []
    real_record_all = FileStateStore.record_all

    def interrupted_record_all(
        store: FileStateStore,
        entries: Sequence[tuple[ResourceKey, OwnershipRecord | None]],
        intents: Sequence[PendingCreate] = (),
    ) -> None:
        if entries and intents and not interrupted:
            interrupted.extend(pending.key.name for pending in intents)
            os.kill(os.getpid(), signal.SIGINT)  # the CLI's handler asks the apply to stop
            time.sleep(0.2)  # the handler has run on the main thread by now
        real_record_all(store, entries, intents)

    monkeypatch.setattr(FileStateStore, "record_all", interrupted_record_all)
    stopped = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", parallelism)
    assert stopped.exit_code == 1 and "interrupted by SIGINT" in stopped.output, stopped.output
    assert interrupted, stopped.output
    live = {name for kind in ("sources", "destinations", "connections") for name in live_names(project, kind)}
    assert not live & set(interrupted), f"sent after Ctrl-C: {sorted(live & set(interrupted))}"
    monkeypatch.setattr(FileStateStore, "record_all", real_record_all)

    rerun = project.run("apply", "--env", "prod", "--auto-approve", "--parallelism", parallelism)
    assert rerun.exit_code == 0 and "never appeared" not in rerun.output, rerun.output
    for kind in ("sources", "destinations", "connections"):
        names = live_names(project, kind)
        assert names and len(names) == len(set(names)), f"duplicate {kind}: {names}"
    assert "No changes." in project.run("plan", "--env", "prod").output
