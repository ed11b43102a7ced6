"""WeChat Pay API v2: the published signature example, wechatpy as an independent oracle both ways, the strict
simulated platform over HTTPS, and answers that must never be believed or crash the client."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.pay.utils import calculate_signature_hmac, dict_to_xml

from drivers import wechatpay_codec as codec
from drivers.wechatpay import WeChatPayClient
from pos_errors import LinkError, LinkTimeout, RemoteProtocolError
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import WeChatPaySim

KEY = b"192006250b4c09247ec02edce69f6a2d"  # the platform's published example key


def test_published_example_sign_byte_for_byte() -> None:
    params = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
              "nonce_str": "ibuaiVcKdpRxkhJA"}
    assert codec.sign_string(params, KEY) == (b"appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100"
                                              b"&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d")
    assert codec.sign(params, KEY) == "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    assert calculate_signature_hmac(params, KEY.decode()) == codec.sign(params, KEY)  # the oracle agrees


class Recording(WeChatPaySim):
    """The strict platform, keeping every raw request body (to hand to the oracle)."""

    def __init__(self, engine: WalletSim, **kw: object) -> None:
        super().__init__(engine, **kw)  # type: ignore[arg-type]
        self.bodies: list[bytes] = []
        self.replace_answer: bytes | None = None

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        self.bodies.append(body)
        if self.replace_answer is not None:
            return 200, self.replace_answer, "text/xml"
        return super().handle(method, path, body, terminal_id, client_cert)


@pytest.fixture
def platform():
    engine = WalletSim(user_paying_s=0.2)
    sim = Recording(engine)
    url = sim.start()
    yield sim, engine, WeChatPayClient(url, **sim.client_options(), timeout_s=3.0)
    sim.stop()


def test_wechatpy_verifies_the_terminals_signed_request(platform) -> None:
    sim, engine, client = platform
    result = client.micropay("T1ORDER1", engine.make_code("wechat"), 1004, "IoT SIM top-up")
    assert result.status == "paid" and result.amount_minor == 1004 and result.currency == "CNY"
    request = codec.decode(sim.bodies[-1])
    unsigned = {k: v for k, v in request.items() if k != "sign"}
    assert request["sign_type"] == "HMAC-SHA256" and len(request["nonce_str"]) == 32
    assert calculate_signature_hmac(unsigned, sim.api_key.decode()) == request["sign"]
    assert request["total_fee"] == "1004" and request["out_trade_no"] == "T1ORDER1"


def test_the_terminal_accepts_an_answer_signed_by_wechatpy(platform) -> None:
    sim, _engine, client = platform
    answer = {"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": sim.appid, "mch_id": sim.mch_id,
              "nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "trade_type": "MICROPAY", "trade_state": "SUCCESS",
              "out_trade_no": "T1ORDER2", "transaction_id": "4200000031202612031234567890", "total_fee": "1004",
              "fee_type": "CNY"}
    answer["sign_type"] = "HMAC-SHA256"
    sim.replace_answer = dict_to_xml(answer, calculate_signature_hmac(answer, sim.api_key.decode())).encode()
    result = client.query("T1ORDER2")
    assert (result.status, result.transaction_id, result.amount_minor) == ("paid", answer["transaction_id"], 1004)
    sim.replace_answer = sim.replace_answer.replace(b"1004", b"1005")  # one changed digit: the sign fails
    with pytest.raises(RemoteProtocolError, match="signature"):
        client.query("T1ORDER2")


def test_an_answer_for_another_merchant_is_refused(platform) -> None:
    sim, _engine, client = platform
    answer = {"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": sim.appid, "mch_id": "1900000999",
              "nonce_str": "n1", "trade_state": "SUCCESS", "out_trade_no": "T1ORDER3", "transaction_id": "42001",
              "total_fee": "1004"}
    sim.replace_answer = dict_to_xml(answer, codec.sign(answer, sim.api_key)).encode()
    with pytest.raises(RemoteProtocolError, match="another merchant"):
        client.query("T1ORDER3")


@pytest.mark.parametrize(("change", "code"), [
    (lambda r: r.pop("sign"), "unsigned"),
    (lambda r: r.update(sign="0" * 64), "bad_signature"),
    (lambda r: r.update(sign_type="MD5"), "sign_type"),
    (lambda r: r.update(mch_id="1900000999"), "appid"),
])
def test_the_platform_refuses_what_the_real_one_refuses_and_changes_nothing(platform, change, code) -> None:
    sim, engine, client = platform
    request = {"appid": sim.appid, "mch_id": sim.mch_id, "nonce_str": "abc123abc123abc1", "sign_type": "HMAC-SHA256",
               "out_trade_no": "T1X", "total_fee": "1004", "auth_code": engine.make_code("wechat"), "body": "x",
               "spbill_create_ip": "127.0.0.1"}
    request["sign"] = codec.sign(request, sim.api_key)
    change(request)
    status, body, _ = sim.handle("POST", "/pay/micropay", codec.encode(request), "")
    answer = codec.decode(body)
    assert status == 200 and answer["return_code"] == "FAIL" and "sign" not in answer
    assert sim.refused == [code] and engine.orders == {}


def test_a_replayed_nonce_is_refused_and_the_client_does_not_believe_the_unsigned_refusal(platform) -> None:
    sim, engine, _client = platform
    fixed = WeChatPayClient(sim.base_url, **sim.client_options(), timeout_s=3.0, nonce=lambda: "SAMENONCE0123456")
    assert fixed.query("T1NONE").status == "not_found"
    with pytest.raises(LinkError, match="refused"):
        fixed.query("T1NONE")
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):  # a write: the refusal is unsigned
        fixed.micropay("T1NEW", engine.make_code("wechat"), 1004, "x")
    assert sim.refused == ["replayed_nonce", "replayed_nonce"] and "T1NEW" not in engine.orders


def test_user_paying_then_paid_and_reverse_of_a_paid_order(platform) -> None:
    _sim, engine, client = platform
    first = client.micropay("T1UP", engine.make_code("wechat", "user_paying_then_paid"), 1004, "x")
    assert first.status == "user_paying"
    engine._clock = lambda: 1e12  # the customer confirmed long ago
    assert client.query("T1UP").status == "paid"
    assert client.cancel("T1UP").status == "refunded" and engine.orders["T1UP"].status == "refunded"


def test_systemerror_is_outcome_unknown(platform) -> None:
    sim, _engine, client = platform
    answer = {"return_code": "SUCCESS", "result_code": "FAIL", "err_code": "SYSTEMERROR", "appid": sim.appid,
              "mch_id": sim.mch_id, "nonce_str": "n2"}
    sim.replace_answer = dict_to_xml(answer, codec.sign(answer, sim.api_key)).encode()
    with pytest.raises(LinkTimeout, match="outcome unknown"):
        client.micropay("T1SE", "134567890123456789", 1004, "x")


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<xml><return_code>&lol2;</return_code></xml>")


@pytest.mark.parametrize("raw", [
    BOMB,
    b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><a>1</a></xml>',
    b"<xml><a>1</a><a>2</a></xml>",
    b"<xml><a><b>1</b></a></xml>",
    b"<html><a>1</a></html>",
    b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>",
    b"<xml><a>" + b"9" * 70000 + b"</a></xml>",
    b'<xml><a x="1">1</a></xml>',
    b"not xml at all",
    b"\xff\xfe<\x00x\x00",
])
def test_malformed_answers_are_a_wrong_answer_naming_wechat_pay(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="WeChat Pay"):
        codec.decode(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decoding_random_bytes_raises_only_our_error(raw: bytes) -> None:
    try:
        codec.decode(b"<xml>" + raw + b"</xml>")
    except RemoteProtocolError:
        pass


def test_an_entity_answer_on_the_wire_is_outcome_unknown_never_a_crash(platform) -> None:
    sim, engine, client = platform
    sim.replace_answer = BOMB
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):
        client.micropay("T1BOMB", engine.make_code("wechat"), 1004, "x")


def test_reverse_and_refund_need_the_merchant_api_certificate(platform) -> None:
    sim, engine, client = platform
    assert client.micropay("T1CERT", engine.make_code("wechat"), 1004, "x").status == "paid"
    options = {**sim.client_options(), "client_cert": None}
    no_cert = WeChatPayClient(sim.base_url, **options, timeout_s=3.0)
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):
        no_cert.cancel("T1CERT")
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):
        no_cert.refund("T1CERT", 1004)
    assert sim.refused == ["no_client_cert", "no_client_cert"] and engine.orders["T1CERT"].status == "paid"
    assert client.cancel("T1CERT").status == "refunded"  # with the certificate


@pytest.mark.parametrize("result_code", ["", "OK", "success"])
def test_a_signed_answer_without_a_known_result_code_is_outcome_unknown(platform, result_code: str) -> None:
    sim, _engine, client = platform
    answer = {"return_code": "SUCCESS", "result_code": result_code, "appid": sim.appid, "mch_id": sim.mch_id,
              "nonce_str": "n3"}
    sim.replace_answer = dict_to_xml(answer, codec.sign(answer, sim.api_key)).encode()
    with pytest.raises(RemoteProtocolError, match="outcome unknown"):
        client.micropay("T1RC", "134567890123456789", 1004, "x")


def test_a_micropay_without_a_required_parameter_is_refused(platform) -> None:
    sim, engine, _client = platform
    request = {"appid": sim.appid, "mch_id": sim.mch_id, "nonce_str": "abc123abc123abc9", "sign_type": "HMAC-SHA256",
               "out_trade_no": "T1P", "total_fee": "1004", "auth_code": engine.make_code("wechat"), "body": "x"}
    request["sign"] = codec.sign(request, sim.api_key)  # correctly signed, but spbill_create_ip is missing
    answer = codec.decode(sim.handle("POST", "/pay/micropay", codec.encode(request), "")[1])
    assert answer["return_code"] == "FAIL" and "spbill_create_ip" in answer["return_msg"]
    assert sim.refused == ["param"] and engine.orders == {}
