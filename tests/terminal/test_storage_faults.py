"""Issue 15 item 6: the storage-fault harness (``sim.crash.storage``) the project runs itself.

Truncated journals, bytes flipped in the database and in the WAL at many offsets, torn and deleted WALs, an old
copy put back, and writes refused with ENOSPC at every commit of a top-up (a real full tmpfs inside
``unshare -r -m`` where the kernel allows it): every case must be detected (out of service, counters continuing,
the cashier told in both languages) or provably harmless; none silent. The report, per fault class, is printed
(``pytest -s``) and asserted. ``make test`` runs a few offsets per class; ``make soak`` hundreds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from sim.crash.storage import Report, enospc_cases, run_faults

MUST_DETECT = ("truncate-db", "flip-wal", "truncate-wal", "delete", "old-copy")  # every case is real damage


def _check(report: Report) -> None:
    print("\n" + "\n".join(report.lines()))
    assert report.problems == []
    assert report.failures == 0
    for fault in MUST_DETECT:
        assert report.tried[fault] > 0 and report.outcome[fault]["detected"] == report.tried[fault], fault
    enospc = [f for f in report.tried if f.startswith("enospc")]
    assert len(enospc) == 1 and report.outcome[enospc[0]]["detected"] == report.tried[enospc[0]] == 9
    assert report.outcome["flip-db"]["detected"] > 0  # flips in free space are harmless; the rest are caught
    assert (report.outcome["flip-record"]["harmless"], report.outcome["flip-record"]["detected"]) == (2, 1)


def test_every_storage_fault_is_detected_or_harmless() -> None:
    _check(enospc_cases(run_faults(count=4, seed=1)))


@pytest.mark.soak
@pytest.mark.parametrize("seed", [2, 3])
def test_every_storage_fault_is_detected_or_harmless_at_hundreds_of_offsets(seed: int) -> None:
    _check(enospc_cases(run_faults(count=300, seed=seed, sales=6)))


def _tmpfs_run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sim.crash.diskfull`` on a small tmpfs of its own, inside ``unshare -r -m``."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True,
                                                         check=False).returncode != 0:
        pytest.skip("no user and mount namespaces here (unshare -r -m): the journal-level ENOSPC cases cover it")
    script = 'D=$(mktemp -d) && mount -t tmpfs -o size=64m tmpfs "$D" && exec "$@" "$D"'
    return subprocess.run(["unshare", "-r", "-m", "sh", "-c", script, "sh", sys.executable, "-m",
                           "sim.crash.diskfull", *args], capture_output=True, text=True, timeout=1800, check=False,
                          env=dict(os.environ))


@pytest.mark.slow
def test_a_real_terminal_with_its_disk_filling_during_the_sale_says_so_and_loses_nothing() -> None:
    # every 9th durability point from the 9th: during the sale (make soak runs every point)
    run = _tmpfs_run("--first", "9", "--every", "9")
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    found = re.search(r"disk full points survived (\d+) / (\d+) \(writes refused at (\d+)\)", run.stdout)
    assert found and found[1] == found[2] and int(found[2]) >= 2 and int(found[3]) >= 1, run.stdout


@pytest.mark.soak
def test_a_real_terminal_with_its_disk_filling_at_every_point_says_so_and_loses_nothing() -> None:
    run = _tmpfs_run()
    print(run.stdout)
    assert run.returncode == 0 and "LOST" not in run.stdout, run.stdout + run.stderr[-2000:]
