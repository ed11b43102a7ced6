"""Void against a real journal and a fake host: reason 17, write-ahead void_pending, recovery repeats it."""

import pytest

from flows.messages import say
from flows.ports import AuthResponse, ReverseResult, TopupResult
from flows.recovery import recover
from flows.refund import refund_payment, refund_receipt
from flows.txn_state import path_to
from flows.void import void_payment, void_receipt, voidable
from pos_errors import LinkTimeout
from terminal.journal import Journal
from tests.flows.fakes import FakeCarrier


class Host:
    def __init__(self, fail=0):
        self.fail, self.sent = fail, []

    def reverse(self, request):
        self.sent.append((request.stan, request.original.stan, request.reason_code, request.repeat,
                          request.original.pan))
        if self.fail:
            self.fail -= 1
            raise LinkTimeout("silent")
        return "00"


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.db")


def _sale(j, order, state="completed", stan=21):
    txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="D10G-1M",
                  plan_name="10 GB", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    for step in path_to(state, through="auth_intended"):
        j.update(txn, step, **({"stan": stan, "auth_code": "654321", "masked_pan": "621234******1232",
                                "auth_time": "2026-12-01T10:00:00"} if step == "auth_intended" else {}))
    return txn


def test_voidable_lists_completed_payments_of_the_open_batch_newest_first(journal):
    first, _, third = _sale(journal, "O1"), _sale(journal, "O2", "reversed"), _sale(journal, "O3")
    assert [r.txn_id for r in voidable(journal.all_transactions(), 1)] == [third, first]
    assert voidable(journal.all_transactions(), 2) == []


def test_void_is_a_reason_17_reversal_without_pan_and_prints_its_own_receipt(journal):
    txn = _sale(journal, "O1")
    host = Host()
    result = void_payment(host, journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                          merchant_id="M1", carrier=FakeCarrier())
    assert result.done and journal.get(txn).state == "voided"
    [(void_stan, original, reason, repeat, pan)] = host.sent
    assert (original, reason, repeat, pan) == (21, "17", False, "") and void_stan != 21
    trail = [state for state, _ in journal.events(txn)]
    # journal first: the void and its intent before the carrier is asked, then the carrier's word, then the 0400
    assert trail[-5:] == ["completed", "void_pending", "void_pending", "void_pending", "voided"]
    assert "topup_status=reversing" in journal.events(txn)[-4][1] and "supervisor 90" in journal.events(txn)[-4][1]
    assert result.topup_reversed and "top-up reversed by the carrier" in journal.events(txn)[-3][1]
    text = "\n".join(line.text for line in void_receipt(result.record, merchant_name="Shop", terminal_id="T1",
                                                         when="2026-12-01 10:05"))
    assert "VOIDED" in text and "AMOUNT -￥30.00" in text and f"VOID STAN {void_stan:06d}" in text
    assert "621234******1232" in text and "89860424000000000017" not in text
    zh = "\n".join(line.text for line in void_receipt(result.record, merchant_name="Shop", terminal_id="T1",
                                                       when="2026-12-01 10:05", lang="zh"))
    assert "已撤销" in zh and "充值已从SIM卡撤回" in zh and "VOIDED" not in zh and "Top-up" not in zh
    assert "Top-up taken back from the SIM" in text
    assert say(result.message, "en") == "Voided ￥30.00 for SIM …0017"
    assert say(result.message, "zh") == "已撤销 ￥30.00（SIM …0017）"


def test_unacknowledged_void_stays_pending_and_recovery_repeats_it(journal):
    txn = _sale(journal, "O1")
    host = Host(fail=3)
    result = void_payment(host, journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                          merchant_id="M1", carrier=FakeCarrier())
    assert result.status == "pending" and journal.get(txn).state == "void_pending"
    report = recover(journal, host, None, terminal_id="T1", merchant_id="M1")
    assert journal.get(txn).state == "voided" and report.reversals_open == 0
    assert "Voided 1 payment of ￥30.00" in say(report.lines[0], "en")
    stans = {stan for stan, *_ in host.sent}
    assert len(stans) == 1 and [s[3] for s in host.sent] == [False, True, True, True]


def test_other_batch_or_state_is_refused_and_nothing_is_sent(journal):
    txn = _sale(journal, "O1")
    host = Host()
    assert void_payment(host, journal, journal.get(txn), batch=2, supervisor_id="90", terminal_id="T1",
                        merchant_id="M1", carrier=FakeCarrier()).status == "refused"
    pending = _sale(journal, "O2", "topup_pending", stan=22)
    assert void_payment(host, journal, journal.get(pending), batch=1, supervisor_id="90", terminal_id="T1",
                        merchant_id="M1", carrier=FakeCarrier()).status == "refused"
    assert host.sent == [] and journal.get(txn).state == "completed"


@pytest.mark.parametrize("answer, reason", [(ReverseResult("O1", False, "used", "used"), "used"),
                                            (ReverseResult("O1", False, "window_passed"), "window_passed"),
                                            (LinkTimeout("lost"), "unreachable")])
def test_carrier_keeps_the_topup_nothing_goes_to_the_host_unless_anyway(journal, answer, reason):
    txn = _sale(journal, "O1")
    host, carrier = Host(), FakeCarrier()
    carrier.reverse.append(answer)
    refused = void_payment(host, journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                           merchant_id="M1", carrier=carrier)
    assert (refused.status, refused.carrier_reason, refused.done) == ("carrier_refused", reason, False)
    assert host.sent == [] and journal.get(txn).state == "completed"
    assert carrier.calls == [("reverse_topup", "O1")]
    assert say(refused.message, "zh").startswith("运营商未撤回充值：")
    carrier.reverse.append(answer)  # the supervisor presses F1 "anyway": asked again, still kept
    result = void_payment(host, journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                          merchant_id="M1", carrier=carrier, anyway=True)
    assert result.done and not result.topup_reversed and journal.get(txn).state == "voided"
    trail = journal.events(txn)[-3][1]
    assert f"top-up NOT reversed ({reason}): supervisor 90 chose to give the money back anyway" in trail
    text = "\n".join(line.text for line in void_receipt(journal.get(txn), merchant_name="Shop", terminal_id="T1",
                                                         when="2026-12-01 10:05", lang="en"))
    # a lost answer is not a refusal: the receipt (and any reprint, built from the row) never claims "NOT reversed"
    expected = "not known whether it was taken back" if reason == "unreachable" else "Top-up NOT reversed"
    assert expected in text and ("NOT reversed" in text) == (reason != "unreachable")


class RefundHost:
    def __init__(self, codes):
        self.codes, self.sent = list(codes), []

    def refund(self, request):
        self.sent.append(request)
        return AuthResponse(self.codes.pop(0), "", "000000000002", b"")


def test_refund_of_a_settled_sale_asks_the_carrier_first_and_a_decline_keeps_the_sale(journal):
    txn = _sale(journal, "O1")
    journal.update(txn, "completed", topup_status="applied")
    carrier, host = FakeCarrier(), RefundHost(["05", "00"])
    carrier.reverse.append(ReverseResult("O1", False, "window_passed"))
    args = {"terminal_id": "T1", "merchant_id": "M1", "supervisor_id": "90", "carrier": carrier}
    open_batch = refund_payment(host, journal, journal.get(txn), settled_batch=1, **args)
    assert open_batch.status == "refused" and carrier.calls == []  # its batch is still open: a void, not a refund
    kept = refund_payment(host, journal, journal.get(txn), settled_batch=2, **args)
    assert (kept.status, kept.carrier_reason, host.sent) == ("carrier_refused", "window_passed", [])
    carrier.status.extend([TopupResult("O1-RA1", "not_found"), TopupResult("O1-RA1", "applied", 4000)])
    carrier.create.append(TopupResult("O1-RA1", "applied", 4000))
    declined = refund_payment(host, journal, journal.get(txn), settled_batch=2, **args)  # carrier reverses now
    # the bank declined after the carrier took the top-up back: it is put back (a new order), the sale stands
    assert declined.status == "declined" and journal.get(txn).state == "completed"
    assert carrier.calls[-3:] == [("reverse_topup", "O1"), ("order_status", "O1-RA1"), ("create_topup", "O1-RA1")]
    assert [s for s, _ in journal.events(txn)][-3:] == ["refund_pending", "topup_reapply", "completed"]
    assert "put back on SIM …0017: the sale stands" in say(declined.message, "en")
    journal.update(txn, "completed", topup_status="applied")  # the put-back top-up is what a new refund reverses
    done = refund_payment(host, journal, journal.get(txn), settled_batch=2, **args)
    assert done.done and done.topup_reversed and journal.get(txn).state == "refunded"
    assert host.sent[0].stan != host.sent[1].stan  # a new refund after a decline is a new message (own STAN)
    text = "\n".join(ln.text for ln in refund_receipt(done.record, merchant_name="S", terminal_id="T1", when="x",
                                                       lang="en"))
    assert "REFUNDED" in text and "Top-up taken back from the SIM" in text


class RefusingHost(Host):
    def reverse(self, request):
        super().reverse(request)
        return "12"  # answered, refused


@pytest.mark.parametrize("carrier_answer, topup", [(None, "reversed"), (ReverseResult("O1", False, "used"), "kept")])
def test_bank_refuses_the_void_the_topup_goes_back_on_the_sim_only_if_it_was_taken(journal, carrier_answer, topup):
    txn = _sale(journal, "O1")
    carrier = FakeCarrier()
    if carrier_answer is not None:
        carrier.reverse.append(carrier_answer)
    carrier.status.append(TopupResult("O1-RA1", "not_found"))
    carrier.create.append(TopupResult("O1-RA1", "applied", 7000))
    result = void_payment(RefusingHost(), journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                          merchant_id="M1", carrier=carrier, anyway=topup == "kept")
    assert result.status == "declined" and journal.get(txn).state == "completed"
    trail = [state for state, _ in journal.events(txn)]
    if topup == "reversed":
        assert trail[-3:] == ["void_pending", "topup_reapply", "completed"]  # the intent written first
        assert carrier.calls[-2:] == [("order_status", "O1-RA1"), ("create_topup", "O1-RA1")]
        assert journal.get(txn).balance_after_minor == 7000
        assert say(result.message, "zh") == "银行拒绝撤销，款项未退回——充值已恢复到SIM …0017，交易保留"
    else:
        assert trail[-2:] == ["void_pending", "completed"] and ("create_topup", "O1-RA1") not in carrier.calls
        assert say(result.message, "en") == "The bank refused the void: the money was not given back"


def test_a_topup_put_back_without_an_answer_stays_open_and_recovery_finishes_it_once(journal):
    txn = _sale(journal, "O1")
    carrier = FakeCarrier()
    carrier.status.append(LinkTimeout("silent"))
    result = void_payment(RefusingHost(), journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                          merchant_id="M1", carrier=carrier)
    assert journal.get(txn).state == "topup_reapply" and "see open items" in say(result.message, "en")
    carrier.status.append(TopupResult("O1-RA1", "applied", 5000))  # it had arrived: asked, never sent again
    report = recover(journal, Host(), carrier, terminal_id="T1", merchant_id="M1")
    assert journal.get(txn).state == "completed" and report.still_open == 0
    assert [c for c in carrier.calls if c[0] == "create_topup"] == []


@pytest.mark.parametrize("word, carrier_answer, end", [("reversing", None, "voided"),
                                                       ("reversing", ReverseResult("O1", False, "used"), "completed"),
                                                       ("reversing_anyway", ReverseResult("O1", False, "used"),
                                                        "voided")])
def test_a_void_cut_before_the_carriers_word_is_finished_by_recovery_with_the_recorded_choice(
        journal, word, carrier_answer, end):
    txn = _sale(journal, "O1")
    journal.update(txn, "void_pending", topup_status=word, message="void requested: asking the carrier first")
    carrier, host = FakeCarrier(), Host()
    if carrier_answer is not None:
        carrier.reverse.append(carrier_answer)
    report = recover(journal, host, carrier, terminal_id="T1", merchant_id="M1")
    assert journal.get(txn).state == end and carrier.calls == [("reverse_topup", "O1")]
    assert len(host.sent) == (end == "voided") and report.still_open == 0
    if end == "completed":
        assert "the carrier kept the top-up — the sale stands" in say(report.lines[0], "en")


class WatchingCarrier(FakeCarrier):
    """Records the row as the journal holds it when the carrier is asked (journal first, or not)."""

    def __init__(self, journal, txn):
        super().__init__()
        self.journal, self.txn, self.seen = journal, txn, []

    def reverse_topup(self, order_id, reason=""):
        row = self.journal.get(self.txn)
        self.seen.append((row.state, row.topup_status, row.refund_stan, reason))
        return super().reverse_topup(order_id, reason)


def test_a_settled_sales_refund_is_journalled_with_its_stan_and_intent_before_the_carrier_is_asked(journal):
    txn = _sale(journal, "O1")
    journal.update(txn, "completed", topup_status="applied")
    carrier, host = WatchingCarrier(journal, txn), RefundHost(["00"])
    done = refund_payment(host, journal, journal.get(txn), terminal_id="T1", merchant_id="M1", supervisor_id="90",
                          carrier=carrier, settled_batch=2)
    [(state, word, stan, why)] = carrier.seen
    assert (state, word, why) == ("refund_pending", "reversing", "refund") and stan is not None
    assert done.done and [r.stan for r in host.sent] == [stan]  # the refund carries the STAN of the intent
    trail = [state for state, _ in journal.events(txn)]
    assert trail[-4:] == ["completed", "refund_pending", "refund_pending", "refunded"]


@pytest.mark.parametrize("word, carrier_answer, end", [("reversing", None, "refunded"),
                                                       ("reversing", ReverseResult("O1", False, "used"), "completed"),
                                                       ("reversing_anyway", ReverseResult("O1", False, "used"),
                                                        "refunded"),
                                                       ("reversing", LinkTimeout("silent"), "completed")])
def test_a_refund_cut_before_the_carriers_word_is_finished_by_recovery_with_the_recorded_choice_and_stan(
        journal, word, carrier_answer, end):
    txn = _sale(journal, "O1")
    journal.update(txn, "refund_pending", refund_stan=77, topup_status=word,
                   message="refund requested: asking the carrier first")
    carrier, host = FakeCarrier(), RefundHost(["00"])
    if carrier_answer is not None:
        carrier.reverse.append(carrier_answer)
    report = recover(journal, host, carrier, terminal_id="T1", merchant_id="M1")
    assert journal.get(txn).state == end and carrier.calls == [("reverse_topup", "O1")]
    assert [r.stan for r in host.sent] == ([77] if end == "refunded" else []) and report.still_open == 0
    key = {"refunded": "Refunded ￥30.00", "completed": "the carrier kept the top-up — the sale stands"}[end]
    assert key in say(report.lines[0], "en")
    # the carrier's word is on the row: taken back, kept ("anyway" or not), or not known (unreachable)
    expected = {"reversed": "reversed", "used": "applied", "unreachable": "reverse_unknown"}
    answer = "reversed" if carrier_answer is None else getattr(carrier_answer, "reason", "unreachable")
    assert journal.get(txn).topup_status == expected[answer]


def test_a_refund_sent_but_not_answered_is_repeated_with_the_same_stan_and_never_asks_the_carrier_twice(journal):
    txn = _sale(journal, "O1")
    journal.update(txn, "completed", topup_status="applied")
    carrier = FakeCarrier()

    class Silent(RefundHost):
        def refund(self, request):
            self.sent.append(request)
            raise LinkTimeout("silent")

    silent = Silent([])
    first = refund_payment(silent, journal, journal.get(txn), terminal_id="T1", merchant_id="M1",
                           supervisor_id="90", carrier=carrier, settled_batch=2)
    assert first.status == "pending" and journal.get(txn).topup_status == "reversed"
    host = RefundHost(["00"])
    recover(journal, host, carrier, terminal_id="T1", merchant_id="M1")
    assert journal.get(txn).state == "refunded" and carrier.calls == [("reverse_topup", "O1")]
    assert {r.stan for r in silent.sent} == {r.stan for r in host.sent} == {journal.get(txn).refund_stan}


def test_refunds_list_completed_sales_of_every_closed_batch_within_the_window_card_and_wallet(journal):
    from flows.refund import settled_sales
    card = _sale(journal, "O1", stan=21)
    wallet = journal.begin(order_id="W1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
                           plan_name="1 GB", amount_minor=1000, fee_minor=10, channel="wechat", cashier_id="01")
    for step in path_to("completed", through="wallet_intended"):
        journal.update(wallet, step)
    rows = journal.completed_since("2000-01-01")
    assert {r.txn_id for r in rows} == {card, wallet}
    assert journal.completed_since("2999-01-01") == []  # outside the refund window: not listed
    batch = rows[0].batch
    assert [r.txn_id for r in settled_sales(rows, batch + 2)] == [wallet, card]  # two batches later, newest first
    assert settled_sales(rows, batch) == []  # still the open batch: a void, not a refund


@pytest.mark.parametrize("answer, end, topup, creates", [
    (TopupResult("O1", "applied", 4000), "completed", "applied", 0),  # still on the SIM: recorded, nothing sent
    (TopupResult("O1", "applied", 4000, reversed=True), "completed", "applied#1", 1),  # it had been taken: put back
    (LinkTimeout("silent"), "completed", "reverse_unknown", 0),  # still not known: nothing written, asked later
    (TopupResult("O1", "pending"), "completed", "reverse_unknown", 0),  # no answer to "is it on the SIM"
])
def test_a_kept_sale_whose_carrier_reversal_was_never_answered_is_followed_up_by_a_query(journal, answer, end,
                                                                                        topup, creates):
    """Issue 14: the void asked the carrier, it did not answer, the supervisor kept the sale (CANCEL). The
    follow-up asks the order's status (a query: never a second reversal) and records the answer."""
    from flows.topup_back import ask_what_became, unknown_topup

    txn = _sale(journal, "O1")
    carrier = FakeCarrier()
    carrier.reverse.append(LinkTimeout("silent"))
    kept = void_payment(Host(), journal, journal.get(txn), batch=1, supervisor_id="90", terminal_id="T1",
                        merchant_id="M1", carrier=carrier)
    assert kept.status == "carrier_refused" and unknown_topup(journal.get(txn))
    carrier.status.append(answer)
    carrier.status.append(TopupResult("O1-RA1", "not_found"))
    carrier.create.append(TopupResult("O1-RA1", "applied", 5000))
    writes = len(journal.events(txn))
    line = ask_what_became(carrier, journal, journal.get(txn))
    row = journal.get(txn)
    assert (row.state, row.topup_status) == (end, topup)
    assert [c for c in carrier.calls if c[0] == "reverse_topup"] == [("reverse_topup", "O1")]  # the void's only
    assert len([c for c in carrier.calls if c[0] == "create_topup"]) == creates
    assert unknown_topup(row) == (topup == "reverse_unknown")
    if topup == "reverse_unknown":
        assert len(journal.events(txn)) == writes and "asked again" in say(line, "en")
    elif creates:
        assert [s for s, _ in journal.events(txn)][-2:] == ["topup_reapply", "completed"]
        assert "put back on SIM …0017" in say(line, "en") and "已恢复" in say(line, "zh")
    else:
        assert say(line, "en") == "Top-up of SIM …0017 (order O1) confirmed still on the SIM: the sale stands"
