"""Alipay (RSA2): python-alipay-sdk as an independent oracle both ways, the strict simulated gateway over HTTPS,
and answers that must never be believed or crash the client."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import alipay_sign
from drivers.alipay import AlipayClient, fen
from pos_errors import LinkError, LinkTimeout, RemoteProtocolError
from sim.backends.alipay import AlipaySim
from sim.backends.wallet import WalletSim


def _pem_private(key) -> str:  # type: ignore[no-untyped-def]
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_public(key) -> str:  # type: ignore[no-untyped-def]
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Recording(AlipaySim):
    def __init__(self, engine: WalletSim, **kw: object) -> None:
        super().__init__(engine, **kw)  # type: ignore[arg-type]
        self.bodies: list[bytes] = []
        self.answers: list[bytes] = []
        self.replace_answer: bytes | None = None

    def handle(self, method: str, path: str, body: bytes, terminal_id: str) -> tuple[int, bytes, str]:
        self.bodies.append(body)
        if self.replace_answer is not None:
            return 200, self.replace_answer, "application/json"
        status, answer, ctype = super().handle(method, path, body, terminal_id)
        self.answers.append(answer)
        return status, answer, ctype


@pytest.fixture(scope="module")
def gateway():
    engine = WalletSim(user_paying_s=0.2)
    sim = Recording(engine)
    url = sim.start()
    yield sim, engine, AlipayClient(url, **sim.client_options(), timeout_s=3.0)
    sim.stop()


@pytest.fixture(autouse=True)
def _clean(gateway):
    sim, _engine, _client = gateway
    sim.replace_answer, sim.refused[:] = None, []


def test_the_sdk_signs_the_terminals_request_to_the_same_bytes(gateway) -> None:
    sim, engine, client = gateway
    result = client.micropay("T1A1", engine.make_code("alipay"), 1004, "IoT SIM top-up 1 GB")
    assert result.status == "paid" and result.amount_minor == 1004
    sent = dict(parse_qsl(sim.bodies[-1].decode()))
    assert sent["sign_type"] == "RSA2" and sent["method"] == "alipay.trade.pay"
    biz = json.loads(sent["biz_content"])
    assert biz["scene"] == "bar_code" and biz["total_amount"] == "10.04" and biz["out_trade_no"] == "T1A1"
    # the SDK, holding the app's private key, signs the same parameters: PKCS#1 v1.5 is deterministic
    sdk = AliPay(appid=sim.app_id, app_private_key_string=_pem_private(sim.app_key),
                 alipay_public_key_string=_pem_public(sim.platform_key.public_key()))
    signed = dict(parse_qsl(sdk.sign_data({k: v for k, v in sent.items() if k != "sign"})))
    assert signed["sign"] == sent["sign"]


def test_the_sdk_accepts_the_gateways_signed_answer(gateway) -> None:
    sim, engine, client = gateway
    client.micropay("T1A2", engine.make_code("alipay"), 1004, "x")
    sdk = AliPay(appid=sim.app_id, app_private_key_string=_pem_private(sim.app_key),
                 alipay_public_key_string=_pem_public(sim.platform_key.public_key()))
    answer = sdk._verify_and_return_sync_response(sim.answers[-1].decode(), "alipay_trade_pay_response")
    assert answer["code"] == "10000" and answer["out_trade_no"] == "T1A2"


def test_the_terminal_accepts_an_answer_signed_by_the_sdk(gateway) -> None:
    sim, _engine, client = gateway
    platform = AliPay(appid=sim.app_id, app_private_key_string=_pem_private(sim.platform_key),
                      alipay_public_key_string=_pem_public(sim.platform_key.public_key()))
    text = json.dumps({"code": "10000", "msg": "Success", "out_trade_no": "T1A3", "trade_no": "2026120322001",
                       "trade_status": "TRADE_SUCCESS", "total_amount": "10.04"}, separators=(",", ":"))
    sim.replace_answer = ('{"alipay_trade_query_response":' + text + ',"sign":"' + platform._sign(text) + '"}').encode()
    result = client.query("T1A3")
    assert (result.status, result.transaction_id, result.amount_minor) == ("paid", "2026120322001", 1004)
    sim.replace_answer = sim.replace_answer.replace(b"10.04", b"10.05")
    with pytest.raises(RemoteProtocolError, match="signature"):
        client.query("T1A3")


def _request(sim: AlipaySim, **change: str) -> bytes:
    from urllib.parse import urlencode
    params = {"app_id": sim.app_id, "method": "alipay.trade.query", "format": "JSON", "charset": "utf-8",
              "sign_type": "RSA2", "timestamp": change.pop("timestamp", ""), "version": "1.0",
              "biz_content": '{"out_trade_no":"T1Q"}'}
    if not params["timestamp"]:
        import datetime as dt
        params["timestamp"] = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    params["sign"] = alipay_sign.sign(params, sim.app_key)
    params.update(change)
    return urlencode({k: v for k, v in params.items() if v != "<drop>"}).encode()


@pytest.mark.parametrize(("change", "sub_code"), [
    ({"sign": "<drop>"}, "isv.missing-signature"),
    ({"sign": "AAAA"}, "isv.invalid-signature"),
    ({"biz_content": '{"out_trade_no":"T1OTHER"}'}, "isv.invalid-signature"),
    ({"app_id": "2021000000009999"}, "isv.invalid-app-id"),
    ({"sign_type": "RSA"}, "isv.invalid-signature-type"),
    ({"timestamp": "2026-01-01 00:00:00"}, "isv.invalid-timestamp"),
])
def test_the_gateway_refuses_what_alipay_refuses_unsigned(gateway, change, sub_code) -> None:
    sim, _engine, _client = gateway
    before = len(sim.calls)
    status, body, _ = sim.handle("POST", "/gateway.do", _request(sim, **change), "")
    answer = json.loads(body)
    assert status == 200 and "sign" not in answer
    assert answer["alipay_trade_query_response"]["sub_code"] == sub_code
    assert sim.refused == [sub_code] and len(sim.calls) == before


def test_a_client_ten_minutes_off_is_refused_and_does_not_believe_the_unsigned_refusal(gateway) -> None:
    import time
    sim, engine, _client = gateway
    late = AlipayClient(sim.base_url, **sim.client_options(), timeout_s=3.0, clock=lambda: time.time() - 600)
    with pytest.raises(LinkError, match="invalid-timestamp"):
        late.query("T1LATE")
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):
        late.micropay("T1LATE", engine.make_code("alipay"), 1004, "x")
    assert "T1LATE" not in engine.orders


def test_10003_then_paid_and_20000_unknown(gateway) -> None:
    sim, engine, client = gateway
    assert client.micropay("T1W", engine.make_code("alipay", "user_paying_then_paid"), 1004, "x").status == \
        "user_paying"
    text = '{"code":"20000","msg":"Service Currently Unavailable","sub_code":"aop.ACQ.SYSTEM_ERROR"}'
    sim.replace_answer = ('{"alipay_trade_pay_response":' + text + ',"sign":"'
                          + alipay_sign.sign_text(text, sim.platform_key) + '"}').encode()
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        client.micropay("T1U", engine.make_code("alipay"), 1004, "x")


@pytest.mark.parametrize("raw", [
    b'{"alipay_trade_query_response":' + b"[" * 5000 + b"]" * 5000 + b',"sign":"x"}',
    b'{"alipay_trade_query_response":{"code":"10000","total_amount":' + b"9" * 5000 + b'},"sign":"x"}',
    b'{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{},"sign":"x"}',
    b'{"alipay_trade_query_response":"10000","sign":"x"}',
    b'{"alipay_trade_query_response":{"code":"10000"},"sign":7}',
    b"<html>gateway</html>",
    b"\xff\xfe",
    b"[]",
])
def test_malformed_answers_are_a_wrong_answer_naming_alipay(gateway, raw: bytes) -> None:
    sim, _engine, client = gateway
    sim.replace_answer = raw
    with pytest.raises(RemoteProtocolError, match="Alipay"):
        client.query("T1BAD")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_signed_span_on_random_text_raises_only_our_error(text: str) -> None:
    try:
        alipay_sign.signed_span(('{"k_response":' + text + "}").encode(), "k_response")
    except RemoteProtocolError:
        pass


@pytest.mark.parametrize(("text", "minor"), [("10.04", 1004), ("10", 1000), ("0.5", 50), ("123.40", 12340)])
def test_yuan_to_fen(text: str, minor: int) -> None:
    assert fen(text, "total_amount") == minor


@pytest.mark.parametrize("bad", [10.04, "10.041", "-1", "1e3", "", None, "１０"])
def test_amounts_of_the_wrong_shape_are_refused(bad: object) -> None:
    with pytest.raises(RemoteProtocolError, match="total_amount"):
        fen(bad, "total_amount")


@pytest.mark.parametrize("code", ['10000', '"1000"', '"99999"', "null"])
def test_a_signed_answer_with_a_code_of_the_wrong_type_is_outcome_unknown(gateway, code: str) -> None:
    sim, engine, client = gateway
    text = '{"code":' + code + ',"msg":"Success","out_trade_no":"T1TYPE"}'
    sim.replace_answer = ('{"alipay_trade_pay_response":' + text + ',"sign":"'
                          + alipay_sign.sign_text(text, sim.platform_key) + '"}').encode()
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):
        client.micropay("T1TYPE", engine.make_code("alipay"), 1004, "x")
