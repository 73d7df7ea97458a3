"""The state journal: one appended line per action, fsynced before anything after it starts (actions that ended
together share the fsync); a kill at any point loses nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.core.model import OwnershipRecord, PendingCreate, ResourceKey
from reconciler.errors import ReconcilerError
from reconciler.sandbox.airbyte_fleet import fleet_environ, write_fleet
from reconciler.sandbox.airbyte_server import AirbyteStandIn
from reconciler.state import FileStateStore, journal_path

SAFETY_SECONDS = 120  # only so that a broken build fails instead of hanging; nothing is timed


def key(name: str) -> ResourceKey:
    return ResourceKey.parse(f"airbyte.source/{name}")


def rec(name: str, record_id: str, **fingerprints: str) -> OwnershipRecord:
    return OwnershipRecord(key(name), record_id, dict(fingerprints))


@pytest.fixture
def store(tmp_path: Path) -> FileStateStore:
    return FileStateStore(tmp_path / "state" / "qa.json", "qa")


def test_records_are_appended_to_a_journal_and_compacted_into_the_state(store: FileStateStore) -> None:
    store.save({key("a"): rec("a", "1")})
    store.record(key("b"), rec("b", "2", password="f1"))
    store.record(key("a"), None)
    store.record(key("c"), rec("c", "3"))
    assert json.loads(store.path.read_text())["resources"] == {"airbyte.source/a": {"id": "1", "fingerprints": {}}}
    lines = store.journal.read_text().splitlines()
    assert json.loads(lines[0]) == {"formatVersion": 2, "environment": "qa"} and len(lines) == 4
    expected = {key("b"): rec("b", "2", password="f1"), key("c"): rec("c", "3")}
    assert store.load() == expected  # replayed, files untouched
    assert store.journal.exists()

    store.compact()
    assert not store.journal.exists()
    assert FileStateStore(store.path, "qa").load() == expected
    assert set(json.loads(store.path.read_text())["resources"]) == {"airbyte.source/b", "airbyte.source/c"}
    assert store.path.stat().st_mode & 0o777 == 0o600


def test_a_journal_left_by_a_killed_run_is_replayed_on_load_and_folded_in_by_the_next_write(
    store: FileStateStore,
) -> None:
    store.record(key("a"), rec("a", "1"))
    store.record(key("b"), rec("b", "2"))
    # killed here: no compaction; the next run's store is a new object
    after = FileStateStore(store.path, "qa")
    assert after.load() == {key("a"): rec("a", "1"), key("b"): rec("b", "2")}
    after.record(key("c"), rec("c", "3"))
    lines = after.journal.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["key"] == "airbyte.source/c"  # a fresh journal
    assert set(json.loads(after.path.read_text())["resources"]) == {"airbyte.source/a", "airbyte.source/b"}
    after.compact()
    assert set(FileStateStore(store.path, "qa").load()) == {key("a"), key("b"), key("c")}


@pytest.mark.parametrize("cut", [1, 2, 7, 25])
def test_a_torn_last_line_is_ignored_never_a_crash(store: FileStateStore, cut: int) -> None:
    store.record(key("a"), rec("a", "1"))
    store.record(key("b"), rec("b", "2", password="f"))
    text = store.journal.read_text()
    store.journal.write_text(text[:-cut])  # the second entry cut short (by its newline alone, at least)
    after = FileStateStore(store.path, "qa")
    assert after.load() == {key("a"): rec("a", "1")}
    after.record(key("c"), rec("c", "3"))  # appends after a clean fold, never after the torn line
    after.compact()
    assert FileStateStore(store.path, "qa").load() == {key("a"): rec("a", "1"), key("c"): rec("c", "3")}


def test_a_torn_header_is_an_empty_journal(store: FileStateStore) -> None:
    store.save({key("a"): rec("a", "1")})
    store.journal.write_text('{"formatVersion": 1, "envir')
    assert store.load() == {key("a"): rec("a", "1")}


def test_a_damaged_line_before_the_end_is_refused_by_line_number(store: FileStateStore) -> None:
    store.journal.parent.mkdir(parents=True)
    store.journal.write_text('{"formatVersion": 1, "environment": "qa"}\n{"key": \n{"key": "airbyte.source/a"}\n')
    with pytest.raises(ReconcilerError, match=r"qa\.json\.journal is unreadable at line 2"):
        store.load()


def test_actions_that_ended_together_share_one_fsync_and_all_replay(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.record(key("a"), rec("a", "1"))  # opens the journal
    synced: list[int] = []
    for name in ("fsync", "fdatasync"):  # an append is synced with fdatasync where there is one
        if hasattr(os, name):
            real = getattr(os, name)
            monkeypatch.setattr(os, name, lambda fd, real=real: (synced.append(fd), real(fd))[1])
    store.record_all([(key("b"), rec("b", "2")), (key("a"), None), (key("c"), rec("c", "3", password="fp"))])
    assert len(synced) == 1
    lines = store.journal.read_text().splitlines()
    assert len(lines) == 1 + 4  # the header, then one whole line per action, in order
    assert [json.loads(line)["key"] for line in lines[1:]] == [str(key(n)) for n in ("a", "b", "a", "c")]
    assert FileStateStore(store.path, "qa").load() == {key("b"): rec("b", "2"), key("c"): rec("c", "3", password="fp")}


def test_another_environments_journal_is_refused(store: FileStateStore) -> None:
    FileStateStore(store.path, "prod").record(key("a"), rec("a", "1"))
    with pytest.raises(ReconcilerError, match=r"qa\.json\.journal belongs to environment 'prod', not 'qa'"):
        store.load()
    with pytest.raises(ReconcilerError, match="belongs to environment 'prod'"):
        store.record(key("b"), rec("b", "2"))
    assert json.loads(store.journal.read_text().splitlines()[0])["environment"] == "prod"  # never merged


def test_a_journal_of_a_newer_format_is_refused_with_its_version(store: FileStateStore) -> None:
    store.journal.parent.mkdir(parents=True)
    store.journal.write_text('{"formatVersion": 3, "environment": "qa"}\n')
    with pytest.raises(ReconcilerError, match="unsupported formatVersion 3"):
        store.load()


def test_save_replaces_the_journal(store: FileStateStore) -> None:
    store.record(key("a"), rec("a", "1"))
    store.save({key("b"): rec("b", "2")})
    assert not store.journal.exists()
    assert FileStateStore(store.path, "qa").load() == {key("b"): rec("b", "2")}
    store.record(key("c"), rec("c", "3"))
    assert store.load() == {key("b"): rec("b", "2"), key("c"): rec("c", "3")}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Path, AirbyteStandIn, dict[str, str]]]:
    root = tmp_path / "fleet"
    root.mkdir()
    write_fleet(root, connections=100, destinations=1, environment="fleet")
    with AirbyteStandIn() as server:
        yield root, server, fleet_environ(server.url)


def live(server: AirbyteStandIn, kind: str) -> dict[str, str]:
    """name -> id of the live objects of `kind`, failing on a duplicate name."""
    found: dict[str, str] = {}
    for item in server.stored(kind):
        if item.get("tombstone"):
            continue
        assert item["name"] not in found, f"duplicate {kind}: {item['name']}"
        found[str(item["name"])] = str(next(value for name, value in item.items() if name.endswith("Id")))
    return found


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_a_kill_at_a_random_point_of_a_200_resource_apply_loses_nothing(
    fleet: tuple[Path, AirbyteStandIn, dict[str, str]],
) -> None:
    root, server, environ = fleet
    seed = int(os.environ.get("RECONCILER_KILL_SEED", time.time_ns() % 10_000))
    stop_after = random.Random(seed).randrange(1, 195)  # journal entries written before the kill
    command = [sys.executable, "-m", "reconciler.cli", "--root", str(root), "apply", "--env", "fleet"]
    command += ["--auto-approve", "--system", "airbyte"]
    journal = journal_path(root / ".reconciler" / "state" / "fleet.json")
    applying = subprocess.Popen(
        command, env={**os.environ, **environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + SAFETY_SECONDS
        while applying.poll() is None and time.monotonic() < deadline:
            if journal.exists() and journal.read_text().count("\n") > stop_after:
                break
            time.sleep(0.005)
        assert applying.poll() is None, f"seed {seed}: the apply ended before the kill"
        os.kill(applying.pid, signal.SIGKILL)
    finally:
        applying.kill()
        applying.wait()
    assert journal.exists(), f"seed {seed}"

    again = CliRunner().invoke(
        main, ["--root", str(root), "apply", "--env", "fleet", "--auto-approve", "--system", "airbyte"], env=environ
    )
    assert again.exit_code == 0, f"seed {seed}: {again.output}"
    assert not journal.exists()
    sources, destinations, connections = (
        live(server, "sources"),
        live(server, "destinations"),
        live(server, "connections"),
    )
    assert (len(sources), len(destinations), len(connections)) == (100, 1, 100), f"seed {seed}"
    records = FileStateStore(root / ".reconciler" / "state" / "fleet.json", "fleet").load()
    recorded = {(key.kind, key.name): record.id for key, record in records.items()}
    expected = {("source", name): ident for name, ident in sources.items()}
    expected |= {("destination", name): ident for name, ident in destinations.items()}
    expected |= {("connection", name): ident for name, ident in connections.items()}
    assert recorded == expected, f"seed {seed}"
    plan = CliRunner().invoke(main, ["--root", str(root), "plan", "--env", "fleet", "--system", "airbyte"], env=environ)
    assert "No changes." in plan.output, f"seed {seed}: {plan.output}"


class Clock:
    """Wall-clock seconds a test sets."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_pending_create_outlives_a_kill_and_a_compaction_until_it_settles(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "state" / "qa.json"
    first = FileStateStore(path, "qa", clock=clock)
    first.load()
    first.intend(PendingCreate(key("a"), clock.now, clock.now + 60))
    first.intend(PendingCreate(key("b"), clock.now, clock.now + 60))
    first.record(key("b"), rec("b", "2"))  # b's create was answered: settled
    # killed here: the journal alone holds a's intent, and the next run reads it
    second = FileStateStore(path, "qa", clock=clock)
    assert set(second.load()) == {key("b")}
    assert second.pending() == {key("a"): PendingCreate(key("a"), clock.now, clock.now + 60)}
    second.record(key("c"), rec("c", "3"))  # the next run's first write folds the old journal in
    second.compact()
    assert not second.journal.exists()
    assert set(json.loads(path.read_text())["pendingCreates"]) == {"airbyte.source/a"}  # not settled yet
    reread = FileStateStore(path, "qa", clock=clock)
    assert set(reread.load()) == {key("b"), key("c")} and set(reread.pending()) == {key("a")}
    clock.now += 61  # past its settle time: the next compaction drops it
    third = FileStateStore(path, "qa", clock=clock)
    third.load()
    third.record(key("d"), rec("d", "4"))
    third.compact()
    assert "pendingCreates" not in json.loads(path.read_text())
    last = FileStateStore(path, "qa")
    assert set(last.load()) == {key("b"), key("c"), key("d")} and last.pending() == {}


def test_a_version_1_journal_is_still_replayed(store: FileStateStore) -> None:
    store.journal.parent.mkdir(parents=True)
    store.journal.write_text('{"formatVersion": 1, "environment": "qa"}\n{"key": "airbyte.source/a", "id": "1"}\n')
    assert store.load() == {key("a"): OwnershipRecord(key("a"), "1", {})}


def test_a_state_without_pending_creates_is_written_as_before(store: FileStateStore) -> None:
    store.save({key("a"): rec("a", "1")})
    store.record(key("b"), rec("b", "2"))
    store.compact()
    assert set(json.loads(store.path.read_text())) == {"formatVersion", "environment", "resources"}
