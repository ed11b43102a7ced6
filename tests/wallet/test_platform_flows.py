"""A wallet sale through the real WeChat Pay / Alipay clients and simulated gateways (HTTPS, signatures): a
micropay whose answer is malformed, forged or for another amount is never believed; the order is queried and the
platform's own signed word decides — exactly one top-up when it really paid, none (and the order undone) else."""

from __future__ import annotations

from collections import deque

import pytest

from drivers.alipay import AlipayClient
from drivers.wechatpay import WeChatPayClient
from flows.ports import CancelToken, Plan, TopupResult
from flows.pricing import FeeSchedule, quote
from flows.testing import FakeJournal
from flows.topup import TopupEnd, TopupOrder
from flows.wallet_payment import WalletSettings, WalletTopupService
from sim.backends.alipay import AlipaySim
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import WeChatPaySim
from tests.flows.fakes import FakeCarrier, FakeClock

PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)
GARBAGE = {
    "entities": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><return_code>&a;</return_code></xml>',
    "deep": b"{" * 3000 + b"}" * 3000,
    "huge number": b'{"alipay_trade_pay_response":{"code":' + b"1" * 5000 + b'},"sign":"x"}',
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "empty": b"",
}


class Garbled(WeChatPaySim):
    garbage: bytes | None = None

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        status, answer, ctype = super().handle(method, path, body, terminal_id, client_cert)  # the platform acts
        if self.garbage is not None and path.startswith("/pay/micropay"):
            return 200, self.garbage, "text/xml"
        return status, answer, ctype


class GarbledAlipay(AlipaySim):
    garbage: bytes | None = None

    def handle(self, method: str, path: str, body: bytes, terminal_id: str) -> tuple[int, bytes, str]:
        status, answer, ctype = super().handle(method, path, body, terminal_id)
        if self.garbage is not None and b"alipay.trade.pay" in body:
            return 200, self.garbage, "application/json"
        return status, answer, ctype


@pytest.fixture
def gateways():
    engine = WalletSim()
    wx, ali = Garbled(engine), GarbledAlipay(engine)
    wx_url, ali_url = wx.start(), ali.start()
    clients = {"wechat": WeChatPayClient(wx_url, **wx.client_options(), timeout_s=3.0),
               "alipay": AlipayClient(ali_url, **ali.client_options(), timeout_s=3.0)}
    yield engine, {"wechat": wx, "alipay": ali}, clients
    wx.stop()
    ali.stop()


def _sale(clients, channel: str, code: str, terminal: str = "T1"):  # type: ignore[no-untyped-def]
    journal, carrier = FakeJournal(), FakeCarrier(deque([TopupResult("x", "applied", 2250)]))
    settings = WalletSettings(terminal_id=terminal, merchant_id="898440154110001", poll_interval_s=0.0,
                              merchant_timeout_s=5.0, status_polls=2)
    service = WalletTopupService(clients, carrier, journal, FakeClock(), settings)
    order = TopupOrder("89860424000000000017", "1064900000001", quote(PLAN, channel, FeeSchedule({}), 100_000), "01")
    return service.pay_with_code(order, code, lambda _p: None, CancelToken()), journal, carrier


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
@pytest.mark.parametrize("garbage", list(GARBAGE), ids=list(GARBAGE))
@pytest.mark.parametrize(("outcome", "end"), [("paid", TopupEnd.COMPLETED),
                                              ("insufficient_balance", TopupEnd.DECLINED)])
def test_a_malformed_micropay_answer_is_queried_and_the_platforms_word_decides(gateways, channel, garbage, outcome,
                                                                                end) -> None:
    engine, sims, clients = gateways
    sims[channel].garbage = GARBAGE[garbage]
    try:
        result, journal, carrier = _sale(clients, channel, engine.make_code(channel, outcome))
    finally:
        sims[channel].garbage = None
    truth = engine.orders[result.order_id].status
    if channel == "alipay" and end is TopupEnd.DECLINED:
        end = TopupEnd.CANCELLED  # Alipay's query says TRADE_CLOSED for the refused trade
    assert result.status is end, (result, truth)
    assert len(carrier.calls) == (1 if truth == "paid" else 0)
    if truth == "paid":  # the platform's own transaction id is journalled and names the payment to the carrier
        rrn = journal.get(1).rrn
        assert rrn and rrn.endswith(engine.orders[result.order_id].transaction_id[1:]) and carrier.funding_refs == [rrn]
    assert "wallet:" in journal.get(1).message or journal.get(1).state != "completed"
    wanted = "/pay/orderquery" if channel == "wechat" else "alipay.trade.query"
    assert wanted in sims[channel].calls[-3:]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_forged_and_other_amount_paid_are_never_topped_up(gateways, channel) -> None:
    engine, sims, clients = gateways
    sims[channel].forge_paid(True)
    try:
        forged, _journal, carrier = _sale(clients, channel, engine.make_code(channel, "insufficient_balance"))
    finally:
        sims[channel].forge_paid(False)
    assert forged.status in (TopupEnd.DECLINED, TopupEnd.CANCELLED) and carrier.calls == []
    other, journal, carrier = _sale(clients, channel, engine.make_code(channel, "paid_other_amount"), "T2")
    assert other.status is TopupEnd.REVERSED and carrier.calls == []
    assert engine.orders[other.order_id].status == "refunded" and "another amount" in journal.get(1).message
