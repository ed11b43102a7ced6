"""Grouped commits (issue 17 item 2): a unit written with ``durable=False`` rides with the next durable COMMIT.

Proved on a real SQLite file and a real process cut (``os._exit``: no close, no flush): what rode along is lost
together with the unit it waited for, never half of it; what a durable unit committed is kept with all it carried.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from terminal.journal import RIDE_ALONG, Journal, JournalError

CUT = textwrap.dedent("""
    import os, sys
    from terminal.journal import Journal
    j = Journal(sys.argv[1])
    order = j.next_order_id("SIM00001", __import__("datetime").datetime(2026, 12, 3, 10, 0, 0))
    txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P3",
                  plan_name="10 GB", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    if sys.argv[2] == "after_stan":
        j.next_stan()
        j.update(txn, "auth_intended")
        j.update(txn, "approved")  # rides along: the cut comes before paid
    if sys.argv[2] == "stan_drawn":  # a card flow's STAN rides with auth_intended: the cut comes before it
        j.next_stan(durable=False)
    print(txn, order, flush=True)
    os._exit(0)
""")


def _cut(path: Path, where: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", CUT, str(path), where], capture_output=True, text=True, timeout=60,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    return run.stdout.split()


def test_a_sale_cut_before_its_first_durable_write_leaves_no_trace_and_no_gap(tmp_path):
    path = tmp_path / "journal.db"
    Journal(path).close()
    _cut(path, "begun")
    j = Journal(path)
    assert j.all_transactions() == [] and j.counters()["invoice"] == 0 and j.damage is None and j.verify() is None


def test_a_cut_keeps_what_the_durable_write_carried_and_loses_only_what_rode_after_it(tmp_path):
    path = tmp_path / "journal.db"
    Journal(path).close()
    txn, order = _cut(path, "after_stan")
    j = Journal(path)
    (row,) = j.all_transactions()
    assert (row.txn_id, row.order_id, row.state) == (int(txn), order, "auth_intended")  # recovery reverses it
    assert j.counters()["invoice"] == 1 and j.counters()["stan"] == 1 and j.damage is None and j.verify() is None


def test_a_cut_after_a_riding_stan_loses_it_with_the_sale_and_the_next_sale_draws_the_same(tmp_path):
    """Nothing was sent under a STAN that rode along (auth_intended, before the 0200, is what carries it), so the
    host never saw it: drawing the same number again is no replay."""
    path = tmp_path / "journal.db"
    Journal(path).close()
    _cut(path, "stan_drawn")
    j = Journal(path)
    assert j.all_transactions() == [] and j.counters()["stan"] == 0 and j.damage is None and j.verify() is None
    assert j.next_stan(durable=False) == 1


def test_riding_units_commit_once_with_the_next_durable_unit(tmp_path):
    commits: list[str] = []
    j = Journal(tmp_path / "journal.db", crash_point=commits.append)
    commits.clear()
    txn = j.begin(order_id="O1", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                  fee_minor=0, channel="card", cashier_id="01")
    assert commits == [] and j.get(txn).state == "created"  # visible to this connection before its COMMIT
    stan = j.next_stan(durable=False)
    assert commits == [] and j.counters()["stan"] == stan
    j.update(txn, "auth_intended", stan=stan)
    assert commits == ["commit"] and j.verify() is None  # the rows and the counter sealed in the one commit


def test_a_failed_unit_takes_back_itself_only_not_what_rides_along(tmp_path):
    j = Journal(tmp_path / "journal.db")
    txn = j.begin(order_id="O1", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                  fee_minor=0, channel="card", cashier_id="01")
    with pytest.raises(JournalError):
        j.update(txn, "completed")  # an illegal move from created
    j.update(txn, "auth_intended")
    assert [s for s, _ in j.events(txn)] == ["created", "auth_intended"] and j.verify() is None


def test_a_clean_close_makes_what_rides_along_durable(tmp_path):
    j = Journal(tmp_path / "journal.db")
    j.begin(order_id="O1", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
            fee_minor=0, channel="card", cashier_id="01")
    j.close()
    again = Journal(tmp_path / "journal.db")
    assert [r.order_id for r in again.all_transactions()] == ["O1"] and again.verify() is None


def test_the_receipt_copy_rides_along_but_a_state_change_carrying_a_receipt_does_not(tmp_path):
    commits: list[str] = []
    j = Journal(tmp_path / "journal.db", crash_point=commits.append)
    txn = j.begin(order_id="O1", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                  fee_minor=0, channel="card", cashier_id="01")
    commits.clear()
    j.update(txn, "created", receipt="[]")
    assert commits == []
    j.update(txn, "cancelled", receipt="[]")
    assert commits == ["commit"] and j.get(txn).state == "cancelled"


def test_only_states_no_external_step_acts_on_ride_along():
    # every state written before an external step (auth_intended, topup_intended, reversal_pending, wallet_intended,
    # void_pending …) and every answer an external step is taken on (paid: recovery tops up from it) is durable
    assert RIDE_ALONG == {"created", "approved"}


PROBE = "INSERT INTO audit (at, user_id, action, detail) VALUES ('2026-12-03T10:00:00', '01', 'probe', '')"


def test_a_failed_unit_that_opened_the_transaction_leaves_nothing_written_and_nothing_open(tmp_path):
    """The unit that opens the transaction is the BEGIN itself (no savepoint, issue 17 item 3): its failure is a
    whole ROLLBACK, and the next unit starts clean."""
    j = Journal(tmp_path / "journal.db")
    with pytest.raises(RuntimeError), j.transaction() as db:
        db.execute(PROBE)
        raise RuntimeError("the unit's body failed")
    assert j.audit_rows(10) == [] and not j._db.in_transaction
    j.audit_append("2026-12-03T10:00:01", "01", "after", "")
    assert [row[3] for row in j.audit_rows(10)] == ["after"] and j.verify() is None


def test_a_failed_unit_riding_along_takes_back_its_own_rows_only(tmp_path):
    j = Journal(tmp_path / "journal.db")
    txn = j.begin(order_id="O1", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                  fee_minor=0, channel="card", cashier_id="01")  # rides along: the transaction stays open
    with pytest.raises(RuntimeError), j.transaction() as db:  # a savepoint inside it
        db.execute(PROBE)
        raise RuntimeError("the unit's body failed")
    j.update(txn, "auth_intended")  # durable: commits what rode along
    assert j.audit_rows(10) == [] and [s for s, _ in j.events(txn)] == ["created", "auth_intended"]
    assert not j._db.in_transaction and j.verify() is None


def test_a_commit_carrying_more_rows_than_one_read_takes_seals_every_one_in_order(tmp_path):
    """The commit reads the rows it seals a table at a time, in groups of at most 500 rowids: 1,200 sales riding
    along (each a txn row and an event row) are sealed in the order they were written, every one verified."""
    commits: list[str] = []
    j = Journal(tmp_path / "journal.db", crash_point=commits.append)
    commits.clear()
    txns = [j.begin(order_id=f"O{n}", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                    fee_minor=0, channel="card", cashier_id="01") for n in range(1200)]
    j.update(txns[0], "auth_intended")  # the durable unit: one COMMIT for all of it
    assert len(commits) == 1 and j.verify() is None
    with j.transaction() as db:
        sealed = [ref for (ref,) in db.execute("SELECT ref FROM chain WHERE tbl = 'txn' ORDER BY seq")]
    assert sealed == txns
