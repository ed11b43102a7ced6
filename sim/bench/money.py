"""Durability cost of one top-up: journal commits (each an fsync with ``synchronous=FULL``) per completed top-up.

Runs chip-card top-ups on the happy SIM in a simulated world and reads ``drivers.crashpoint.counts()`` around
them. The design's minimum is one commit before and one after each of the two external money steps
(authorisation and carrier top-up): ``DESIGN_MINIMUM_COMMITS`` = 4. Everything above it is the price of
separate counters (order id, STAN), the ``paid`` step after the card's second GENERATE AC and the receipt copy;
with grouped commits (docs/money-safety.md) the counters, ``created``, ``approved`` and the receipt copy ride
along, and a chip top-up commits 4 times.
Measured, never asserted.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drivers import crashpoint
from sim.runner.world import SimWorld

__all__ = ["measure", "DESIGN_MINIMUM_COMMITS", "cashier_at_home", "points_per_topup"]

DESIGN_MINIMUM_COMMITS = 4


def _topup(world: SimWorld) -> None:
    term = world.terminal
    assert term is not None  # noqa: S101
    for keys, state in (("1", "sim_entry"), ("89860424000000000017E", "sim_details"), ("E", "plan_select"),
                        ("3", "channel_select"), ("1", "confirm"), ("0017E", "result"), ("E", "balance"),
                        ("E", "home")):
        for key in keys:
            term.press("ENTER" if key == "E" else key)
        world.wait_for(state, 20)


@contextmanager
def cashier_at_home(prefix: str, overrides: dict[str, Any], card: str) -> Iterator[SimWorld]:
    """A simulated world with the cashier logged in, on the home screen, ``card`` in the reader."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        world = SimWorld(workdir=tmp, overrides={"terminal": {"duplicate_window_s": 0.0}, **overrides}).start()
        try:
            world.wait_for("login", 20)
            assert world.terminal is not None  # noqa: S101
            for key in "01E1111E":
                world.terminal.press("ENTER" if key == "E" else key)
            world.wait_for("home", 20)
            world.insert_card(card)
            world.reader.reinsert_on_beep = True  # the card is refused until re-inserted after the sale starts
            yield world
        finally:
            world.stop()


def points_per_topup(before: dict[str, int], after: dict[str, int], transactions: int) -> dict[str, float]:
    """Durability points (``drivers.crashpoint.counts()``) reached per top-up between two readings, by kind."""
    return {kind: (after.get(kind, 0) - before.get(kind, 0)) / transactions for kind in after}


def measure(transactions: int = 5) -> dict[str, Any]:
    with cashier_at_home("pos-bench-money-", {}, "unionpay-debit") as world:
        world.pinpad.auto_pin = "1234"
        before = crashpoint.counts()
        for _ in range(transactions):
            _topup(world)
        after = crashpoint.counts()
        completed = sum(r.state == "completed" for r in world.services.journal.all_transactions())
    per = points_per_topup(before, after, transactions)
    commits = per.get("commit", 0.0)
    return {
        "journal_commits_per_topup": round(commits, 2),
        "design_minimum_commits": DESIGN_MINIMUM_COMMITS,
        "commits_ratio_to_minimum": round(commits / DESIGN_MINIMUM_COMMITS, 2),
        "host_sends_per_topup": round(per.get("host.sent", 0.0), 2),
        "carrier_sends_per_topup": round(per.get("carrier.sent", 0.0), 2),
        "completed": completed,
        "transactions": transactions,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
