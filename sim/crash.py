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
``…0165``: pending, then applied).
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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from drivers.crashpoint import CRASH_EXIT
from flows.pricing import WALLET_CHANNELS
from sim.acquirer import AcquirerSim
from sim.bench import _toml
from sim.carrier import CarrierSim
from sim.wallet import WalletSim
from sim.world import SimWorld
from terminal.journal import FINAL_STATES

__all__ = ["CrashScenario", "SCENARIOS", "CutResult", "check_invariants", "wallet_ledger", "points_of", "run_cut",
           "main"]

APPROVED = ("00", "10", "11")


@dataclass(frozen=True)
class CrashScenario:
    name: str
    iccid: str
    plan_key: str
    card: str  # the chip card lying in the reader before the sale ("" for none)
    expect_result: str  # what the clean run ends with on the result screen (sanity check of the scenario)
    channel_key: str = "1"  # 1 card, 2 WeChat Pay, 3 Alipay, 4 EMV QR
    customer: tuple[str, ...] = ()  # what the customer does after the confirmation (``_customer``)


SCENARIOS: tuple[CrashScenario, ...] = (
    CrashScenario("card_approve", "89860424000000000017", "3", "visa-credit", "completed"),
    CrashScenario("host_timeout", "89860424000000000215", "5", "visa-credit", "reversed"),
    CrashScenario("decline_after_approval", "89860424000000000017", "3", "card-declines-after-approval",
                  "reversed"),
    CrashScenario("topup_pending", "89860424000000000165", "3", "visa-credit", "completed"),
    CrashScenario("wallet_code_paid", "89860424000000000017", "1", "", "completed", "2", ("code", "wechat", "paid")),
    CrashScenario("wallet_user_paying", "89860424000000000017", "1", "", "completed", "3",
                  ("code", "alipay", "user_paying_then_paid")),
    CrashScenario("wallet_topup_refused", "89860424000000000140", "1", "", "reversed", "2",
                  ("code", "wechat", "paid")),
    CrashScenario("wallet_qr_paid", "89860424000000000017", "1", "", "completed", "2", ("phone",)),
    CrashScenario("magstripe_sale", "89860424000000000017", "1", "", "completed", "1", ("swipe", "stripe-only")),
    CrashScenario("chip_fallback", "89860424000000000017", "1", "", "completed", "1",
                  ("fallback", "stripe-dead-chip")),
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

    def wait_line(self, text: str, timeout: float = 20.0) -> str | None:
        """The first console line containing ``text``; None when the process exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if text in line), None)
            if found is not None:
                return found
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        raise TimeoutError(f"terminal never showed {text!r}")

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


def _drive(term: _Process, sc: CrashScenario, world: SimWorld) -> bool:
    """The cashier's keys and the customer's part of one top-up; False as soon as the terminal is gone."""
    paying = {"code": "scan_code", "phone": "scan_code", "swipe": "insert_card", "fallback": "insert_card"}
    script = [("01 ENTER 1111 ENTER", "home"), ("1", "sim_entry"), (f"{sc.iccid} ENTER", "sim_details"),
              ("ENTER", "plan_select"), (sc.plan_key, "channel_select"), (sc.channel_key, "confirm"),
              (f"{sc.iccid[-4:]} ENTER", paying.get(sc.customer[0], "result") if sc.customer else "result")]
    if not term.wait("login", 30):
        return False
    for keys, state in script:
        if not term.keys(keys) or not term.wait(state, 30):
            return False
    if sc.customer and not (_customer(term, sc.customer, world) and term.wait("result", 30)):
        return False
    return term.keys("ENTER") and term.wait("balance", 30) and term.keys("ENTER") and term.wait("home", 30)


def _customer(term: _Process, action: tuple[str, ...], world: SimWorld) -> bool:
    """The customer's part, through the simulated devices and platforms the terminal process talks to."""
    kind, *args = action
    if kind == "code":  # shows a payment code to the scanner (pty)
        world.show_code(args[0], args[1])
    elif kind == "phone":  # reads the terminal's QR off its display, pays at the wallet platform (HTTP)
        if not term.keys("F1") or not term.wait("show_qr", 30) or (line := term.wait_line("QR payload: ")) is None:
            return False
        answer = world.wallet.phone_scan(line.split("QR payload: ", 1)[1], True)
        if answer != "paid" and term.proc.poll() is None:
            raise RuntimeError(f"the phone could not pay: {answer}")
    elif kind == "swipe":  # once the sale waits for it: a swipe from before the sale is dropped (not this customer's)
        if not term.wait("insert_card", 10):  # drawn again when the worker starts waiting
            return False
        world.swipe_card(args[0])
    elif kind == "fallback":  # a dead chip first; the terminal then accepts a swipe of the same card
        world.insert_card(args[0])
        if term.wait_line("Chip unreadable") is None:
            return False
        world.remove_card()
        world.swipe_card(args[0])
    return True


def _world(workdir: Path) -> tuple[SimWorld, Path]:
    """A fresh world tuned for speed: short host timeout, short carrier pending time."""
    world = SimWorld(workdir=workdir, overrides={"host": {"timeout_s": 2.0},
                                                 "carrier": {"timeout_s": 2.0, "poll_interval_s": 0.2,
                                                             "follow_up_s": 0.5},
                                                 "wallet": {"timeout_s": 2.0, "poll_interval_s": 0.3}})
    world.carrier = CarrierSim(pending_s=1.0)
    world.wallet = WalletSim(user_paying_s=1.0)
    world.acquirer.late_reply_s = 2.0
    config = workdir / "terminal.toml"
    config.write_text(_toml(world.config()), encoding="utf-8")
    return world, config


def _open_rows(journal: Path) -> list[tuple[int, str]]:
    marks = ",".join("?" * len(FINAL_STATES))
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(f"SELECT txn_id, state FROM txn WHERE state NOT IN ({marks})",  # noqa: S608
                          tuple(FINAL_STATES)).fetchall()


def _rows(journal: Path) -> list[dict[str, object]]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM txn ORDER BY txn_id")]


def check_invariants(rows: list[dict[str, object]], host: AcquirerSim, carrier: CarrierSim, terminal_id: str,
                     wallet_orders: Mapping[str, str] | None = None) -> list[str]:
    """Every approved payment (host ledger for cards, the wallet platform's orders by id → status for wallets)
    ends with exactly one applied top-up or a reversal/refund/cancel; no top-up without a payment; no double
    charge; no wallet order the customer could still pay; the journal agrees with every ledger. Returns what is
    wrong (empty: all good)."""
    wrong: list[str] = []
    wallet_orders = wallet_orders or {}
    charged = {e.stan: e for e in host.ledger
               if e.terminal_id == terminal_id and e.response_code in APPROVED and not e.reversed}
    applied = Counter(str(entry.order_id) for entry in carrier.ledger)
    by_order = {str(r["order_id"]): r for r in rows}
    for row in rows:
        txn, state, order = row["txn_id"], row["state"], str(row["order_id"])
        if state not in FINAL_STATES:
            wrong.append(f"txn {txn} left open in {state}")
        if row.get("channel") in WALLET_CHANNELS:
            status = wallet_orders.get(order, "absent")
            paid, payer = status == "paid", f"wallet order {status}"
        else:
            paid = row["stan"] in charged
            payer = f"host charged={paid}"
        count = applied.get(order, 0)
        if state == "completed" and not (paid and count == 1):
            wrong.append(f"txn {txn} completed but {payer}, carrier applied {count}x")
        if state != "completed" and (paid or count):
            wrong.append(f"txn {txn} is {state} but {payer}, carrier applied {count}x")
    stans = {row["stan"] for row in rows}
    wrong.extend(f"host charged stan {s} the journal does not know" for s in charged if s not in stans)
    wrong.extend(f"wallet order {o} is {s}: the customer can still pay it" for o, s in wallet_orders.items()
                 if s in ("waiting", "user_paying"))
    wrong.extend(f"wallet took order {o} the journal does not know" for o, s in wallet_orders.items()
                 if s == "paid" and o not in by_order)
    wrong.extend(f"carrier applied order {o} {n}x without a completed payment" for o, n in applied.items()
                 if n != 1 or by_order.get(o, {}).get("state") != "completed")
    return wrong


def wallet_ledger(wallet: WalletSim) -> dict[str, str]:
    """The wallet platform's orders as it sees them now (user-paying and QR orders settled first)."""
    wallet.counts()
    return {order_id: order.status for order_id, order in dict(wallet.orders).items()}


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
        world, config = _world(Path(tmp))
        try:
            if sc.card:
                world.insert_card(sc.card)
            world.pinpad.auto_pin = "1234"
            term = _Process(config, {"POS_CRASH_TRACE": str(trace)})
            try:
                if not _drive(term, sc, world):
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
        world, config = _world(Path(tmp))
        problems: list[str] = []
        try:
            if sc.card:
                world.insert_card(sc.card)
            world.pinpad.auto_pin = "1234"
            env = {"POS_CRASH_AT": str(point), "POS_CRASH_TRACE": str(trace)} if point else {}
            term = _Process(config, env)
            if kill_after_s is not None:
                threading.Timer(kill_after_s, lambda: _kill(term)).start()
            if _drive(term, sc, world):  # the cut may still come from the background follow-up
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
            problems.extend(check_invariants(_rows(journal), world.acquirer, world.carrier, "SIM00001",
                                             wallet_ledger(world.wallet)))
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
