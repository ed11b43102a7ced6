"""A sale given back "anyway" while the carrier was unreachable: its top-up is followed up and taken back once.

Against a real SQLite journal and a scripted carrier (``tests/flows/fakes.py``); the whole terminal through the
real carrier HTTPS link is ``scenarios/given_back_carrier_unreachable.toml``, the cut points ``tests/scenarios/
test_crash.py``.
"""

import pytest

from flows.messages import say
from flows.ports import ReverseResult, TopupResult
from flows.topup_back import GIVEN_BACK_OPEN, given_back_unknown, receipt_footer, take_back_late
from flows.txn_state import path_to
from flows.void import void_payment
from pos_errors import LinkTimeout
from terminal.journal import Journal
from tests.flows.fakes import FakeCarrier


class Host:
    def __init__(self):
        self.sent = []

    def reverse(self, request):
        self.sent.append(request.stan)
        return "00"


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.db")


def _voided_anyway(journal, order="O1"):
    """A completed card sale, the void asked while the carrier cannot be reached, F1 again: voided anyway."""
    txn = journal.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="D10G-1M",
                        plan_name="10 GB", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to("completed", through="auth_intended"):
        journal.update(txn, step, **({"stan": 21, "auth_code": "654321", "masked_pan": "621234******1232",
                                      "auth_time": "2026-12-01T10:00:00"} if step == "auth_intended" else {}))
    carrier = FakeCarrier()
    carrier.reverse.append(LinkTimeout("silent"))
    result = void_payment(Host(), journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                          merchant_id="M1", carrier=carrier, anyway=True)
    assert result.status == "voided" and result.carrier_reason == "unreachable"
    return txn, carrier


def _reversals(carrier):
    return [c for c in carrier.calls if c[0] == "reverse_topup"]


def test_a_sale_voided_anyway_while_the_carrier_was_unreachable_is_listed_until_followed_up(journal):
    txn, _ = _voided_anyway(journal)
    row = journal.get(txn)
    assert (row.state, row.topup_status) == ("voided", "reverse_unknown") and given_back_unknown(row)
    assert [r.txn_id for r in journal.given_back_with_topup(GIVEN_BACK_OPEN)] == [txn]
    journal.update(txn, "voided", topup_status="reversed")
    assert journal.given_back_with_topup(GIVEN_BACK_OPEN) == [] and not given_back_unknown(journal.get(txn))


def test_the_query_reads_the_word_of_a_put_back_order_and_only_given_back_rows(journal):
    txn, _ = _voided_anyway(journal)
    journal.update(txn, "voided", topup_status="reverse_unknown#2")  # a put-back order (-RA2) given back
    other = journal.begin(order_id="O2", iccid="8986", msisdn="1064", plan_id="P", plan_name="p", amount_minor=1,
                          fee_minor=0, channel="card", cashier_id="01")
    for step in path_to("completed"):
        journal.update(other, step)
    journal.update(other, "completed", topup_status="reverse_unknown")  # kept sale: ask_what_became's, not ours
    assert [r.txn_id for r in journal.given_back_with_topup(GIVEN_BACK_OPEN)] == [txn]


@pytest.mark.parametrize("status, reverse, topup, reversals, key", [
    # still on the SIM: journal first (reversing_late), then the one late reversal, then its word
    (TopupResult("O1", "applied", 4000), ReverseResult("O1", True), "reversed", 1, "givenback.reversed"),
    # the lost reversal of the void had arrived after all: recorded, nothing sent
    (TopupResult("O1", "applied", 4000, reversed=True), None, "reversed", 0, "givenback.gone"),
    # the SIM has used it meanwhile: the carrier keeps it (the supervisor accepted that risk), recorded
    (TopupResult("O1", "applied", 4000), ReverseResult("O1", False, "used"), "applied", 1, "givenback.kept"),
    # no answer, or no word about the SIM: nothing written, asked again next time
    (LinkTimeout("silent"), None, "reverse_unknown", 0, "givenback.still"),
    (TopupResult("O1", "pending"), None, "reverse_unknown", 0, "givenback.still"),
])
def test_the_follow_up_takes_the_top_up_back_once_or_records_that_it_is_gone(journal, status, reverse, topup,
                                                                             reversals, key):
    txn, carrier = _voided_anyway(journal)
    carrier.status.append(status)
    if reverse is not None:
        carrier.reverse.append(reverse)
    before = len(journal.events(txn))
    line = take_back_late(carrier, journal, journal.get(txn))
    row = journal.get(txn)
    assert (row.state, row.topup_status) == ("voided", topup)
    assert _reversals(carrier) == [("reverse_topup", "O1")] * (1 + reversals)  # the void's own, then at most one
    assert line.key == key and "…0017" in say(line, "en") and "…0017" in say(line, "zh")
    if reversals:  # the intent was written before the reversal left
        assert [d for _, d in journal.events(txn)[before:]][0].startswith("topup_status=reversing_late")
    else:
        assert len(journal.events(txn)) == before + (topup != "reverse_unknown")


def test_a_late_reversal_cut_or_unanswered_is_asked_about_first_and_never_sent_twice(journal):
    """The late reversal left but its answer was lost (or the power went): the row stays ``reversing_late``; the
    next follow-up asks the order's status first and, since the reversal had arrived, records it — no second
    reversal request."""
    txn, carrier = _voided_anyway(journal)
    carrier.status.append(TopupResult("O1", "applied", 4000))
    carrier.reverse.append(LinkTimeout("answer lost"))
    assert take_back_late(carrier, journal, journal.get(txn)).key == "givenback.still"
    row = journal.get(txn)
    assert row.topup_status == "reversing_late" and given_back_unknown(row)
    assert receipt_footer(row.topup_status) == "vrcpt.topup_unknown"  # a reprint meanwhile says "not known"
    carrier.status.append(TopupResult("O1", "applied", 4000, reversed=True))
    assert take_back_late(carrier, journal, journal.get(txn)).key == "givenback.gone"
    assert journal.get(txn).topup_status == "reversed"
    assert len(_reversals(carrier)) == 2  # the void's, the late one: not a third
    assert journal.given_back_with_topup(GIVEN_BACK_OPEN) == []


def test_a_late_reversal_cut_before_it_left_is_sent_under_the_same_order_id(journal):
    txn, carrier = _voided_anyway(journal)
    journal.update(txn, "voided", topup_status="reversing_late")  # the intent committed, then the power went
    carrier.status.append(TopupResult("O1", "applied", 4000))
    writes = len(journal.events(txn))
    assert take_back_late(carrier, journal, journal.get(txn)).key == "givenback.reversed"
    assert _reversals(carrier)[-1] == ("reverse_topup", "O1") and journal.get(txn).topup_status == "reversed"
    assert len(journal.events(txn)) == writes + 1  # the intent is not written twice


def test_a_settled_sale_refunded_anyway_while_the_carrier_was_unreachable_is_taken_back_once(journal):
    """The refund of a closed batch's sale, given "anyway" while the carrier could not be asked: ``refunded`` with
    ``reverse_unknown``; the follow-up takes the top-up back once and records it."""
    from flows.ports import AuthResponse
    from flows.refund import refund_payment

    class RefundHost:
        def __init__(self):
            self.sent = []

        def refund(self, request):
            self.sent.append(request.stan)
            return AuthResponse("00")

    txn = journal.begin(order_id="O9", iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
                        plan_name="1 GB", amount_minor=1000, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to("completed", through="auth_intended"):
        journal.update(txn, step, **({"stan": 31, "auth_code": "654321", "masked_pan": "621234******1232",
                                      "auth_time": "2026-12-01T10:00:00", "rrn": "000000000031"}
                                     if step == "auth_intended" else {}))
    carrier, host = FakeCarrier(), RefundHost()
    carrier.reverse.append(LinkTimeout("silent"))
    result = refund_payment(host, journal, journal.get(txn), terminal_id="T1", merchant_id="M1", supervisor_id="90",
                            carrier=carrier, settled_batch=2, anyway=True)
    assert result.done and len(host.sent) == 1
    row = journal.get(txn)
    assert (row.state, row.topup_status) == ("refunded", "reverse_unknown") and given_back_unknown(row)
    carrier.status.append(TopupResult("O9", "applied", 4000))
    line = take_back_late(carrier, journal, row)
    assert (journal.get(txn).state, journal.get(txn).topup_status) == ("refunded", "reversed")
    assert "refunded earlier: now taken back" in say(line, "en") and "此前已退款" in say(line, "zh")
    assert _reversals(carrier) == [("reverse_topup", "O9")] * 2 and len(host.sent) == 1  # nothing more to the bank
