"""Wallet top-up flows and their recovery against a real journal, the simulated wallet and carrier platforms on
loopback HTTP (real clients), with short poll intervals."""

from __future__ import annotations

import base64
import threading

import pytest

from drivers.carrier import CarrierClient
from drivers.wallet import WalletClient
from emv import qr
from emv.tlv import Tlv, encode
from flows.messages import say
from flows.ports import CancelToken, Plan
from flows.pricing import ChannelLimits, FeeSchedule, quote
from flows.topup import TopupOrder
from flows.txn_state import path_to
from flows.wallet_payment import (
    NOT_A_PAYMENT_CODE,
    WalletProgress,
    WalletSettings,
    WalletStep,
    WalletTopupService,
    classify_code,
)
from flows.wallet_recovery import recover_wallet
from sim.backends.carrier import CarrierSim
from sim.backends.wallet import WalletSim
from terminal.journal import Journal
from terminal.services import SystemClock

HAPPY_SIM, REJECT_SIM = "89860424000000000017", "89860424000000000140"
PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)


@pytest.mark.parametrize("text, kind", [
    ("134567890123456789", "wechat"),
    ("104567890123456789", "wechat"),
    ("154567890123456789", "wechat"),
    ("164567890123456789", None),       # prefix 16 is not WeChat, 18 digits is not Alipay's 25-30
    ("13456789012345678", None),        # 17 digits
    ("2512345678901234", "alipay"),     # 16 digits
    ("301234567890123456789012", "alipay"),  # 24 digits
    ("3012345678901234567890123", None),     # 25 digits
    ("241234567890123456", None),
    (base64.b64encode(encode([Tlv(0x85, b"CPV01")])).decode(), "emvqr"),
    (base64.b64encode(encode([Tlv(0x85, b"CPV02")])).decode(), None),
    ("https://example.com/x", None),
    ("", None),
])
def test_classify(text: str, kind: str | None) -> None:
    got = classify_code(text)
    assert got.kind == kind
    assert (got.message == NOT_A_PAYMENT_CODE) == (kind is None)


@pytest.fixture()
def world(tmp_path):  # type: ignore[no-untyped-def]
    wallet_sim, carrier_sim = WalletSim(user_paying_s=0.3, hang_s=1.0), CarrierSim()
    wallet = WalletClient(wallet_sim.start(), timeout_s=0.5, **wallet_sim.client_options())
    carrier = CarrierClient(carrier_sim.start(), timeout_s=2.0, **carrier_sim.client_options())
    journal = Journal(tmp_path / "j.db")
    settings = WalletSettings(terminal_id="T1", merchant_id="898440154110001", poll_interval_s=0.05,
                              merchant_timeout_s=1.0, qr_expiry_s=2, status_polls=2)
    service = WalletTopupService(wallet, carrier, journal, SystemClock(), settings)
    yield service, wallet_sim, carrier_sim, journal
    wallet_sim.stop()
    carrier_sim.stop()
    journal.close()


def _order(channel: str = "wechat", iccid: str = HAPPY_SIM) -> TopupOrder:
    return TopupOrder(iccid, "1064900000001", quote(PLAN, channel, FeeSchedule({channel: (0, 38)}), 100_000), "01")


@pytest.mark.parametrize("outcome, status, state, wallet_status", [
    ("paid",                       "completed", "completed", "paid"),
    ("user_paying_then_paid",      "completed", "completed", "paid"),
    ("user_paying_then_cancelled", "declined",  "declined",  "failed"),
    ("insufficient_balance",       "declined",  "declined",  "failed"),
    ("expired_code",               "declined",  "declined",  "failed"),
    ("user_paying_forever",        "cancelled", "cancelled", "cancelled"),  # merchant timeout → cancel
    ("platform_error",             "cancelled", "cancelled", "cancelled"),  # unknown → query → cancel closes id
    ("no_answer",                  "cancelled", "cancelled", "cancelled"),
])
def test_customer_presented_outcomes(world, outcome, status, state, wallet_status) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, carrier_sim, journal = world
    steps: list[WalletProgress] = []
    code = wallet_sim.make_code("wechat", outcome)
    result = service.pay_with_code(_order(), code, steps.append, CancelToken())
    row = journal.get(result.txn_id)
    assert (result.status, row.state) == (status, state), result.message
    assert wallet_sim.orders[row.order_id].status == wallet_status
    assert len(carrier_sim.ledger) == (1 if status == "completed" else 0)
    assert row.masked_pan == code[:6] + "********" + code[-4:] and code not in str(journal.events(row.txn_id))
    assert [e[0] for e in journal.events(row.txn_id)][:2] == ["created", "wallet_intended"]  # journal first
    if outcome == "expired_code":
        assert "expired" in say(result.message, "en") and "过期" in say(result.message, "zh")


def test_cancel_while_user_paying(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, _, journal = world
    cancel = CancelToken()
    threading.Timer(0.15, cancel.cancel).start()
    result = service.pay_with_code(_order("alipay"), wallet_sim.make_code("alipay", "user_paying_forever"),
                                   lambda _p: None, cancel)
    assert result.status == "cancelled" and "nothing charged" in say(result.message)
    assert wallet_sim.counts()["cancelled"] == 1


def test_carrier_refuses_then_wallet_refunds(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, carrier_sim, journal = world
    result = service.pay_with_code(_order(iccid=REJECT_SIM), wallet_sim.make_code("wechat"), lambda _p: None,
                                   CancelToken())
    assert result.status == "reversed" and journal.get(result.txn_id).reversal == "refund"
    assert wallet_sim.counts()["refunded"] == 1 and not carrier_sim.ledger


def _phone_when_shown(wallet_sim: WalletSim, pay: bool | None):  # type: ignore[no-untyped-def]
    def progress(p: WalletProgress) -> None:
        if p.step is WalletStep.SHOW_QR:
            assert qr.parse_mpm(p.detail).amount_minor == _order("emvqr").quote.total_minor
            if pay is not None:
                threading.Timer(0.1, wallet_sim.phone_scan, (p.detail, pay)).start()
    return progress


@pytest.mark.parametrize("pay, status, wallet_status", [
    (True, "completed", "paid"), (False, "declined", "failed"), (None, "cancelled", "cancelled")])
def test_merchant_presented(world, pay, status, wallet_status) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, carrier_sim, journal = world
    result = service.pay_by_qr(_order("emvqr"), _phone_when_shown(wallet_sim, pay), CancelToken())
    assert result.status == status
    assert wallet_sim.orders[result.order_id].status == wallet_status


def test_merchant_presented_cancel(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, _, _ = world
    cancel = CancelToken()
    threading.Timer(0.2, cancel.cancel).start()
    result = service.pay_by_qr(_order("wechat"), _phone_when_shown(wallet_sim, None), cancel)
    assert result.status == "cancelled" and wallet_sim.counts()["cancelled"] == 1


# --- recovery -----------------------------------------------------------------------------------------------


def _row(journal: Journal, state: str, order_id: str, channel: str = "wechat", iccid: str = HAPPY_SIM) -> int:
    txn = journal.begin(order_id=order_id, iccid=iccid, msisdn="1064900000001", plan_id="D1G-1M",
                        plan_name="1 GB", amount_minor=1000, fee_minor=4, channel=channel, cashier_id="01")
    for step in path_to(state, through="wallet_intended") if state != "created" else ():
        journal.update(txn, step)  # the journal refuses jumps: walk a legal path
    return txn


def test_recovery_of_each_state(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, carrier_sim, journal = world
    wallet, clock = service.wallet, service.clock
    wallet.micropay("PAID1", wallet_sim.make_code("wechat"), 1004, "x")
    wallet.micropay("WAIT1", wallet_sim.make_code("wechat", "user_paying_forever"), 1004, "x")
    wallet.micropay("FAIL1", wallet_sim.make_code("wechat", "insufficient_balance"), 1004, "x")
    wallet.micropay("PAID2", wallet_sim.make_code("alipay"), 1004, "x")
    rows = {"paid_then_cut": _row(journal, "wallet_waiting", "PAID1"),
            "waiting": _row(journal, "wallet_waiting", "WAIT1"),
            "refused": _row(journal, "wallet_intended", "FAIL1"),
            "never_sent": _row(journal, "wallet_intended", "NEVER1"),
            "created": _row(journal, "created", "NEW1"),
            "topup_failed": _row(journal, "topup_failed", "PAID2", iccid=REJECT_SIM),
            "card": _row(journal, "created", "CARD1", channel="card")}
    lines, still_open = recover_wallet(journal, wallet, service.carrier, clock)
    states = {k: journal.get(v).state for k, v in rows.items()}
    assert states == {"paid_then_cut": "completed", "waiting": "cancelled", "refused": "declined",
                      "never_sent": "cancelled", "created": "abandoned", "topup_failed": "reversed",
                      "card": "created"}  # card rows are left to flows.recovery
    assert still_open == 0 and len(lines) == 6
    assert [e.order_id for e in carrier_sim.ledger] == ["PAID1"]
    assert wallet_sim.orders["PAID2"].status == "refunded"


def test_recovery_with_the_platform_down_keeps_rows_open(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, _, journal = world
    txn = _row(journal, "wallet_waiting", "W9")
    wallet_sim.stop()
    lines, still_open = recover_wallet(journal, service.wallet, service.carrier, service.clock)
    assert still_open == 1 and journal.get(txn).state == "wallet_waiting"


def test_channel_limits_name_the_limit() -> None:
    fees = FeeSchedule({"wechat": (10, 38)}, {"wechat": ChannelLimits(min_minor=2000, max_minor=5000,
                                                                         daily_minor=6000)})
    assert say(quote(PLAN, "wechat", fees, 100_000).error).startswith(
        "￥10.14 is below the WeChat Pay minimum of ￥20.00")
    big = Plan("B", "b", "b", 1, 6000, 0)
    assert "WeChat Pay limit of ￥50.00 per payment" in say(quote(big, "wechat", fees, 100_000).error)
    ok = Plan("O", "o", "o", 1, 3000, 0)
    q = quote(ok, "wechat", fees, 100_000, spent_today_minor=3000)
    assert (q.fee_minor, q.total_minor, say(q.error)) == (21, 3021, "Daily limit of ￥60.00 per SIM on WeChat Pay "
                                                          "reached (￥30.00 paid today) / 超过微信支付每卡每日限额 "
                                                          "￥60.00（今日已付 ￥30.00）")
    assert quote(ok, "wechat", fees, 100_000, spent_today_minor=2979).error is None
    assert quote(ok, "card", fees, 100_000, spent_today_minor=10**6).error is None  # limits are per channel


def test_cancel_before_sending_sends_nothing(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, _, journal = world
    cancel = CancelToken()
    cancel.cancel()
    result = service.pay_with_code(_order(), wallet_sim.make_code("wechat"), lambda _p: None, cancel)
    assert result.status == "cancelled" and journal.get(result.txn_id).state == "cancelled"
    assert wallet_sim.orders == {}


def test_paid_during_the_cancel_is_reversed_and_said_so(world) -> None:  # type: ignore[no-untyped-def]
    service, wallet_sim, carrier_sim, journal = world
    cancel = CancelToken()
    code = wallet_sim.make_code("wechat", "user_paying_then_paid")

    def progress(p: WalletProgress) -> None:
        if p.step is WalletStep.WAITING:  # the customer confirms just as the cashier presses CANCEL
            wallet_sim.orders[next(iter(wallet_sim.orders))].status = "paid"
            cancel.cancel()
    result = service.pay_with_code(_order(), code, progress, cancel)
    assert result.status == "reversed" and "reversed" in say(result.message)
    assert journal.get(result.txn_id).state == "reversed" and not carrier_sim.ledger
    assert wallet_sim.counts()["refunded"] == 1
