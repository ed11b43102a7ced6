"""``make crash-test``: cut the power at every durability point of a top-up and prove no money is lost.

For each scenario the harness first runs it once cleanly with ``POS_CRASH_TRACE`` to learn its numbered
durability points (``drivers.crashpoint``: every journal commit, every request sent to the host, the carrier or
the wallet platform). Then, once per point N, on a fresh simulated world (ptys, acquirer, carrier and wallet
platform on loopback, a new journal):

1. start ``pos-terminal`` as its own process with ``POS_CRASH_AT=N`` and drive the scenario through its console
   keypad, the customer's part through the simulated devices (a code shown to the scanner pty, a phone paying the
   QR the console printed, a swipe on the reader pty), until the process hard-exits at point N (``os._exit``: no
   cleanup, no flush — a power cut);
2. start ``pos-terminal`` again (recovery runs at boot, the background follow-up after it) and wait until the
   journal has no open transaction;
3. check the invariants against the simulated host's, carrier's and wallet platform's own ledgers
   (``check_invariants``).

It prints ``cut points survived / total`` per scenario and overall and exits non-zero when any cut lost money.
``--every K`` tries every K-th point only (the subset ``make test`` runs); ``--kill-random R`` adds R runs that
``SIGKILL`` the terminal at a random moment instead (``make soak``).

Scenarios: card approve, host timeout (the acquirer's magic ``.97``: no answer), decline after approval (the
``card-declines-after-approval`` test card: host approves, card answers AAC), top-up pending (carrier magic SIM
``…0165``: pending, then applied), offline approval (``offline-approve`` under the floor limit: the host learns
of the payment only from the 0220 advice of the store-and-forward queue, which must arrive exactly once); wallet:
a customer-presented WeChat Pay code paid at once, an Alipay code the customer confirms on the phone (``…91``)
then paid, a code never confirmed (``…97``: the merchant timeout cancels it), a paid code whose top-up the
carrier refuses (SIM ``…0140``: refunded), the terminal's merchant-presented QR paid by the phone; magstripe: a
stripe-only card swiped, and a chip card whose dead chip lets it be swiped (fallback); ``wallet_void``: a WeChat Pay
sale the supervisor then voids (the carrier takes the top-up back, the platform refunds the order) — a cut anywhere
in the void must end voided with the order refunded once and no top-up left, or completed with the top-up on.
``card_void``: a chip card sale the supervisor then voids (carrier first, then the 0400 reason 17);
``card_refund``: a chip card sale, the supervisor closes the day, then refunds the settled sale (journal first:
``refund_pending`` with its refund STAN and the intent, the carrier takes the top-up back, the 0200 refund) — a
cut anywhere must end refunded once with no top-up left, or completed with the top-up on; ``card_refund_anyway``:
the same after the SIM used the top-up (the carrier refuses; the supervisor refunds anyway, F1 again) — refunded
once with the top-up left on the SIM, as chosen, or completed; ``card_void_anyway_unreachable``: the carrier cannot
be reached during the void, the supervisor voids anyway, the carrier comes back and open items ENTER takes the
top-up back (``reversing_late`` journalled first) — voided once with the top-up taken back exactly once (or left
on when the carrier refuses), never left "maybe still on the SIM" after the restart's recovery, or completed;
``card_refund_anyway_unreachable``: the same for a settled sale's refund (the day closed first).
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sqlite3
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
from sim.backends.acquirer import AcquirerSim
from sim.backends.carrier import CarrierSim
from sim.backends.wallet import WalletSim
from sim.crash.drive import SCENARIOS, CrashScenario, TerminalProcess, crash_world, drive
from terminal.journal import FINAL_STATES

__all__ = ["CrashScenario", "SCENARIOS", "CutResult", "check_invariants", "wallet_ledger", "points_of", "run_cut",
           "main"]

APPROVED = ("00", "10", "11")


def _open_rows(journal: Path) -> list[tuple[int, str]]:
    """Open transactions, transactions whose advice (store-and-forward) has not yet reached the host, and sales
    given back while the carrier was unreachable whose top-up is not yet taken back or known to stay
    (``flows.topup_back.given_back_unknown``)."""
    marks = ",".join("?" * len(FINAL_STATES))
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(f"SELECT txn_id, state FROM txn WHERE state NOT IN ({marks})"  # noqa: S608
                          " UNION ALL SELECT txn_id, 'advice queued' FROM saf WHERE status = 'queued'"
                          " UNION ALL SELECT txn_id, state || ', top-up ' || topup_status FROM txn"
                          " WHERE state IN ('voided', 'refunded') AND (topup_status LIKE 'reverse_unknown%'"
                          " OR topup_status LIKE 'reversing_late%')",
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
    refunds = Counter(e.original_stan for e in getattr(host, "refunds", ()) if e.terminal_id == terminal_id)
    wrong.extend(f"host refunded stan {s} {n}x" for s, n in refunds.items() if n > 1)
    charged = {e.stan: e for e in host.ledger  # a refund (0200 200000, by reference) gives the sale back
               if e.terminal_id == terminal_id and e.response_code in APPROVED and not e.reversed
               and not refunds[e.stan]}
    # top-ups on the SIM now, per sale: applied minus taken back (void/refund); a top-up put back after a refused
    # void is the sale's own order with -RA<n> (flows.topup_back)
    applied = Counter(re.sub(r"-RA\d+$", "", str(entry.order_id)) for entry in carrier.ledger)
    applied.subtract(re.sub(r"-RA\d+$", "", str(order)) for order in carrier.reversals)
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
        if _kept_anyway(row) and (paid or count != 1):  # money back, top-up left on by the supervisor's choice
            wrong.append(f"txn {txn} is {state} (top-up kept anyway) but {payer}, carrier applied {count}x")
        elif state != "completed" and not _kept_anyway(row) and (paid or count):
            wrong.append(f"txn {txn} is {state} but {payer}, carrier applied {count}x")
    stans = {row["stan"] for row in rows}
    wrong.extend(f"host charged stan {s} the journal does not know" for s in charged if s not in stans)
    wrong.extend(f"wallet order {o} is {s}: the customer can still pay it" for o, s in wallet_orders.items()
                 if s in ("waiting", "user_paying"))
    wrong.extend(f"wallet took order {o} the journal does not know" for o, s in wallet_orders.items()
                 if s == "paid" and o not in by_order)
    wrong.extend(f"carrier applied order {o} {n}x without a completed payment" for o, n in applied.items()
                 if n != 0 and (n != 1 or (by_order.get(o, {}).get("state") != "completed"
                                           and not _kept_anyway(by_order.get(o, {})))))
    return wrong


def _kept_anyway(row: Mapping[str, object]) -> bool:
    """A sale given back (voided / refunded) whose top-up the carrier kept, by the supervisor's explicit, audited
    "anyway" (``topup_status`` applied, ``flows.topup_back``): the money went back, the top-up stays on the SIM."""
    return row.get("state") in ("voided", "refunded") and str(row.get("topup_status") or "").startswith("applied")


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
        world, config = crash_world(Path(tmp), sc.floor_limit_minor, sc.host)
        try:
            if sc.card:
                world.insert_card(sc.card)
            world.pinpad.auto_pin = "1234"
            world.reader.reinsert_on_beep = True  # a card in before the sale: out and in again when asked
            term = TerminalProcess(config, {"POS_CRASH_TRACE": str(trace)})
            try:
                if not drive(term, sc, world):
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
        world, config = crash_world(Path(tmp), sc.floor_limit_minor, sc.host)
        problems: list[str] = []
        try:
            if sc.card:
                world.insert_card(sc.card)
            world.pinpad.auto_pin = "1234"
            world.reader.reinsert_on_beep = True  # a card in before the sale: out and in again when asked
            env = {"POS_CRASH_AT": str(point), "POS_CRASH_TRACE": str(trace)} if point else {}
            term = TerminalProcess(config, env)
            if kill_after_s is not None:
                threading.Timer(kill_after_s, lambda: _kill(term)).start()
            if drive(term, sc, world):  # the cut may still come from the background follow-up
                _settle(journal, until=lambda: term.proc.poll() is not None)
            if point and term.proc.poll() is None:
                term.stop()
                return None
            status = term.stop()
            # A real host may read the dead terminal's last request late; here it must have read it before the
            # restarted terminal's recovery asks about it, or a reversal could overtake its own original.
            world.acquirer.wait_until(lambda host: host.connections == 0, 10)
            if point:
                kind = _kind_at(trace, point)
                if status != CRASH_EXIT:
                    problems.append(f"expected a cut at point {point}, process ended {status}")
            world.carrier.set_unreachable(False)  # an outage the scenario started is over by the restart
            again = TerminalProcess(config, {})
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


def _kill(term: TerminalProcess) -> None:
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
