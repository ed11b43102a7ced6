"""Crash points: POS_CRASH_AT hard-exits a real process right after the N-th journal commit."""

import os
import sqlite3
import subprocess
import sys
import textwrap

from drivers.crashpoint import CRASH_EXIT

SCRIPT = textwrap.dedent("""
    import sys
    from drivers import crashpoint
    from terminal.journal import Journal
    j = Journal(sys.argv[1], crash_point=crashpoint.reached)  # as the composition root wires it; migrations: one commit
    for _ in range(5):
        print(j.next_stan(), flush=True)
""")


def _run(db, env):
    return subprocess.run([sys.executable, "-c", SCRIPT, str(db)], capture_output=True, text=True, timeout=60,
                          env={**env, "PATH": ""}, check=False)


def _stan(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT value FROM counter WHERE name = 'stan'").fetchone()[0]


def test_the_process_exits_right_after_the_chosen_commit(tmp_path):
    trace = tmp_path / "trace.txt"
    run = _run(tmp_path / "j.db", {**os.environ, "POS_CRASH_AT": "4", "POS_CRASH_TRACE": str(trace)})
    assert run.returncode == CRASH_EXIT
    assert run.stdout.split() == ["1", "2"]  # the 3rd STAN was committed (point 4) but never handed out
    assert _stan(tmp_path / "j.db") == 3  # durable: the next run can never reuse it
    assert trace.read_text().splitlines() == ["1 commit", "2 commit", "3 commit", "4 commit"]
    again = _run(tmp_path / "j.db", dict(os.environ))
    assert again.returncode == 0 and again.stdout.split() == ["4", "5", "6", "7", "8"]


def test_without_the_variable_nothing_exits(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_CRASH")}
    run = _run(tmp_path / "j.db", env)
    assert run.returncode == 0 and run.stdout.split() == ["1", "2", "3", "4", "5"]
