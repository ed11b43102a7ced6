"""Numbered durability points: where a power cut is simulated by the crash harness, and what ``make bench`` counts.

Every journal commit and every request sent to the acquirer, the carrier or the wallet platform calls
``reached(kind)``. Points are numbered 1, 2, 3 … in the order one process reaches them, so a scenario replayed from
a fresh world reaches the same point N at the same step. The cut is placed where it hurts most:

=================  =====================================================================================
kind               the process stops
=================  =====================================================================================
``commit``         right **after** the journal's COMMIT: the row is durable, the step it announces never ran
``host.sent``      right after the whole ISO 8583 request left: the host acts, the answer is lost
``carrier.sent``   right after the HTTP request left: the carrier acts, the answer is lost
``wallet.sent``    right after the HTTP request left: the wallet platform acts (pays, cancels, refunds),
                   the answer is lost; queries count too (the cut falls between two polls)
=================  =====================================================================================

"Before commit N" is the same cut as "after point N-1", so every boundary is covered.

The hook is passed in, never imported: the journal and the host, carrier and wallet clients take a
``crash_point`` callable (default: do nothing) and only the composition root (``terminal.wiring``) hands them
``reached``; an import-linter contract keeps every other module away from this one. Environment:

* ``POS_CRASH_AT=N`` hard-exits the process (``os._exit(CRASH_EXIT)``, no cleanup, no flush) at point N.
* ``POS_CRASH_TRACE=FILE`` appends ``N kind`` per point reached (the harness learns the points of a clean run).
* ``POS_FILL_AT=N`` with ``POS_FILL_FILE=PATH``: at point N, fill the file system PATH lives on (a small tmpfs
  the disk-full harness ``sim.crash.diskfull`` mounts) until the kernel answers ENOSPC; the process goes on.

Unset, ``reached`` only counts (``counts()``), which costs a dictionary increment.

>>> before = counts().get("doctest", 0)
>>> reached("doctest")
>>> counts()["doctest"] - before
1
"""

from __future__ import annotations

import os
import threading

__all__ = ["CRASH_EXIT", "reached", "counts", "reset_counts"]

CRASH_EXIT = 86  # a distinctive exit status: the harness tells a planned cut from a real crash

_lock = threading.Lock()
_number = 0
_counts: dict[str, int] = {}
_crash_at = int(os.environ.get("POS_CRASH_AT", "0") or 0)
_trace = os.environ.get("POS_CRASH_TRACE", "")
_fill_at = int(os.environ.get("POS_FILL_AT", "0") or 0)
_fill_file = os.environ.get("POS_FILL_FILE", "")


def reached(kind: str) -> None:
    """Count one durability point of ``kind``; exit the process here if it is the one chosen."""
    global _number
    with _lock:
        _number += 1
        _counts[kind] = _counts.get(kind, 0) + 1
        number = _number
        if _trace:
            with open(_trace, "a", encoding="ascii") as fh:
                fh.write(f"{number} {kind}\n")
    if number == _crash_at:
        os._exit(CRASH_EXIT)
    if number == _fill_at and _fill_file:
        _fill(_fill_file)


def _fill(path: str) -> None:
    """Write zeros to ``path`` until the file system is full (the disk-full harness removes it later)."""
    with open(path, "ab", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(bytes(chunk))
            except OSError:
                continue


def counts() -> dict[str, int]:
    """Points reached so far in this process, by kind (a copy)."""
    with _lock:
        return dict(_counts)


def reset_counts() -> None:
    with _lock:
        _counts.clear()
