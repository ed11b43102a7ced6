"""``make crash-test``: cut the power at every durability point of a top-up and prove no money is lost.

For each scenario the harness first runs it once cleanly with ``POS_CRASH_TRACE`` to learn its numbered
durability points (``drivers.crashpoint``: every journal commit, every request sent to the host or carrier).
Then, once per point N, on a fresh simulated world (ptys, acquirer and carrier on loopback, a new journal):

1. start ``pos-terminal`` as its own process with ``POS_CRASH_AT=N`` and drive the scenario through its console
   keypad until the process hard-exits at point N (``os._exit``: no cleanup, no flush — a power cut);
2. start ``pos-terminal`` again (recovery runs at boot, the background follow-up after it) and wait until the
   journal has no open transaction;
3. check the invariants against the simulated host's and carrier's own ledgers (``check_invariants``).

It prints ``cut points survived / total`` per scenario and overall and exits non-zero when any cut lost money.
``--every K`` tries every K-th point only (the subset ``make test`` runs); ``--kill-random R`` adds R runs that
``SIGKILL`` the terminal at a random moment instead (``make soak``).

Scenarios: card approve, host timeout (the acquirer's magic ``.97``: no answer), decline after approval (the
``card-declines-after-approval`` test card: host approves, card answers AAC), top-up pending (carrier magic SIM
``…0165``: pending, then applied), offline approval (``offline-approve`` under the floor limit: the host learns
of the payment only from the 0220 advice of the store-and-forward queue, which must arrive exactly once).
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.crashpoint import CRASH_EXIT
from sim.acquirer import AcquirerSim
from sim.bench import _toml
from sim.carrier import CarrierSim
from sim.world import SimWorld
from terminal.journal import FINAL_STATES

__all__ = ["CrashScenario", "SCENARIOS", "CutResult", "check_invariants", "points_of", "run_cut", "main"]

APPROVED = ("00", "10", "11")


@dataclass(frozen=True)
class CrashScenario:
    name: str
    iccid: str
    plan_key: str
    card: str
    expect_result: str  # what the clean run ends with on the result screen (sanity check of the scenario)
    floor_limit_minor: int = 0  # > 0: the card may approve offline (store-and-forward advice)


SCENARIOS: tuple[CrashScenario, ...] = (
    CrashScenario("card_approve", "89860424000000000017", "3", "visa-credit", "completed"),
    CrashScenario("host_timeout", "89860424000000000215", "5", "visa-credit", "reversed"),
    CrashScenario("decline_after_approval", "89860424000000000017", "3", "card-declines-after-approval",
                  "reversed"),
    CrashScenario("topup_pending", "89860424000000000165", "3", "visa-credit", "completed"),
    CrashScenario("offline_approve", "89860424000000000017", "3", "offline-approve", "completed",
                  floor_limit_minor=100000),
)


class _Process:
    """One ``pos-terminal`` child driven through its console; knows when it died."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", "--config", str(config)],  # noqa: S603
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, env={**os.environ, **env})
        self.states: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []  # everything the console display showed
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # noqa: S101
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("── "):
                self.states.put(line.split()[1])

    def wait(self, state: str, timeout: float = 20.0) -> bool:
        """True when the screen showed ``state``; False when the process exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.states.get(timeout=0.05) == state:
                    return True
            except queue.Empty:
                if self.proc.poll() is not None:
                    return False
        raise TimeoutError(f"terminal never showed {state}")

    def keys(self, text: str) -> bool:
        assert self.proc.stdin is not None  # noqa: S101
        try:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=10)


def _drive(term: _Process, sc: CrashScenario) -> bool:
    """The cashier's keys for one top-up; False as soon as the terminal is gone."""
    script = [("01 ENTER 1111 ENTER", "home"), ("1", "sim_entry"), (f"{sc.iccid} ENTER", "sim_details"),
              ("ENTER", "plan_select"), (sc.plan_key, "channel_select"), ("1", "confirm"),
              (f"{sc.iccid[-4:]} ENTER", "result"),
              ("ENTER", "balance"), ("ENTER", "home")]
    if not term.wait("login", 30):
        return False
    for keys, state in script:
        if not term.keys(keys) or not term.wait(state, 30):
            return False
    return True


def _world(workdir: Path, floor_limit_minor: int = 0) -> tuple[SimWorld, Path]:
    """A fresh world tuned for speed: short host timeout, short carrier pending time."""
    world = SimWorld(workdir=workdir, overrides={"host": {"timeout_s": 2.0},
                                                 "carrier": {"timeout_s": 2.0, "poll_interval_s": 0.2,
                                                             "follow_up_s": 0.5},
                                                 "emv": {"floor_limit_minor": floor_limit_minor}})
    world.carrier = CarrierSim(pending_s=1.0)
    world.acquirer.late_reply_s = 2.0
    config = workdir / "terminal.toml"
    config.write_text(_toml(world.config()), encoding="utf-8")
    return world, config


def _open_rows(journal: Path) -> list[tuple[int, str]]:
    """Open transactions, and transactions whose advice (store-and-forward) has not yet reached the host."""
    marks = ",".join("?" * len(FINAL_STATES))
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(f"SELECT txn_id, state FROM txn WHERE state NOT IN ({marks})"  # noqa: S608
                          " UNION ALL SELECT txn_id, 'advice queued' FROM saf WHERE status = 'queued'",
                          tuple(FINAL_STATES)).fetchall()


def _rows(journal: Path) -> list[dict[str, object]]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM txn ORDER BY txn_id")]


def check_invariants(rows: list[dict[str, object]], host: AcquirerSim, carrier: CarrierSim,
                     terminal_id: str) -> list[str]:
    """Every approved payment ends with exactly one applied top-up or a reversal; no top-up without an approved
    payment; no double charge; the journal agrees with both ledgers. Returns what is wrong (empty: all good)."""
    wrong: list[str] = []
    charged = {e.stan: e for e in host.ledger
               if e.terminal_id == terminal_id and e.response_code in APPROVED and not e.reversed}
    applied: dict[str, int] = {}
    for entry in carrier.ledger:
        applied[entry.order_id] = applied.get(entry.order_id, 0) + 1
    by_order = {str(r["order_id"]): r for r in rows}
    for row in rows:
        txn, state, order = row["txn_id"], row["state"], str(row["order_id"])
        if state not in FINAL_STATES:
            wrong.append(f"txn {txn} left open in {state}")
        paid = row["stan"] in charged
        count = applied.get(order, 0)
        if state == "completed" and not (paid and count == 1):
            wrong.append(f"txn {txn} completed but host charged={paid}, carrier applied {count}x")
        if state != "completed" and (paid or count):
            wrong.append(f"txn {txn} is {state} but host charged={paid}, carrier applied {count}x")
    stans = {row["stan"] for row in rows}
    wrong.extend(f"host charged stan {s} the journal does not know" for s in charged if s not in stans)
    wrong.extend(f"carrier applied order {o} {n}x without a completed payment" for o, n in applied.items()
                 if n != 1 or by_order.get(o, {}).get("state") != "completed")
    return wrong


@dataclass(frozen=True)
class CutResult:
    scenario: str
    point: int
    kind: str
    survived: bool
    problems: tuple[str, ...]


def points_of(sc: CrashScenario) -> list[str]:
    """Run ``sc`` cleanly once; the kinds of its durability points, in order (index 0 is point 1)."""
    with tempfile.TemporaryDirectory(prefix="pos-crash-") as tmp:
        trace = Path(tmp) / "trace.txt"
        world, config = _world(Path(tmp), sc.floor_limit_minor)
        try:
            world.insert_card(sc.card)
            world.pinpad.auto_pin = "1234"
            term = _Process(config, {"POS_CRASH_TRACE": str(trace)})
            try:
                if not _drive(term, sc):
                    raise RuntimeError(f"{sc.name}: the clean run did not finish")
                _settle(Path(tmp) / "journal.db")
                states = [str(r["state"]) for r in _rows(Path(tmp) / "journal.db")]
                if states[-1:] != [sc.expect_result]:
                    raise RuntimeError(f"{sc.name}: clean run ended {states}, expected {sc.expect_result}")
            finally:
                term.stop()
        finally:
            world.stop()
        return [line.split()[1] for line in trace.read_text().splitlines()]


def _settle(journal: Path, timeout: float = 20.0,
            until: Callable[[], bool] = lambda: False) -> list[tuple[int, str]]:
    """Wait until the journal has no open transaction (or ``until()``); returns what is still open."""
    deadline = time.monotonic() + timeout
    while (still := _open_rows(journal)) and time.monotonic() < deadline and not until():
        time.sleep(0.1)
    return still


def run_cut(sc: CrashScenario, point: int | None, kind: str, *, kill_after_s: float | None = None,
            tries: int = 4) -> CutResult:
    """Cut the power at ``point`` (or SIGKILL after ``kill_after_s``), restart, recover, check.

    Points reached by the background follow-up depend on timing (how many status polls a pending top-up
    takes), so a run that ends without reaching ``point`` is repeated on a fresh world, up to ``tries`` times.
    """
    for _ in range(tries):
        result = _cut_once(sc, point, kind, kill_after_s)
        if result is not None:
            return result
    return CutResult(sc.name, point or 0, kind, False, (f"point {point} not reached in {tries} runs",))


def _cut_once(sc: CrashScenario, point: int | None, kind: str, kill_after_s: float | None) -> CutResult | None:
    with tempfile.TemporaryDirectory(prefix="pos-crash-") as tmp:
        journal, trace = Path(tmp) / "journal.db", Path(tmp) / "trace.txt"
        world, config = _world(Path(tmp), sc.floor_limit_minor)
        problems: list[str] = []
        try:
            world.insert_card(sc.card)
            world.pinpad.auto_pin = "1234"
            env = {"POS_CRASH_AT": str(point), "POS_CRASH_TRACE": str(trace)} if point else {}
            term = _Process(config, env)
            if kill_after_s is not None:
                threading.Timer(kill_after_s, lambda: _kill(term)).start()
            if _drive(term, sc):  # the cut may still come from the background follow-up
                _settle(journal, until=lambda: term.proc.poll() is not None)
            if point and term.proc.poll() is None:
                term.stop()
                return None
            status = term.stop()
            if point:
                kind = _kind_at(trace, point)
                if status != CRASH_EXIT:
                    problems.append(f"expected a cut at point {point}, process ended {status}")
            again = _Process(config, {})
            try:
                if not again.wait("login", 30):
                    problems.append("the terminal did not boot after the cut")
                problems.extend(f"txn {t} still {s} after recovery" for t, s in _settle(journal))
            finally:
                again.stop()
            problems.extend(check_invariants(_rows(journal), world.acquirer, world.carrier, "SIM00001"))
        finally:
            world.stop()
    return CutResult(sc.name, point or 0, kind, not problems, tuple(dict.fromkeys(problems)))


def _kind_at(trace: Path, point: int) -> str:
    for line in trace.read_text().splitlines() if trace.exists() else ():
        number, kind = line.split()
        if int(number) == point:
            return kind
    return "?"


def _kill(term: _Process) -> None:
    if term.proc.poll() is None:
        term.proc.send_signal(signal.SIGKILL)


def run(scenarios: tuple[CrashScenario, ...] = SCENARIOS, *, every: int = 1, offset: int = 0,
        kill_random: int = 0, echo: Callable[[str], None] = print, seed: int = 0) -> list[CutResult]:
    results: list[CutResult] = []
    rng = random.Random(seed)
    for sc in scenarios:
        kinds = points_of(sc)
        mine: list[CutResult] = []
        for number in range(1 + offset, len(kinds) + 1, every):
            result = run_cut(sc, number, kinds[number - 1])
            mine.append(result)
            echo(f"  {sc.name} point {number:2d} {result.kind:12s} "
                 + ("survived" if result.survived else "LOST: " + "; ".join(result.problems)))
        for _ in range(kill_random):
            after = rng.uniform(0.5, 4.0)
            result = run_cut(sc, None, f"kill@{after:.2f}s", kill_after_s=after)
            mine.append(result)
            echo(f"  {sc.name} {result.kind:18s} " + ("survived" if result.survived else
                                                          "LOST: " + "; ".join(result.problems)))
        echo(f"{sc.name}: cut points survived {sum(r.survived for r in mine)} / {len(mine)}")
        results.extend(mine)
    echo(f"cut points survived {sum(r.survived for r in results)} / {len(results)}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--every", type=int, default=1, help="try every K-th point only")
    parser.add_argument("--kill-random", type=int, default=0, help="extra runs killed at a random moment")
    args = parser.parse_args(argv)
    chosen = tuple(s for s in SCENARIOS if not args.scenario or s.name in args.scenario)
    results = run(chosen, every=args.every, kill_random=args.kill_random)
    return 0 if all(r.survived for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
