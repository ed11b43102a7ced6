"""A wallet cancel is believed only for the order it was asked about (security review, issue item 1).

Through the strict simulated platforms over HTTPS: a genuinely signed cancel answer captured for order A (checked
with the third-party SDKs as independent oracles) is replayed for order B, which the customer has paid. The
terminal must not take B for reversed: the customer's money would be gone and no top-up applied.
"""

from __future__ import annotations

import json

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import serialization

from drivers import wechatpay_codec as codec
from drivers.alipay import AlipayClient
from pos_errors import LinkError, RemoteProtocolError
from sim.backends.alipay import AlipaySim
from sim.backends.wallet import WalletSim
from tests.wallet.replaying import genuine


def test_a_reverse_answer_replayed_for_a_paid_order_is_not_believed(wechat) -> None:
    sim, engine, client = wechat
    unpaid = client.micropay("T1REVA", engine.make_code("wechat", "user_paying_forever"), 1004, "x")
    assert unpaid.status == "user_paying"
    assert client.cancel("T1REVA").status == "cancelled"  # the real reverse of A: confirmed REVOKED
    captured = sim.answers["/secapi/pay/reverse"][-1]
    fields = genuine(sim, captured)
    assert fields["result_code"] == "SUCCESS" and "out_trade_no" not in fields  # names no order (API v2)
    assert client.micropay("T1REVB", engine.make_code("wechat"), 3000, "x").status == "paid"
    sim.replay["/secapi/pay/reverse"] = captured
    sim.calls.clear()
    with pytest.raises(LinkError, match="orderquery says paid"):
        client.cancel("T1REVB")
    assert sim.calls == ["/pay/orderquery", "/secapi/pay/reverse", "/pay/orderquery"]
    assert engine.orders["T1REVB"].status == "paid"  # the money is still taken: the flow keeps the cancel pending


def test_a_reverse_is_believed_when_the_order_query_shows_it_revoked(wechat) -> None:
    sim, engine, client = wechat
    assert client.micropay("T1REVC", engine.make_code("wechat"), 1004, "x").status == "paid"
    sim.calls.clear()
    result = client.cancel("T1REVC")
    assert (result.status, result.transaction_id) == ("refunded", client.query("T1REVC").transaction_id)
    assert sim.calls[:3] == ["/pay/orderquery", "/secapi/pay/reverse", "/pay/orderquery"]
    state = codec.decode(sim.answers["/pay/orderquery"][-1])
    assert state["trade_state"] == "REVOKED" and state["out_trade_no"] == "T1REVC"  # as the platform says it
    never_seen = client.cancel("T1REVNEVER")  # the platform never had it: ORDERNOTEXIST, confirmed by the query
    assert (never_seen.status, never_seen.reason) == ("cancelled", "not_found")


def test_a_closeorder_answer_replayed_for_an_open_native_order_is_not_believed(wechat) -> None:
    sim, _engine, client = wechat
    assert client.create_qr_order("T1NATA", 1004, "x", 120).status == "waiting"
    assert client.cancel("T1NATA").status == "cancelled"
    assert codec.decode(sim.answers["/pay/orderquery"][-1])["trade_state"] == "CLOSED"
    captured = sim.answers["/pay/closeorder"][-1]
    assert "out_trade_no" not in genuine(sim, captured)
    assert client.create_qr_order("T1NATB", 2000, "x", 120).status == "waiting"
    sim.replay["/pay/closeorder"] = captured
    with pytest.raises(LinkError, match="not undone"):
        client.cancel("T1NATB")  # B could still be paid: the cancel must stay pending
    assert client.query("T1NATB").status == "waiting"


# --- Alipay ------------------------------------------------------------------------------------------------


class AlipayReplaying(AlipaySim):
    def __init__(self, engine: WalletSim) -> None:
        super().__init__(engine)
        self.answers: list[bytes] = []
        self.replay: bytes | None = None

    def handle(self, method: str, path: str, body: bytes, terminal_id: str) -> tuple[int, bytes, str]:
        if self.replay is not None:
            return 200, self.replay, "application/json"
        status, answer, ctype = super().handle(method, path, body, terminal_id)
        self.answers.append(answer)
        return status, answer, ctype


def _pem(key, private: bool) -> str:  # type: ignore[no-untyped-def]
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_an_alipay_cancel_answer_for_another_order_is_not_believed() -> None:
    engine = WalletSim(user_paying_s=0.2)
    sim = AlipayReplaying(engine)
    client = AlipayClient(sim.start(), **sim.client_options(), timeout_s=3.0)
    try:
        assert client.micropay("T1ALIA", engine.make_code("alipay"), 1004, "x").status == "paid"
        assert client.cancel("T1ALIA").status == "refunded"
        captured = sim.answers[-1]
        sdk = AliPay(appid=sim.app_id, app_private_key_string=_pem(sim.app_key, True),
                     alipay_public_key_string=_pem(sim.platform_key.public_key(), False))
        answer = sdk._verify_and_return_sync_response(captured.decode(), "alipay_trade_cancel_response")
        assert (answer["out_trade_no"], answer["action"], answer["retry_flag"]) == ("T1ALIA", "refund", "N")
        assert client.micropay("T1ALIB", engine.make_code("alipay"), 3000, "x").status == "paid"
        sim.replay = captured
        with pytest.raises(RemoteProtocolError, match="about another"):
            client.cancel("T1ALIB")
        sim.replay = None
        assert engine.orders["T1ALIB"].status == "paid" and client.query("T1ALIB").status == "paid"
        assert json.loads(captured)["alipay_trade_cancel_response"]["trade_no"]  # returned on close / refund
    finally:
        sim.stop()
