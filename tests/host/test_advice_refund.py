"""Advices (0220/0221), refunds (0200, processing code 200000) and refused reversals, through the real
HostClient over a loopback socket to the simulated acquirer, and the refund flow on a real journal."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.host.client import HostClient
from flows.ports import AdviceRequest, AuthRequest, BatchTotals, RefundRequest, ReversalRequest, SettlementRequest
from flows.recovery import recover
from flows.refund import refund_payment, refundable
from flows.reversal import reverse_payment
from flows.saf import PanSealer, drain, offline_row
from flows.txn_state import path_to
from sim.backends.acquirer import AcquirerSim
from terminal.journal import Journal

from .conftest import GOOD, icc_data

TID, MID = "T0000001", "M00000000000001"
WHEN = dt.datetime(2025, 1, 15, 10, 0, 0)


def client(acquirer: AcquirerSim) -> HostClient:
    host, port = acquirer.address
    return HostClient(host, port, timeout_s=2.0, connect_timeout_s=1.0, terminal_id=TID, merchant_id=MID)


def auth(stan: int, amount: int = 3000) -> AuthRequest:
    return AuthRequest(stan, amount, WHEN, pan=GOOD.pan, expiry_yymm=GOOD.expiry[:4], pan_sequence=GOOD.psn,
                       icc_data=icc_data(GOOD, amount), terminal_id=TID, merchant_id=MID)


def test_an_advice_is_recorded_once_and_counts_in_settlement(acquirer: AcquirerSim) -> None:
    host = client(acquirer)
    assert host.advise(AdviceRequest(auth(7), "Y1")) == "00"
    assert host.advise(AdviceRequest(auth(7), "Y1", repeat=True)) == "00"  # 0221: the same advice again
    [entry] = acquirer.ledger
    assert (entry.mti, entry.stan, entry.response_code, entry.auth_code) == ("0220", 7, "00", "Y1")
    assert entry.masked_pan == GOOD.pan[:6] + "*" * (len(GOOD.pan) - 10) + GOOD.pan[-4:]
    assert acquirer.wire_log == ["0220", "0230", "0221", "0230"]
    assert host.settle(SettlementRequest(8, BatchTotals(1, 1, 3000, 0, 0))) == "00"


def test_a_refund_by_reference_credits_a_captured_sale_once(acquirer: AcquirerSim) -> None:
    host = client(acquirer)
    sale = host.authorize(auth(11))
    assert sale.approved
    original = AuthRequest(11, 3000, WHEN, pan="", expiry_yymm="", terminal_id=TID, merchant_id=MID)
    assert host.refund(RefundRequest(12, original, sale.rrn, sale.auth_code)).response_code == "00"
    assert host.refund(RefundRequest(12, original, sale.rrn, sale.auth_code)).response_code == "00"  # repeat
    assert [(r.stan, r.original_stan, r.amount_minor) for r in acquirer.refunds] == [(12, 11, 3000)]
    unknown = AuthRequest(99, 3000, WHEN, pan="", expiry_yymm="", terminal_id=TID)
    assert host.refund(RefundRequest(13, unknown)).response_code == "25"
    assert len(acquirer.refunds) == 1
    # a second refund of the same sale (another STAN) would give back more than was charged: refused
    assert host.refund(RefundRequest(14, original, sale.rrn, sale.auth_code)).response_code == "13"
    assert len(acquirer.refunds) == 1


def test_refused_reversals_by_switch_and_by_magic_amount(acquirer: AcquirerSim) -> None:
    host = client(acquirer)
    assert host.authorize(auth(21, 3094)).approved
    assert host.reverse(ReversalRequest(22, auth(21, 3094))) == "12"
    assert host.authorize(auth(23)).approved
    acquirer.refuse_reversals = True
    assert host.reverse(ReversalRequest(24, auth(23))) == "12"
    assert not any(e.reversed for e in acquirer.ledger)
    acquirer.refuse_reversals = False
    assert host.reverse(ReversalRequest(25, auth(23))) == "00"


def test_refund_flow_after_a_refused_reversal(acquirer: AcquirerSim, tmp_path) -> None:
    journal, host = Journal(tmp_path / "j.db"), client(acquirer)
    txn = journal.begin(order_id="O1", iccid="89860424000000000140", msisdn="1064900000001", plan_id="P",
                        plan_name="10 GB", amount_minor=3000, fee_minor=0, channel="card", cashier_id="90")
    stan = journal.next_stan()
    journal.update(txn, "auth_intended", stan=stan, auth_time=WHEN.isoformat(), masked_pan="621234******1232")
    sale = host.authorize(auth(stan))
    journal.update(txn, "approved", auth_code=sale.auth_code, rrn=sale.rrn)
    for state in path_to("topup_failed", start="approved"):
        journal.update(txn, state)
    acquirer.refuse_reversals = True
    assert not reverse_payment(host, journal, journal.get(txn), terminal_id=TID, merchant_id=MID)
    record = journal.get(txn)
    assert record.state == "reversal_refused" and refundable(journal.open_transactions()) == [record]
    report = recover(journal, host, _NoCarrier(), terminal_id=TID, merchant_id=MID)  # does not repeat it
    assert report.reversals_open == 0 and journal.get(txn).state == "reversal_refused"
    acquirer.set_unreachable(True)
    pending = refund_payment(host, journal, record, terminal_id=TID, merchant_id=MID, supervisor_id="90")
    assert pending.status == "pending" and journal.get(txn).state == "refund_pending"
    acquirer.set_unreachable(False)
    recover(journal, host, _NoCarrier(), terminal_id=TID, merchant_id=MID)  # repeats it, same STAN
    done = journal.get(txn)
    assert done.state == "refunded" and done.refund_stan == pending.record.refund_stan
    assert [(r.stan, r.original_stan) for r in acquirer.refunds] == [(done.refund_stan, stan)]
    states = [s for s, _ in journal.events(txn)]
    after = states[states.index("reversal_refused") + 1:]
    assert after[-1] == "refunded" and set(after[:-1]) == {"refund_pending"}


class _NoCarrier:
    def order_status(self, order_id):  # pragma: no cover - no top-up state in these tests
        raise AssertionError("carrier not expected")


def _queued_offline_sale(journal: Journal, sealer: PanSealer) -> tuple[int, int]:
    """A sale the card approved offline, its advice queued under the journal's next STAN: (txn id, STAN)."""
    txn = journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    again = AuthRequest(journal.next_stan(), 3000, WHEN + dt.timedelta(minutes=5), pan=GOOD.pan,
                        expiry_yymm=GOOD.expiry[:4], pan_sequence=GOOD.psn, icc_data=icc_data(GOOD, 3000),
                        terminal_id=TID, merchant_id=MID)
    journal.saf_offline_approved(txn, offline_row(again, sealer))
    return txn, again.stan


def test_an_advice_under_another_payments_stan_gets_94_and_goes_once_more_under_a_fresh_stan(
        acquirer: AcquirerSim, tmp_path) -> None:
    """Counters gone back (issue 15 item 2): the queued advice's STAN is an older advice's at the host. Taken as a
    repeat it would be acknowledged and never paid to the merchant; the host answers 94 (not taken), and the queue
    sends it once more under the journal's next STAN as a first 0220, the sale's row following it. A true repeat
    of the older advice is still 00."""
    host = client(acquirer)
    assert host.advise(AdviceRequest(auth(1, 1000), "Y1")) == "00"  # an older payment, STAN 1
    journal = Journal(tmp_path / "j.db")
    sealer = PanSealer(b"k" * 32, TID)
    txn, stan = _queued_offline_sale(journal, sealer)
    assert stan == 1
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID)
    assert report.sent == 1 and report.stopped == ()
    [row] = journal.saf_items(("sent",))
    assert (row.stan, row.attempts, row.response_code, row.pan_sealed) == (2, 1, "00", b"")  # PAN erased once sent
    assert journal.get(txn).stan == 2 and "stan=2" in [d for _, d in journal.events(txn)][-1]
    assert [(e.mti, e.stan, e.amount_minor) for e in acquirer.ledger] == [("0220", 1, 1000), ("0220", 2, 3000)]
    assert acquirer.wire_log[2:] == ["0220", "0230", "0800", "0810", "0220", "0230"]  # 94, echo, a first 0220
    assert host.advise(AdviceRequest(auth(1, 1000), "Y1", repeat=True)) == "00"  # the same advice: a repeat
    journal.close()


def test_a_second_94_after_renumbering_stops_the_advice_in_the_queue(acquirer: AcquirerSim, tmp_path) -> None:
    host = client(acquirer)
    for stan in (1, 2):  # the host already has older payments under STANs 1 and 2 (and this host gives no view)
        assert host.advise(AdviceRequest(auth(stan, 1000 + stan), "Y1")) == "00"
    journal = Journal(tmp_path / "j.db")
    sealer = PanSealer(b"k" * 32, TID)
    txn, _ = _queued_offline_sale(journal, sealer)
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID)
    assert report.sent == 0 and [r.txn_id for r in report.stopped] == [txn]
    [row] = journal.saf_items(("failed",))
    assert (row.stan, row.response_code) == (2, "94") and "after renumbering too" in (row.message or "")
    assert sealer.open(row.pan_sealed, 2) == GOOD.pan  # sealed anew under its new STAN
    assert [e.stan for e in acquirer.ledger] == [1, 2]  # neither 94 was recorded
    assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID).sent == 0  # stopped: not sent again
    journal.close()


class _PowerCut(Exception):
    pass


class _CutBeforeTheQueueRow(Journal):
    """The power fails after the sale's row took the fresh STAN, before the queue row is renumbered."""

    def saf_update(self, saf_id, status, **values):
        if values.get("stan") is not None:
            raise _PowerCut
        super().saf_update(saf_id, status, **values)


def test_a_cut_between_the_sales_row_and_the_queue_row_costs_one_more_94(acquirer: AcquirerSim, tmp_path) -> None:
    host = client(acquirer)
    assert host.advise(AdviceRequest(auth(1, 1000), "Y1")) == "00"  # an older payment, STAN 1
    path = tmp_path / "j.db"
    journal = _CutBeforeTheQueueRow(path)
    sealer = PanSealer(b"k" * 32, TID)
    txn, _ = _queued_offline_sale(journal, sealer)
    with pytest.raises(_PowerCut):
        drain(host, journal, sealer, terminal_id=TID, merchant_id=MID)
    assert journal.get(txn).stan == 2 and journal.saf_items()[0].stan == 1  # the cut: rows disagree for now
    journal.close()
    journal = Journal(path)  # the next boot drains again: STAN 1 is answered 94 once more, then a fresh one
    assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID).sent == 1
    [row] = journal.saf_items(("sent",))
    assert row.stan == journal.get(txn).stan == 3
    assert [(e.stan, e.amount_minor) for e in acquirer.ledger] == [(1, 1000), (3, 3000)]  # recorded once
    journal.close()
