"""Storage-fault harness (issue 15 item 6): damage a real journal every way eMMC and SD cards do, open it as the
terminal does, and check that nothing is lost silently.

A reference journal is written by a separate process doing whole top-ups through the journal's own methods in
the order the card flow calls them, and ending with ``os._exit`` (a kill -9: no close, no checkpoint, the WAL as
it was); a second reference ends cleanly (everything checkpointed into the database file). For each case the
files are copied, one fault is applied, and ``terminal.journal.Journal`` opens them. Each case ends as:

* **detected** — the journal is out of service (``damage`` set, ``begin`` refused), the cashier's text for it
  renders in both languages without any Python error text, and STAN and invoice continue from at least where
  the reference ended (a STAN the host has seen is never handed out again);
* **harmless** — no damage found and the journal holds exactly what the reference holds (every charged sale with
  its state and STAN, the same counters): the fault hit free space or a frame SQLite never needed;
* **SILENT** — anything else: a sale lost or changed, or a counter behind, without the terminal saying so. Zero
  is the only acceptable count; so is zero for **crashed** (opening the journal raised instead of going out of
  service).

Fault classes: ``truncate-db``, ``flip-db`` (clean reference), ``flip-wal``, ``truncate-wal``, ``delete``
(database or WAL), ``old-copy`` (a copy from an earlier sale put back), ``flip-record`` (one or both slots of
the high-water record), and ``enospc``: writes refused at each
commit of a top-up (a real full tmpfs inside ``unshare -r -m`` when the kernel allows it, otherwise the write
hook ``PRAGMA query_only``), where the write must fail cleanly, leave no half-written step, keep the terminal from
selling until a write succeeds, and show a result screen that is never blank.

``python -m sim.crash.storage [--cases N] [--seed S]`` prints the report; ``tests/terminal/test_storage_faults.py``
runs a small set in ``make test`` and a large one in ``make soak``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flows.messages import t
from terminal.handlers.boot import damage_lines
from terminal.journal import Journal, JournalError

__all__ = ["Reference", "Report", "write_reference", "run_faults", "enospc_cases", "main"]

SALE_STEPS = ("order", "begin", "stan", "auth_intended", "approved", "paid", "topup_intended", "completed",
              "receipt")  # every commit of one chip top-up, in the card flow's order
WRITER = textwrap.dedent("""
    import datetime, os, sys
    from terminal.journal import Journal
    j = Journal(sys.argv[1])
    for i in range(int(sys.argv[2])):
        order = j.next_order_id("SIM00001", datetime.datetime(2026, 12, 3, 10, 0, i))
        txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P3",
                      plan_name="10 GB", amount_minor=3000 + i, fee_minor=18, channel="card", cashier_id="01")
        stan = j.next_stan()
        for state in ("auth_intended", "approved", "paid", "topup_intended", "completed"):
            j.update(txn, state, stan=stan)
        j.update(txn, "completed", receipt="RECEIPT " * 40)
        if i == int(sys.argv[3]):
            for suffix in ("", "-wal"):  # a copy of the database from this moment: the "old copy" fault
                src = sys.argv[1] + suffix
                if os.path.exists(src):
                    open(sys.argv[1] + ".old" + suffix, "wb").write(open(src, "rb").read())
    if sys.argv[4] == "kill":
        os._exit(0)
    j.close()
""")
_PY_ERRORS = ("Traceback", "Error:", "codec", "sqlite3", "Exception")


@dataclass(frozen=True)
class Reference:
    """A journal written by a real process: its files and what it holds."""

    directory: Path
    sales: tuple[tuple[str, str, int | None, int], ...]  # (order id, state, STAN, total) of every transaction
    counters: dict[str, int]

    @property
    def db(self) -> Path:
        return self.directory / "journal.db"


@dataclass
class Report:
    tried: Counter[str] = field(default_factory=Counter)
    outcome: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, fault: str, outcome: str, problem: str = "") -> None:
        self.tried[fault] += 1
        self.outcome.setdefault(fault, Counter())[outcome] += 1
        if problem:
            self.problems.append(f"{fault}: {problem}")

    def lines(self) -> list[str]:
        out = []
        for fault in self.tried:
            o = self.outcome[fault]
            out.append(f"{fault:13s} tried {self.tried[fault]:4d}  detected {o['detected']:4d}  harmless "
                       f"{o['harmless']:4d}  not triggered {o['not triggered']:3d}  SILENT {o['silent']}  "
                       f"crashed {o['crashed']}")
        return out

    @property
    def failures(self) -> int:
        return sum(o["silent"] + o["crashed"] for o in self.outcome.values())


def write_reference(directory: Path, sales: int, *, killed: bool, old_copy_after: int = 0) -> Reference:
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "journal.db"
    subprocess.run([sys.executable, "-c", WRITER, str(db), str(sales), str(old_copy_after),
                    "kill" if killed else "close"], check=True, timeout=120, capture_output=True)
    probe = directory / "probe"
    _copy(directory, probe)
    j = Journal(probe / "journal.db")  # a copy: the reference files stay exactly as the writer left them
    try:
        if j.damage is not None:
            raise RuntimeError(f"the reference journal itself is damaged: {j.damage}")
        held = tuple((r.order_id, r.state, r.stan, r.total_minor) for r in j.all_transactions())
        return Reference(directory, held, j.counters())
    finally:
        j.close()
        shutil.rmtree(probe)


def _copy(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file():
            shutil.copyfile(path, dst / path.name)


def judge(ref: Reference, directory: Path, fault: str, report: Report) -> None:
    """Open the damaged copy as the terminal does and classify the case (see the module docstring)."""
    try:
        j = Journal(directory / "journal.db")
    except Exception as exc:  # noqa: BLE001 - any exception here is a terminal that cannot even say why
        report.add(fault, "crashed", f"opening raised {type(exc).__name__}: {exc}")
        return
    try:
        counters = j.counters()
        behind = [n for n in ("stan", "invoice") if counters.get(n, 0) < ref.counters[n]]
        if j.damage is not None:
            text = "\n".join((*damage_lines(j.damage, "en"), *damage_lines(j.damage, "zh")))
            problem = ("counters behind: " + ", ".join(behind) if behind else
                       "a Python error text on screen" if any(p in text for p in _PY_ERRORS) else
                       "" if _refuses_sale(j) else "a sale was accepted while out of service")
            report.add(fault, "silent" if problem else "detected", problem)
            return
        held = tuple((r.order_id, r.state, r.stan, r.total_minor) for r in j.all_transactions())
        if held == ref.sales and not behind and not j.quarantined:
            report.add(fault, "harmless")
        else:
            lost = sorted(set(ref.sales) - set(held))
            report.add(fault, "silent", f"no damage reported, but lost/changed {lost[:2]} behind={behind}")
    finally:
        j.close()


def _refuses_sale(j: Journal) -> bool:
    try:
        j.begin(order_id="PROBE", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                fee_minor=0, channel="card", cashier_id="01")
    except JournalError:
        return True
    return False


def _offsets(size: int, count: int, rng: random.Random) -> list[int]:
    fixed = [0, 17, 24, 28, 32, 100, size // 2, size - 1]
    return sorted({o for o in fixed + [rng.randrange(size) for _ in range(count)] if 0 <= o < size})[:count]


def _cases(killed: Reference, clean: Reference, count: int,
           rng: random.Random) -> Iterator[tuple[str, Reference, Callable[[Path], None]]]:
    size = clean.db.stat().st_size
    for length in sorted({0, 1, 100, 4096, size // 2, size - 1, *(rng.randrange(size) for _ in range(count))})[:count]:
        yield "truncate-db", clean, lambda d, n=length: _truncate(d / "journal.db", n)
    for offset in _offsets(size, count, rng):
        yield "flip-db", clean, lambda d, o=offset: _flip(d / "journal.db", o)
    wal_size = (killed.directory / "journal.db-wal").stat().st_size
    for offset in _offsets(wal_size, count, rng):
        yield "flip-wal", killed, lambda d, o=offset: _flip(d / "journal.db-wal", o)
    frame = 4096 + 24
    for cut in sorted({32 + frame * k for k in range(0, (wal_size - 32) // frame, max(1, wal_size // frame // count))}):
        yield "truncate-wal", killed, lambda d, n=cut: _truncate(d / "journal.db-wal", n)
    for name in ("journal.db", "journal.db-wal"):
        yield "delete", killed, lambda d, n=name: (d / n).unlink()
    yield "old-copy", clean, _put_back_old
    for slots in ((".hw0",), (".hw1",), (".hw0", ".hw1")):  # one torn slot is survived; both gone is noticed
        yield "flip-record", killed, lambda d, names=slots: [_flip(d / f"journal.db{n}", 40) for n in names]


def _truncate(path: Path, length: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(length)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def _put_back_old(d: Path) -> None:
    """A backup of the database put back: the high-water record beside it stays as it was."""
    for suffix in ("", "-wal"):
        (d / f"journal.db{suffix}").unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        old = d / f"journal.db.old{suffix}"
        if old.exists():
            old.rename(d / f"journal.db{suffix}")


def run_faults(count: int = 8, seed: int = 0, sales: int = 4, report: Report | None = None) -> Report:
    """Every fault class on ``count`` offsets or lengths each (plus the fixed ones), against fresh references."""
    report = report or Report()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="pos-storage-") as tmp:
        killed = write_reference(Path(tmp) / "killed", sales, killed=True)
        clean = write_reference(Path(tmp) / "clean", sales, killed=False, old_copy_after=1)
        for number, (fault, ref, damage) in enumerate(_cases(killed, clean, count, rng)):
            case = Path(tmp) / f"case{number}"
            _copy(ref.directory, case)
            damage(case)
            judge(ref, case, fault, report)
            shutil.rmtree(case)
    return report


def enospc_cases(report: Report | None = None) -> Report:
    """Writes refused at each commit of a top-up: by a real full tmpfs where ``unshare -r -m`` works, else by the
    write hook. Runs ``sim.crash.storage_enospc`` in a child process and adds its lines to the report."""
    report = report or Report()
    child = [sys.executable, "-m", "sim.crash.storage_enospc"]
    tmpfs = shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-r", "-m", "true"], capture_output=True, check=False).returncode == 0
    if tmpfs:
        script = 'D=$(mktemp -d) && mount -t tmpfs -o size=4m tmpfs "$D" && exec "$@" "$D"'
        child = ["unshare", "-r", "-m", "sh", "-c", script, "sh", *child]
    run = subprocess.run(child, capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "POS_STORAGE_HOOK": "" if tmpfs else "query_only"})
    for line in run.stdout.splitlines():
        fault, outcome, _, problem = (line.split("\t") + ["", "", ""])[:4]
        if outcome:
            report.add(fault, outcome, problem)
    if run.returncode not in (0, 1):
        report.add("enospc", "crashed", f"child exited {run.returncode}: {run.stderr[-400:]}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.crash.storage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=40, help="offsets or lengths per fault class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = enospc_cases(run_faults(args.cases, args.seed))
    print("\n".join(report.lines()))
    print("\n".join(report.problems) or t("diag.ok", "en", name="storage faults"))
    return 0 if report.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
