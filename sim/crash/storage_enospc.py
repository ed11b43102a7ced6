"""The ``enospc`` fault class of ``sim.crash.storage``, run in a child process: writes refused at each commit of a
top-up.

``python -m sim.crash.storage_enospc DIR`` works in DIR, which ``sim.crash.storage`` makes a small tmpfs of its
own (``unshare -r -m``): before commit k of the second top-up it fills the tmpfs with a filler file until the
kernel says ENOSPC, so SQLite's next write really fails. With ``POS_STORAGE_HOOK=query_only`` (no namespaces
here) the storage refuses writes through ``PRAGMA query_only`` instead. For every k it checks:

* the write fails cleanly (``JournalError``; ``write_error`` set; the chain still verifies: no half step);
* the payment's result screen is not blank and says what happened and what to do;
* no new sale is taken while writes fail (``terminal.work.journal_writable`` probes with a real write);
* once space is back the probe succeeds, the same step is written, the top-up completes, and the journal
  reopens undamaged with its counters where they were.

One tab-separated line per case on stdout: ``enospc-<step>``, outcome, "", problem.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flows.messages import t
from sim.crash.storage import SALE_STEPS
from terminal.config import Settings
from terminal.core import TerminalCore
from terminal.handlers import HANDLERS
from terminal.handlers.result import payment_done
from terminal.journal import Journal, JournalError
from terminal.machine import State
from terminal.work import journal_writable

__all__ = ["main"]


def _step(j: Journal, name: str, sale: dict[str, Any]) -> None:
    """One commit of the card flow's top-up, in its order (``sim.crash.storage.SALE_STEPS``)."""
    if name == "order":
        sale["order"] = j.next_order_id("SIM00001", dt.datetime(2026, 12, 3, 11, 0, sale["n"]))
    elif name == "begin":
        sale["txn"] = j.begin(order_id=sale["order"], iccid="89860424000000000017", msisdn="1064900000001",
                              plan_id="P3", plan_name="10 GB", amount_minor=3000, fee_minor=18, channel="card",
                              cashier_id="01")
    elif name == "stan":
        sale["stan"] = j.next_stan()
    elif name == "receipt":
        j.update(sale["txn"], "completed", receipt="RECEIPT " * 40)
    else:
        j.update(sale["txn"], name, stan=sale["stan"])


def _fill(directory: Path, hook: str, j: Journal) -> None:
    if hook:
        j._db.execute("PRAGMA query_only = ON")
        return
    with open(directory / "filler", "wb", buffering=0) as fh:
        for chunk in (65536, 4096, 512, 1):  # until the kernel refuses even one byte
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass


def _free(directory: Path, hook: str, j: Journal) -> None:
    if hook:
        j._db.execute("PRAGMA query_only = OFF")
    (directory / "filler").unlink(missing_ok=True)


def _screen_after(j: Journal, error: BaseException) -> str:
    services = SimpleNamespace(settings=Settings.from_dict({}), journal=j, audit=None, settings_store=None)
    core = TerminalCore(services, HANDLERS)  # type: ignore[arg-type]
    core.machine.set_state(State.PROCESSING, model=core)
    payment_done(core, None, error)
    screen = core.screen
    return "\n".join((*screen.lines, screen.error or "")) if screen.state == "result" else ""


RIDING = ("order", "begin", "approved", "receipt")  # ride with the next durable COMMIT (money-safety.md)


def _resume_at(j: Journal, k: int, sale: dict[str, Any]) -> int:
    """The first step to do again once space is back: a failed COMMIT also took back the steps riding with it."""
    try:
        state = j.get(sale["txn"]).state if "txn" in sale else None
    except JournalError:
        state = None
    start = k
    while start > 0 and SALE_STEPS[start - 1] in RIDING and (state is None or SALE_STEPS[start - 1] == "receipt"
                                                              or (SALE_STEPS[start - 1] == "approved"
                                                                  and state != "approved")):
        start -= 1
    return start


def case(directory: Path, k: int, hook: str) -> tuple[str, str]:
    """(outcome, problem) of writes refused from commit ``k`` of the second top-up on."""
    j = Journal(directory / "journal.db")
    first: dict[str, Any] = {"n": 0}
    for name in SALE_STEPS:
        _step(j, name, first)
    before = j.counters()
    sale: dict[str, Any] = {"n": 1}
    for name in SALE_STEPS[:k]:
        _step(j, name, sale)
    _fill(directory, hook, j)
    error: JournalError | None = None
    failed = len(SALE_STEPS)  # a step riding along fails at the next durable COMMIT (the last: at the next check)
    for at in range(k, len(SALE_STEPS)):
        try:
            _step(j, SALE_STEPS[at], sale)
        except JournalError as exc:
            error, failed = exc, at
            break
    else:
        try:
            j.verify()  # commits what rides along first
        except JournalError as exc:
            error = exc
    try:
        if error is None:
            return "not triggered", ""
        if not j.write_error:
            return "silent", "no write error recorded"
        text = _screen_after(j, error)
        if t("journal.write_failed", "en") not in text or "Error" in text.replace("JournalError", ""):
            return "silent", f"result screen: {text!r}"
        if journal_writable(SimpleNamespace(journal=j)):  # type: ignore[arg-type]
            return "silent", "a new sale would be taken while writes fail"
    finally:
        _free(directory, hook, j)
    if not journal_writable(SimpleNamespace(journal=j)):  # type: ignore[arg-type]
        return "silent", "writes still refused after space came back"
    for name in SALE_STEPS[_resume_at(j, failed, sale):]:
        _step(j, name, sale)
    if (damage := j.verify()) is not None:  # no half step was left behind
        return "silent", f"chain after space came back: {damage}"
    j.close()
    again = Journal(directory / "journal.db")
    try:
        after = again.counters()
        state = again.get(sale["txn"]).state
        if again.damage is not None or state != "completed" or after["stan"] < before["stan"] + 1:
            return "silent", f"after space came back: damage={again.damage} state={state} counters={after}"
    finally:
        again.close()
    return "detected", ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    hook = os.environ.get("POS_STORAGE_HOOK", "")
    root = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="pos-enospc-"))
    failures = 0
    for k, name in enumerate(SALE_STEPS):
        directory = root / f"k{k}"
        directory.mkdir(parents=True)
        outcome, problem = case(directory, k, hook)
        gc.collect()  # the case's journal (in cycles with its core) closes now, not during the next case's full disk
        failures += outcome == "silent"
        print(f"enospc-{'hook' if hook else 'tmpfs'}\t{outcome}\t\t{name}: {problem}" if problem else
              f"enospc-{'hook' if hook else 'tmpfs'}\t{outcome}\t\t", flush=True)
        shutil.rmtree(directory)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
