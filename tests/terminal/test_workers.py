"""The shell's worker threads (issue 17 item 3): a finished worker takes the next work instead of a new thread per
work; works that overlap still run at once, each on its own thread, named after the work it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

from terminal.app import Workers


def _job(seen: list[tuple[str, int]], done: threading.Event,
         release: threading.Event | None = None) -> Callable[[], None]:
    def run() -> None:
        me = threading.current_thread()
        seen.append((me.name, me.ident or 0))
        if release is not None:
            assert release.wait(5)
        done.set()
    return run


def _idle(workers: Workers, count: int) -> bool:
    for _ in range(500):
        with workers._lock:
            if len(workers._idle) == count:
                return True
        threading.Event().wait(0.01)
    return False


def test_a_finished_worker_runs_the_next_work_and_carries_its_name() -> None:
    workers, seen = Workers(), []
    first, second = threading.Event(), threading.Event()
    workers.run("terminal-lookup", _job(seen, first))
    assert first.wait(5) and _idle(workers, 1)
    workers.run("terminal-payment", _job(seen, second))
    assert second.wait(5)
    assert [name for name, _ in seen] == ["terminal-lookup", "terminal-payment"]
    assert seen[0][1] == seen[1][1] and workers.started == 1  # the same thread, started once


def test_overlapping_works_each_get_a_thread_and_a_failing_work_does_not_end_its_worker() -> None:
    workers, seen = Workers(keep=1), []
    release, a, b = threading.Event(), threading.Event(), threading.Event()
    workers.run("terminal-payment", _job(seen, a, release))  # still running ...
    workers.run("terminal-health", _job(seen, b))  # ... so this one cannot wait for it
    assert b.wait(5) and not a.is_set()
    release.set()
    assert a.wait(5) and workers.started == 2 and seen[0][1] != seen[1][1]
    assert _idle(workers, 1)  # keep=1: the second worker to finish ended instead of staying idle

    def boom() -> None:
        raise RuntimeError("a bug in a work")

    workers.run("terminal-print", boom)
    assert _idle(workers, 1)
    again = threading.Event()
    workers.run("terminal-print", _job(seen, again))
    assert again.wait(5) and workers.started == 2
