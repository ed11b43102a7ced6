"""A reversal quotes its original's POS entry mode (field 22), kept in the SQLite journal with the 0200.

Through the real parts: the journal-first authorisation (``flows.authorize``) writes the row in a real
``terminal.journal.Journal``, the terminal "restarts" (the journal is closed and opened again), and
``flows.reversal.reverse_payment`` rebuilds the 0400 from the row alone and sends it with the real ``HostClient``
to the ``AcquirerSim`` over loopback, which refuses a reversal whose field 22 differs from the original's.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, replace

import pytest

from drivers.host import HostClient
from flows.authorize import authorize_journaled
from flows.ports import AuthRequest, HostPort, JournalPort
from flows.reversal import original_from_record, reverse_payment
from flows.txn_state import TxnState
from sim.backends.acquirer import AcquirerSim
from terminal.journal import MIGRATIONS, Journal
from tests.host.conftest import GOOD, TODAY, icc_data

LOCAL = dt.datetime.combine(TODAY, dt.time(11, 5, 0))
TID, MID = "T0000001", "M00000000000001"


@dataclass
class _Ports:
    host: HostPort
    journal: JournalPort


def _client(sim: AcquirerSim) -> HostClient:
    host, port = sim.address
    return HostClient(host, port, timeout_s=0.3, connect_timeout_s=1.0, terminal_id=TID, merchant_id=MID)


def _begin(journal: Journal, channel: str = "card") -> int:
    return journal.begin(order_id="O1", iccid="89860424000000000215", msisdn="1064912345678", plan_id="P1",
                         plan_name="10 GB", amount_minor=2097, fee_minor=0, channel=channel, cashier_id="01")


@pytest.mark.parametrize("entry_mode", ["051", "071", "901", "801"])
def test_an_unanswered_payment_is_reversed_after_a_restart_with_its_own_entry_mode(tmp_path, acquirer, entry_mode):
    path = tmp_path / "journal.db"
    journal = Journal(path)
    txn = _begin(journal)
    chip = entry_mode[:2] in ("05", "07")
    request = AuthRequest(stan=journal.next_stan(), amount_minor=2097, local_time=LOCAL, pan=GOOD.pan,
                          expiry_yymm=GOOD.expiry[:4], pan_sequence=GOOD.psn if chip else None,
                          pos_entry_mode=entry_mode, icc_data=icc_data(GOOD, 2097, atc=1) if chip else b"")
    _sent, answer, unknown = authorize_journaled(_Ports(_client(acquirer), journal), txn, request)  # x.97: no answer
    assert answer is None and unknown is not None
    assert acquirer.ledger[0].entry_mode == entry_mode and acquirer.approved_total_minor() == 2097
    journal.close()

    journal = Journal(path)  # the restart: only what the journal kept
    record = journal.get(txn)
    assert (record.state, record.entry_mode) == (TxnState.AUTH_UNKNOWN, entry_mode)
    assert reverse_payment(_client(acquirer), journal, record, terminal_id=TID, merchant_id=MID)
    assert journal.get(txn).state == TxnState.REVERSED
    assert [(r.entry_mode, r.response_code, r.original_stan) for r in acquirer.reversals] == [
        (entry_mode, "00", request.stan)]
    assert acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 0
    journal.close()


def test_the_acquirer_refuses_a_reversal_quoting_another_entry_mode_and_the_journal_says_so(tmp_path, acquirer):
    """What every reversal did before the entry mode was journalled: a swiped payment reversed as chip (051)."""
    journal = Journal(tmp_path / "journal.db")
    txn = _begin(journal)
    request = AuthRequest(stan=journal.next_stan(), amount_minor=2097, local_time=LOCAL, pan=GOOD.pan,
                          expiry_yymm=GOOD.expiry[:4], pos_entry_mode="901")
    authorize_journaled(_Ports(_client(acquirer), journal), txn, request)
    forged = replace(journal.get(txn), entry_mode="051")
    assert not reverse_payment(_client(acquirer), journal, forged, terminal_id=TID, merchant_id=MID)
    assert journal.get(txn).state == TxnState.REVERSAL_REFUSED  # visible: a supervisor refunds it
    assert not acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 2097
    journal.close()


def test_a_row_journalled_before_migration_7_reverses_as_it_always_did(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS[:5]:  # before the seal chain (6): a chained journal's rows would need seals
            db.executescript(migration)
        for order, channel in (("O1", "card"), ("O2", "tap")):
            db.execute("INSERT INTO txn (state, order_id, iccid, msisdn, plan_id, plan_name, amount_minor,"
                       " fee_minor, channel, cashier_id, created_at, updated_at, stan, auth_time) VALUES"
                       " ('auth_unknown',?,'8986','1064','P','p',100,0,?,'01','2026-12-01T10:00:00.000',"
                       "'2026-12-01T10:00:00.000',7,'2026-12-01T10:00:00')", (order, channel))
        db.execute("PRAGMA user_version = 5")
    journal = Journal(path)
    rows = journal.all_transactions()
    assert [r.entry_mode for r in rows] == [None, None]
    assert [original_from_record(r, TID, MID).pos_entry_mode for r in rows] == ["051", "071"]
    journal.update(rows[0].txn_id, TxnState.AUTH_UNKNOWN, entry_mode="901")  # the new column takes writes
    assert journal.get(rows[0].txn_id).entry_mode == "901"
    journal.close()
