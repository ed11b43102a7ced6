"""Durability cost of store-and-forward: journal commits (fsyncs) and host sends per offline-approved top-up,
including draining its advice (0220), next to the design's minimum.

Offline approvals on the ``offline-approve`` test card (floor limit ￥1000) in a simulated world; the background
follow-up drains each advice. The minimum: one commit for paid + advice queued (one commit by design), one
before the carrier call and one after it, one before the advice leaves (its try counted) and one after the 0230:
``DESIGN_MINIMUM_COMMITS`` = 5. Measured, never asserted.
"""

from __future__ import annotations

import time
from typing import Any

from drivers import crashpoint
from sim.bench.money import _topup, cashier_at_home, points_per_topup

__all__ = ["measure", "DESIGN_MINIMUM_COMMITS"]

DESIGN_MINIMUM_COMMITS = 5


def measure(transactions: int = 3) -> dict[str, Any]:
    overrides = {"carrier": {"follow_up_s": 0.2}, "emv": {"floor_limit_minor": 100000}}
    with cashier_at_home("pos-bench-saf-", overrides, "offline-approve") as world:
        before = crashpoint.counts()
        started = time.monotonic()
        for _ in range(transactions):
            _topup(world)
        journal = world.services.journal
        deadline = time.monotonic() + 20
        while journal.saf_items() and time.monotonic() < deadline:
            time.sleep(0.05)
        drained_s = time.monotonic() - started
        after = crashpoint.counts()
        sent = len(journal.saf_items(("sent",)))
    per = points_per_topup(before, after, transactions)
    commits = per.get("commit", 0.0)
    return {
        "journal_commits_per_offline_topup": round(commits, 2),
        "design_minimum_commits": DESIGN_MINIMUM_COMMITS,
        "commits_ratio_to_minimum": round(commits / DESIGN_MINIMUM_COMMITS, 2),
        "host_sends_per_offline_topup": round(per.get("host.sent", 0.0), 2),
        "advices_sent": sent,
        "seconds_for_all_incl_drain": round(drained_s, 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
