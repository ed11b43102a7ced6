"""Wallet HTTP client against the simulated wallet platform on loopback: every magic outcome, expiry, cancel
and refund, merchant-presented orders paid by a phone, and malformed answers."""

from __future__ import annotations

import pytest

from drivers.wallet import WalletClient
from emv import qr
from pos_errors import LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError
from sim.backends.wallet import OUTCOMES, WalletSim


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def world():  # type: ignore[no-untyped-def]
    clock = FakeClock()
    sim = WalletSim(clock=clock, hang_s=1.0)
    url = sim.start()
    yield sim, WalletClient(url, timeout_s=0.5, terminal_id="T1", **sim.client_options()), clock
    sim.stop()


@pytest.mark.parametrize("wallet", ["wechat", "alipay", "emvqr"])
def test_paid_at_once(world, wallet: str) -> None:  # type: ignore[no-untyped-def]
    sim, client, _ = world
    r = client.micropay("O1", sim.make_code(wallet, "paid"), 3018, "top-up")
    assert (r.status, r.wallet) == ("paid", wallet) and r.transaction_id.startswith("W")
    assert client.query("O1").status == "paid"


@pytest.mark.parametrize("outcome, final, reason", [
    ("user_paying_then_paid", "paid", ""),
    ("user_paying_then_cancelled", "failed", "user_cancelled"),
    ("user_paying_forever", "user_paying", ""),
])
def test_user_paying(world, outcome: str, final: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    sim, client, clock = world
    assert client.micropay("O2", sim.make_code("alipay", outcome), 100, "x").status == "user_paying"
    clock.t += 2.9
    assert client.query("O2").status == "user_paying"
    clock.t += 0.2
    r = client.query("O2")
    assert (r.status, r.reason) == (final, reason)


@pytest.mark.parametrize("outcome, reason", [("insufficient_balance", "insufficient_balance"),
                                             ("expired_code", "code_expired")])
def test_refusals(world, outcome: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    sim, client, _ = world
    r = client.micropay("O3", sim.make_code("wechat", outcome), 100, "x")
    assert (r.status, r.reason) == ("failed", reason) and r.message


def test_magic_amount_and_code_lifetime(world) -> None:  # type: ignore[no-untyped-def]
    sim, client, clock = world
    assert client.micropay("O4", sim.make_code("wechat"), 1093, "x").reason == "insufficient_balance"
    code = sim.make_code("wechat")
    clock.t += 60.5
    assert client.micropay("O5", code, 100, "x").reason == "code_expired"
    used = sim.make_code("alipay")
    assert client.micropay("O6", used, 100, "x").status == "paid"
    assert client.micropay("O7", used, 100, "x").reason == "code_expired"  # one payment per code


def test_platform_error_and_no_answer(world) -> None:  # type: ignore[no-untyped-def]
    sim, client, _ = world
    with pytest.raises(LinkTimeout, match="platform error 503"):
        client.micropay("O8", sim.make_code("wechat", "platform_error"), 100, "x")
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        client.micropay("O9", sim.make_code("wechat", "no_answer"), 100, "x")
    assert client.query("O9").status == "not_found"
    assert client.cancel("O9").status == "cancelled"  # closes the id: the late request is refused
    assert client.query("O9").status == "cancelled"


def test_cancel_reverses_paid_and_refund(world) -> None:  # type: ignore[no-untyped-def]
    sim, client, _ = world
    client.micropay("P1", sim.make_code("wechat"), 100, "x")
    assert client.cancel("P1").status == "refunded"
    client.micropay("P2", sim.make_code("alipay", "user_paying_forever"), 100, "x")
    assert client.cancel("P2").status == "cancelled"
    client.micropay("P3", sim.make_code("alipay"), 100, "x")
    assert client.refund("P3", 100).status == "refunded"
    assert sim.counts()["refunded"] == 2


def _payload(order_id: str, amount: int) -> str:
    return qr.build_mpm(account_gui="D156000000000", merchant_id="898440154110001", mcc="4814",
                        amount_minor=amount, merchant_name="IOT", city="SZ", bill_number=order_id)


def test_merchant_presented_paid_refused_expired(world) -> None:  # type: ignore[no-untyped-def]
    sim, client, clock = world
    assert client.create_qr_order("Q1", 3018, "x", 120).status == "waiting"
    assert sim.phone_scan(_payload("Q1", 3018)) == "paid"
    assert client.query("Q1").status == "paid"
    client.create_qr_order("Q2", 3018, "x", 120)
    assert sim.phone_scan(_payload("Q2", 9999)) == "amount differs from the order"
    assert sim.phone_scan(_payload("Q2", 3018)[:-1] + "0").startswith("the phone cannot read")
    assert sim.phone_scan(_payload("Q2", 3018), pay=False) == "failed"
    client.create_qr_order("Q3", 100, "x", 120)
    clock.t += 121
    assert client.query("Q3").status == "expired"


def test_local_checks_and_unreachable() -> None:
    client = WalletClient("http://127.0.0.1:1", app_id="A1", app_secret=b"s" * 16, insecure_plaintext=True,
                          timeout_s=0.2)
    with pytest.raises(LocalProtocolError):
        client.micropay("bad id!", "1", 100, "x")
    with pytest.raises(LocalProtocolError):
        client.micropay("O1", "1", 0, "x")
    with pytest.raises(LinkError):
        client.micropay("O1", "134567890123456700", 100, "x")


def test_outcome_table_is_unique() -> None:
    assert len(set(OUTCOMES.values())) == len(OUTCOMES)


@pytest.mark.parametrize("answer, wanted", [
    ((200, b"<html>busy</html>", "text/html"), "without a JSON object; outcome unknown"),
    ((200, b'{"order": {"order_id": "OTHER", "status": "paid"}}', "application/json"), "another"),
    ((200, b'{"order": {"order_id": "G1", "status": "maybe"}}', "application/json"), "unknown order status"),
    ((200, b'{"order": {"order_id": "G1", "status": 7}}', "application/json"), "must be strings"),
    ((200, b'{"nothing": 1}', "application/json"), "'order' missing"),
])
def test_malformed_answers_are_remote_protocol_errors(world, monkeypatch, answer, wanted) -> None:  # type: ignore[no-untyped-def]
    sim, client, _ = world
    monkeypatch.setattr(sim, "handle", lambda *_a: answer)
    with pytest.raises(RemoteProtocolError, match=wanted):
        client.micropay("G1", "134567890123456789", 100, "x")
