"""background: work on daemon threads, and the shorter switch interval while it overlaps the main thread."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from reconciler.background import SWITCH_SECONDS, DaemonWorkers, in_background, responsive_threads


def test_responsive_threads_shortens_the_switch_interval_and_puts_it_back() -> None:
    before = sys.getswitchinterval()
    with responsive_threads():
        assert sys.getswitchinterval() == pytest.approx(SWITCH_SECONDS, rel=0.05)
        with responsive_threads(0.0001):  # nested: the outer one's change stays until the outer one ends
            assert sys.getswitchinterval() == pytest.approx(SWITCH_SECONDS, rel=0.05)
        assert sys.getswitchinterval() == pytest.approx(SWITCH_SECONDS, rel=0.05)
    assert sys.getswitchinterval() == before


def test_responsive_threads_never_lengthens_a_shorter_interval() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    try:
        with responsive_threads():
            assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.05)
        assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.05)
    finally:
        sys.setswitchinterval(before)


def test_overlapping_uses_from_two_threads_put_back_the_original_once_both_end() -> None:
    before = sys.getswitchinterval()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[float] = []

    def first() -> None:
        with responsive_threads():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with responsive_threads():
            second_in.set()
            first_out.wait(5)
            seen.append(sys.getswitchinterval())  # the first has ended: still short while this one runs

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [pytest.approx(SWITCH_SECONDS, rel=0.05)]
    assert sys.getswitchinterval() == before


def test_an_exception_inside_still_puts_the_interval_back() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), responsive_threads():
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == before


def test_in_background_gives_the_outcome_or_the_error_in_its_future() -> None:
    assert in_background(lambda: 42, "answer").result(timeout=5) == 42

    def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        in_background(fail, "failing").result(timeout=5)


def test_daemon_workers_run_work_on_few_threads_and_end_when_closed() -> None:
    workers = DaemonWorkers(2, "test-workers")
    ran_on = [workers.submit(lambda: threading.current_thread().name) for _ in range(20)]
    names = {future.result(timeout=5) for future in ran_on}
    assert names <= {"test-workers-0", "test-workers-1"}  # each thread runs many: its own state serves them all

    def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        workers.submit(fail).result(timeout=5)
    assert all(thread.daemon for thread in threading.enumerate() if thread.name.startswith("test-workers"))

    gate = threading.Event()
    busy = [workers.submit(gate.wait) for _ in range(2)]  # both threads held
    skipped = workers.submit(lambda: "ran")
    assert skipped.cancel()
    workers.close()
    gate.set()
    assert all(future.result(timeout=5) for future in busy)
    deadline = time.monotonic() + 5
    while any(t.name.startswith("test-workers") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(thread.name.startswith("test-workers") for thread in threading.enumerate())
    assert skipped.cancelled()
