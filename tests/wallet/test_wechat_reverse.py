"""WeChat Pay 撤销订单 (``/secapi/pay/reverse``) told truthfully, through the strict simulated platform over HTTPS
(merchant API certificate on ``/secapi/``, every answer signed and checked by wechatpy, the independent oracle).

* A paid order reversed is money given back (``refunded`` → journal ``reversed``), even when the order query
  before the reverse failed: the query is asked once more (a read), and an order query that shows ``REVOKED``
  with the WeChat Pay transaction id (given only once the customer paid) says so too.
* An order the platform never saw: its reverse answers ``ORDERNOTEXIST`` (API v3's reverse documents a 404
  "交易订单号不存在"; v2's error table is silent) — believed only when the order query agrees; nothing charged.
"""

from __future__ import annotations

import time

import pytest

from drivers import wechatpay
from drivers import wechatpay_codec as codec
from drivers.wechatpay import WeChatPayClient
from flows.ports import WalletOrderStatus
from flows.testing import FakeJournal
from flows.txn_state import TxnState
from flows.wallet_recovery import recover_wallet
from pos_errors import LinkError, LinkTimeout
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import platform_sign
from tests.flows.fakes import FakeCarrier, FakeClock
from tests.wallet.replaying import Replaying, client_of, genuine


@pytest.mark.parametrize("failed_queries", [1, 2], ids=["first query failed", "both queries failed"])
def test_a_paid_order_reversed_after_a_failed_query_is_recorded_refunded(wechat, failed_queries: int) -> None:
    sim, engine, client = wechat
    assert client.micropay("T1RVQ", engine.make_code("wechat"), 1004, "x").status == "paid"
    sim.calls.clear()
    sim.fail_queries = failed_queries  # SYSTEMERROR, signed: the platform's own trouble
    result = client.cancel("T1RVQ")
    assert result.status == WalletOrderStatus.REFUNDED and result.transaction_id.startswith("42")
    assert sim.calls == ["/pay/orderquery", "/pay/orderquery", "/secapi/pay/reverse", "/pay/orderquery"]
    assert engine.orders["T1RVQ"].status == "refunded"  # the platform reversed it: the money went back
    revoked = genuine(sim, sim.answers["/pay/orderquery"][-1])
    assert (revoked["trade_state"], revoked["out_trade_no"]) == ("REVOKED", "T1RVQ") and revoked["transaction_id"]


def test_an_unpaid_order_reversed_after_failed_queries_is_recorded_cancelled(wechat) -> None:
    sim, engine, client = wechat
    code = engine.make_code("wechat", "user_paying_forever")
    assert client.micropay("T1RVU", code, 1004, "x").status == "user_paying"
    sim.fail_queries = 2
    result = client.cancel("T1RVU")
    assert (result.status, result.reason) == (WalletOrderStatus.CANCELLED, "merchant_cancelled")
    revoked = genuine(sim, sim.answers["/pay/orderquery"][-1])
    assert revoked["trade_state"] == "REVOKED" and "transaction_id" not in revoked  # never paid


def test_a_repeated_cancel_of_a_paid_order_already_reversed_stays_refunded(wechat) -> None:
    """The reverse went through but its answer was lost: the cancel is tried again and finds the order REVOKED."""
    sim, engine, client = wechat
    assert client.micropay("T1RVR", engine.make_code("wechat"), 1004, "x").status == "paid"
    lost = WeChatPayClient(sim.base_url, **sim.client_options(), timeout_s=3.0)  # the same request; its answer lost
    lost._call("/secapi/pay/reverse", {"out_trade_no": "T1RVR"}, write=True, secapi=True)  # noqa: SLF001
    sim.calls.clear()
    assert client.cancel("T1RVR").status == WalletOrderStatus.REFUNDED
    assert sim.calls == ["/pay/orderquery"]  # REVOKED with its transaction id: undone already, money given back
    revoked = genuine(sim, sim.answers["/pay/orderquery"][-1])
    assert revoked["trade_state"] == "REVOKED" and revoked["transaction_id"]


def test_a_reverse_of_an_order_the_platform_never_saw_answers_ordernotexist(wechat) -> None:
    sim, engine, client = wechat
    sim.calls.clear()
    result = client.cancel("T1RVNONE")
    assert (result.status, result.reason) == (WalletOrderStatus.CANCELLED, "not_found")
    assert sim.calls == ["/pay/orderquery", "/secapi/pay/reverse", "/pay/orderquery"]
    answer = genuine(sim, sim.answers["/secapi/pay/reverse"][-1])
    assert (answer["result_code"], answer["err_code"], answer["recall"]) == ("FAIL", "ORDERNOTEXIST", "N")
    assert "T1RVNONE" not in engine.orders  # nothing recorded at the platform


def test_an_ordernotexist_replayed_over_a_paid_orders_reverse_is_not_believed(wechat) -> None:
    sim, engine, client = wechat
    client.cancel("T1RVGONE")
    captured = sim.answers["/secapi/pay/reverse"][-1]  # genuinely signed, names no order
    assert client.micropay("T1RVPAID", engine.make_code("wechat"), 3000, "x").status == "paid"
    sim.replay["/secapi/pay/reverse"] = captured
    with pytest.raises(LinkError, match="not believed .the order query before it saw the order"):
        client.cancel("T1RVPAID")
    assert engine.orders["T1RVPAID"].status == "paid"  # still taken: the cancel stays pending


class ReplayingAfterReverse(Replaying):
    """The attacker replays a captured ORDERNOTEXIST to the reverse and to every order query after it (both
    answers name no order, so one capture fits any order of this merchant)."""

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        if path == "/secapi/pay/reverse" and "/secapi/pay/reverse" in self.replay:
            self.replay["/pay/orderquery"] = self.replay["notexist_query"]
        return super().handle(method, path, body, terminal_id, client_cert)


def test_ordernotexist_replayed_to_the_reverse_and_the_query_after_it_is_not_believed() -> None:
    engine = WalletSim()
    sim = ReplayingAfterReverse(engine)
    with client_of(sim, 3.0) as client:
        client.cancel("T1RVGONE")
        sim.replay["notexist_query"] = sim.answers["/pay/orderquery"][-1]
        assert genuine(sim, sim.replay["notexist_query"])["err_code"] == "ORDERNOTEXIST"
        assert client.micropay("T1RVPAY2", engine.make_code("wechat"), 3000, "x").status == "paid"
        sim.replay["/secapi/pay/reverse"] = sim.answers["/secapi/pay/reverse"][-1]
        with pytest.raises(LinkError, match="not believed"):
            client.cancel("T1RVPAY2")  # the query before the reverse (genuine) saw it paid
        assert engine.orders["T1RVPAY2"].status == "paid"  # the customer's money is still owed back: pending


class LosingPayments(Replaying):
    """A code payment lost on its way (the terminal gets no answer; the platform never saw it)."""

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        if path == "/pay/micropay":
            time.sleep(0.8)  # past the client's time-out: no answer
            return 502, b"", "text/plain"
        return super().handle(method, path, body, terminal_id, client_cert)


def test_ordernotexist_is_not_final_while_an_unanswered_payment_may_still_arrive(monkeypatch) -> None:
    engine = WalletSim()
    sim = LosingPayments(engine)
    with client_of(sim, 0.4) as client:
        with pytest.raises(LinkError):
            client.micropay("T1RVLOST", engine.make_code("wechat"), 1004, "x")
        with pytest.raises(LinkError, match="unanswered payment may still arrive"):
            client.cancel("T1RVLOST")  # a late arrival would be charged after a final "nothing charged"
        assert "T1RVLOST" not in engine.orders
        monkeypatch.setattr(wechatpay, "IN_AIR_S", 0.0)  # the request's lifetime has passed
        result = client.cancel("T1RVLOST")
        assert (result.status, result.reason) == (WalletOrderStatus.CANCELLED, "not_found")


def test_recovery_records_a_paid_order_reversed_after_a_failed_query_as_reversed(wechat) -> None:
    """The flow's part: a cancel left pending by a power cut, the platform's first answer to the order query an
    error; the row ends ``reversed`` (money given back), never ``cancelled`` (nothing charged)."""
    sim, engine, client = wechat
    assert client.micropay("T1RVJ", engine.make_code("wechat"), 1000, "x").status == "paid"
    journal = FakeJournal()
    txn = journal.begin(order_id="T1RVJ", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=1000, fee_minor=0, channel="wechat", cashier_id="01")
    for state in (TxnState.WALLET_INTENDED, TxnState.PAID, TxnState.TOPUP_INTENDED, TxnState.TOPUP_FAILED,
                  TxnState.WALLET_CANCEL_PENDING):
        journal.update(txn, state)
    sim.fail_queries = 1
    lines, still_open = recover_wallet(journal, {"wechat": client}, FakeCarrier(), FakeClock())
    assert still_open == 0 and [line.key for line in lines] == ["wrecovery.refunded"]
    assert journal.get(txn).state == TxnState.REVERSED and engine.orders["T1RVJ"].status == "refunded"


class AnsweringSuccess(Replaying):
    """A platform that answers a reverse of an order it never saw with a signed ``SUCCESS`` (what v2's page does
    not exclude) and records nothing."""

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        order = codec.decode(body).get("out_trade_no", "")
        if path == "/secapi/pay/reverse" and self.engine.find(order) is None:
            self.calls.append(path)
            answer = {"return_code": "SUCCESS", "appid": self.appid, "mch_id": self.mch_id, "nonce_str": "n" * 16,
                      "result_code": "SUCCESS", "recall": "N"}
            answer["sign"] = platform_sign(answer, self.api_key)
            return 200, codec.encode(answer), "text/xml"
        return super().handle(method, path, body, terminal_id, client_cert)


def test_a_reverse_success_for_an_order_never_seen_ends_not_found_once_the_query_agrees() -> None:
    engine = WalletSim()
    sim = AnsweringSuccess(engine)
    with client_of(sim, 3.0) as client:
        result = client.cancel("T1RVSUCC")
        assert (result.status, result.reason) == (WalletOrderStatus.CANCELLED, "not_found")  # never stuck pending
        assert sim.calls == ["/pay/orderquery", "/secapi/pay/reverse", "/pay/orderquery"]


def test_a_reverse_of_a_payment_still_being_decided_closes_it_for_good() -> None:
    """The code payment reached the platform but its answer never came (magic "no answer": the platform is still
    deciding): the reverse finds it, and the payment that completes late is refused — never a charge the terminal
    has written off as "nothing charged"."""
    engine = WalletSim(hang_s=1.5)
    sim = Replaying(engine)
    with client_of(sim, 0.5) as client:
        with pytest.raises(LinkTimeout):
            client.micropay("T1RVHANG", engine.make_code("wechat", "no_answer"), 1004, "x")
        result = client.cancel("T1RVHANG")
        assert (result.status, result.reason) == (WalletOrderStatus.CANCELLED, "merchant_cancelled")
        answer = genuine(sim, sim.answers["/secapi/pay/reverse"][-1])
        assert (answer["result_code"], answer["recall"]) == ("SUCCESS", "N")
        deadline = time.monotonic() + 5.0
        while "T1RVHANG" in engine._receiving and time.monotonic() < deadline:  # noqa: SLF001 - still deciding
            time.sleep(0.05)
        assert "T1RVHANG" not in engine._receiving  # noqa: SLF001 - the late payment is done…
        assert engine.orders["T1RVHANG"].status == "cancelled"  # …and met the closed order: never charged
