"""Wallet void against a real journal, a fake carrier and a fake platform: carrier first, then the refund."""

import pytest

from flows.messages import say
from flows.ports import ReverseResult, TopupResult, WalletResult
from flows.txn_state import path_to
from flows.void_wallet import void_wallet_payment
from flows.wallet_recovery import recover_wallet
from pos_errors import LinkTimeout
from terminal.journal import Journal
from tests.flows.fakes import FakeCarrier, FakeWallet


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.db")


def _wallet_sale(j, order="W1", channel="wechat", state="completed"):
    txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
                  plan_name="1 GB", amount_minor=1000, fee_minor=10, channel=channel, cashier_id="01")
    for step in path_to(state, through="wallet_intended"):
        j.update(txn, step)
    return txn


def _void(journal, txn, wallet, carrier, anyway=False):
    return void_wallet_payment(lambda channel: wallet, journal, carrier, journal.get(txn), supervisor_id="90",
                               anyway=anyway)


def test_carrier_first_then_the_platform_refunds_the_whole_order(journal):
    txn, wallet, carrier = _wallet_sale(journal), FakeWallet(), FakeCarrier()
    wallet.refund_.append(WalletResult("W1", "refunded", transaction_id="4200001"))
    result = _void(journal, txn, wallet, carrier)
    assert result.done and result.topup_reversed and journal.get(txn).state == "voided"
    assert carrier.calls == [("reverse_topup", "W1")] and wallet.calls == [("refund", "W1")]
    assert [s for s, _ in journal.events(txn)][-2:] == ["void_pending", "voided"]
    assert say(result.message, "en") == "Refunded ￥10.10 to the customer's wallet for SIM …0017"


def test_carrier_keeps_the_topup_nothing_goes_to_the_platform_unless_anyway(journal):
    txn, wallet, carrier = _wallet_sale(journal, channel="alipay"), FakeWallet(), FakeCarrier()
    carrier.reverse.extend([ReverseResult("W1", False, "used"), ReverseResult("W1", False, "used")])
    refused = _void(journal, txn, wallet, carrier)
    assert (refused.status, refused.carrier_reason) == ("carrier_refused", "used")
    assert wallet.calls == [] and journal.get(txn).state == "completed"
    wallet.refund_.append(WalletResult("W1", "refunded"))
    result = _void(journal, txn, wallet, carrier, anyway=True)
    assert result.done and not result.topup_reversed
    assert "top-up NOT reversed (used): supervisor 90 chose to give the money back anyway" in journal.events(txn)[-2][1]


@pytest.mark.parametrize("answer", [WalletResult("W1", "failed", reason="order_closed"),
                                    WalletResult("OTHER", "refunded")])
def test_refused_refund_after_the_carrier_took_the_topup_puts_it_back(journal, answer):
    txn, wallet, carrier = _wallet_sale(journal), FakeWallet(), FakeCarrier()
    wallet.refund_.append(answer)
    carrier.status.append(TopupResult("W1-RA1", "not_found"))
    carrier.create.append(TopupResult("W1-RA1", "applied", 900))
    result = _void(journal, txn, wallet, carrier)
    assert result.status == "declined" and journal.get(txn).state == "completed"
    assert [s for s, _ in journal.events(txn)][-3:] == ["void_pending", "topup_reapply", "completed"]
    assert "the top-up was put back on SIM …0017" in say(result.message, "en")


def test_refused_refund_of_a_kept_topup_only_completes_again(journal):
    txn, wallet, carrier = _wallet_sale(journal), FakeWallet(), FakeCarrier()
    carrier.reverse.append(ReverseResult("W1", False, "used"))
    wallet.refund_.append(WalletResult("W1", "failed", reason="order_closed"))
    result = _void(journal, txn, wallet, carrier, anyway=True)
    assert result.status == "declined" and journal.get(txn).state == "completed"
    assert ("create_topup", "W1-RA1") not in carrier.calls


def test_unanswered_refund_stays_pending_and_recovery_asks_the_platform_first(journal):
    txn, wallet, carrier = _wallet_sale(journal), FakeWallet(), FakeCarrier()
    wallet.refund_.append(LinkTimeout("silent"))
    result = _void(journal, txn, wallet, carrier)
    assert result.status == "pending" and journal.get(txn).state == "void_pending"
    wallet.query_.append(WalletResult("W1", "refunded", transaction_id="42"))  # it had arrived
    lines, still_open = recover_wallet(journal, wallet, carrier, clock=None)
    assert journal.get(txn).state == "voided" and still_open == 0
    assert [c for c in wallet.calls if c[0] == "refund"] == [("refund", "W1")]  # never sent a second time
    assert say(lines[0], "en") == "Wallet refund of ￥10.10 for SIM …0017 confirmed"


@pytest.mark.parametrize("put_back, end, still, said", [
    (TopupResult("W1-RA1", "applied", 900), "completed", 0, "the top-up was put back on SIM …0017: the sale stands"),
    (LinkTimeout("silent"), "topup_reapply", 1, "Top-up W1 for SIM …0017 still pending"),
])
def test_a_refund_refused_at_recovery_is_open_only_while_its_topup_is_still_being_put_back(journal, put_back, end,
                                                                                          still, said):
    """Issue 14: recovery counts a row as open only while it is (settlement subtracts exactly those put-backs)."""
    txn, wallet, carrier = _wallet_sale(journal), FakeWallet(), FakeCarrier()
    wallet.refund_.append(LinkTimeout("silent"))
    assert _void(journal, txn, wallet, carrier).status == "pending"
    wallet.query_.append(WalletResult("W1", "paid"))  # never arrived: refunded now, and refused
    wallet.refund_.append(WalletResult("W1", "failed", reason="order_closed"))
    carrier.status.append(TopupResult("W1-RA1", "not_found"))
    carrier.create.append(put_back)
    lines, still_open = recover_wallet(journal, wallet, carrier, clock=None)
    assert journal.get(txn).state == end and still_open == still
    assert said in say(lines[0], "en")


def test_card_sales_and_unfinished_orders_are_refused(journal):
    card = journal.begin(order_id="C1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="D1G-1M",
                         plan_name="1 GB", amount_minor=1000, fee_minor=0, channel="card", cashier_id="01")
    waiting = _wallet_sale(journal, "W2", state="wallet_waiting")
    wallet, carrier = FakeWallet(), FakeCarrier()
    assert _void(journal, card, wallet, carrier).status == "refused"
    assert _void(journal, waiting, wallet, carrier).status == "refused"
    assert carrier.calls == [] and wallet.calls == []


@pytest.mark.parametrize("settled", [False, True])
def test_a_wallet_sale_of_a_closed_batch_is_given_back_as_a_refund_and_prints_the_refund_layout(journal, settled):
    """Issue 14: the platform's refund is the same call either way; after settlement it is a refund, and its
    receipt (and every reprint, from the row) says REFUND / REFUNDED, not VOID."""
    from flows.refund import refund_receipt
    from flows.void import void_receipt
    from flows.void_wallet import is_settled_refund

    txn, wallet, carrier = _wallet_sale(journal), FakeWallet(), FakeCarrier()
    journal.update(txn, "completed", masked_pan="138010********3300", rrn="4200000001202612011234")
    wallet.refund_.append(WalletResult("W1", "refunded", transaction_id="4200001"))
    result = void_wallet_payment(lambda channel: wallet, journal, carrier, journal.get(txn), supervisor_id="90",
                                 settled=settled)
    record = journal.get(txn)
    assert result.done and record.state == "voided" and is_settled_refund(record) is settled
    build = refund_receipt if is_settled_refund(record) else void_receipt
    texts = [ln.text for ln in build(record, merchant_name="S", terminal_id="T1", when="x", lang="en")]
    title, status, trace = ("REFUND", "REFUNDED", "WALLET REFUND  BATCH 000001") if settled else \
        ("VOID", "VOIDED", "VOID STAN 000000  BATCH 000001")
    assert (texts[1], texts[9], texts[5]) == (title, status, trace)
    assert texts[3:5] == ["CODE 138010********3300", "TXN 4200000001202612011234"]  # the code, not a card
    assert texts[-1] == "Top-up taken back from the SIM" and "AMOUNT -￥10.10" in texts
    zh = [ln.text for ln in build(record, merchant_name="S", terminal_id="T1", when="x", lang="zh")]
    assert (zh[1], zh[9]) == (("退款", "已退款") if settled else ("撤销", "已撤销"))
