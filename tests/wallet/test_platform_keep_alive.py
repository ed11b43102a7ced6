"""WeChat Pay and Alipay adapters on one kept HTTPS connection per platform (``drivers.platform_http``), through
the strict simulated platforms with a short idle timeout: a sale's requests and the next sale reuse it; an idle
close is met with a new connection before sending; a close that meets the request as it goes out sends it once
more on a new connection, signed afresh — and the third-party SDKs (wechatpy, python-alipay-sdk) still accept
what was sent, first attempt and resend alike."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from wechatpy.pay.utils import calculate_signature_hmac

from drivers import wechatpay_codec as codec
from drivers.alipay import AlipayClient
from drivers.wechatpay import WeChatPayClient
from pos_errors import ConfigError, LinkTimeout
from sim.backends.alipay import AlipaySim
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import WeChatPaySim


class WeChat(WeChatPaySim):
    """Keeps every raw request body; ``drop_after_next`` loses the next answer after the platform acted."""

    def __init__(self, engine: WalletSim) -> None:
        super().__init__(engine)
        self.bodies: list[bytes] = []
        self.drop_after_next = False

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        self.bodies.append(body)
        answer = super().handle(method, path, body, terminal_id, client_cert)
        if self.drop_after_next:
            self.drop_after_next = False
            raise ConnectionAbortedError("the platform's worker died before answering")
        return answer


class Ali(AlipaySim):
    def __init__(self, engine: WalletSim) -> None:
        super().__init__(engine)
        self.bodies: list[bytes] = []

    def handle(self, method: str, path: str, body: bytes, terminal_id: str) -> tuple[int, bytes, str]:
        self.bodies.append(body)
        return super().handle(method, path, body, terminal_id)


@pytest.fixture
def engine() -> WalletSim:
    return WalletSim()


@pytest.fixture
def wechat(engine: WalletSim) -> Iterator[tuple[WeChat, WeChatPayClient]]:
    sim = WeChat(engine)
    url = sim.start()
    yield sim, WeChatPayClient(url, **sim.client_options(), timeout_s=3.0)
    sim.stop()


@pytest.fixture
def alipay(engine: WalletSim) -> Iterator[tuple[Ali, AlipayClient]]:
    sim = Ali(engine)
    url = sim.start()
    yield sim, AlipayClient(url, **sim.client_options(), timeout_s=3.0)
    sim.stop()


def wechatpy_accepts(sim: WeChat, body: bytes) -> dict[str, str]:
    request = codec.decode(body)
    assert calculate_signature_hmac({k: v for k, v in request.items() if k != "sign"},
                                    sim.api_key.decode()) == request["sign"]
    return request


def sdk_signature_of(sim: Ali, body: bytes) -> tuple[str, str]:
    sent = dict(parse_qsl(body.decode()))
    pem = sim.app_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public = sim.platform_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    sdk = AliPay(appid=sim.app_id, app_private_key_string=pem, alipay_public_key_string=public)
    return dict(parse_qsl(sdk.sign_data({k: v for k, v in sent.items() if k != "sign"})))["sign"], sent["sign"]


def test_wechat_sales_share_one_connection(wechat, engine: WalletSim) -> None:
    sim, client = wechat
    for n in range(3):
        assert client.micropay(f"KA{n}", engine.make_code("wechat"), 1000 + n, "top-up").status == "paid"
        assert client.query(f"KA{n}").status == "paid"
    assert sim.connections_accepted == 1, "0 new connections per sale after the first"
    assert all(wechatpy_accepts(sim, body) for body in sim.bodies)


def test_alipay_sales_share_one_connection(alipay, engine: WalletSim) -> None:
    sim, client = alipay
    for n in range(3):
        assert client.micropay(f"KB{n}", engine.make_code("alipay"), 1000 + n, "top-up").status == "paid"
        assert client.query(f"KB{n}").status == "paid"
    assert sim.connections_accepted == 1
    theirs, ours = sdk_signature_of(sim, sim.bodies[-1])
    assert theirs == ours


def test_idle_close_is_replaced_before_sending(wechat, engine: WalletSim) -> None:
    sim, client = wechat
    sim.idle.idle_timeout_s = 0.15
    assert client.micropay("KC1", engine.make_code("wechat"), 1000, "top-up").status == "paid"
    deadline = time.monotonic() + 5.0
    while sim.idle.idle_closes < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.02)
    assert client.query("KC1").status == "paid"
    assert (sim.idle.idle_closes, sim.idle.race_closes, sim.connections_accepted) == (1, 0, 2)


def test_wechat_payment_racing_the_close_is_resent_once_and_charged_once(wechat, engine: WalletSim) -> None:
    sim, client = wechat
    assert client.query("KD0").status == "not_found"  # the connection is now kept
    sim.idle.arm_race()  # the platform closes it as the micropay arrives, unread
    assert client.micropay("KD1", engine.make_code("wechat"), 1000, "top-up").status == "paid"
    assert sim.idle.race_closes == 1 and sim.connections_accepted == 2
    assert sim.calls.count("/pay/micropay") == 1, "the raced micropay was never read; the resend was"
    assert wechatpy_accepts(sim, sim.bodies[-1])["out_trade_no"] == "KD1"


def test_wechat_payment_acted_on_then_dropped_is_resent_with_a_new_nonce(wechat, engine: WalletSim) -> None:
    """The worst case on a reused socket: the platform charged, then the connection died before answering. The
    resend is signed under a fresh nonce_str (a replayed one is refused) and gets the paid order back."""
    sim, client = wechat
    assert client.query("KE0").status == "not_found"
    sim.drop_after_next = True
    result = client.micropay("KE1", engine.make_code("wechat"), 1000, "top-up")
    assert result.status == "paid" and result.amount_minor == 1000
    first, resent = (wechatpy_accepts(sim, body) for body in sim.bodies[-2:])
    assert first["out_trade_no"] == resent["out_trade_no"] == "KE1"
    assert first["nonce_str"] != resent["nonce_str"]
    assert sim.refused == []
    assert sim.calls.count("/pay/micropay") == 2, "both reached the platform: the second answered the first's order"
    assert engine.orders["KE1"].status == "paid" and engine.orders["KE1"].amount_minor == 1000


def test_alipay_query_racing_the_close_is_resent(alipay, engine: WalletSim) -> None:
    sim, client = alipay
    assert client.micropay("KF1", engine.make_code("alipay"), 1000, "top-up").status == "paid"
    sim.idle.arm_race()
    assert client.query("KF1").status == "paid"
    assert sim.idle.race_closes == 1 and sim.connections_accepted == 2
    theirs, ours = sdk_signature_of(sim, sim.bodies[-1])
    assert theirs == ours


def test_a_new_connection_dropped_without_answer_stays_outcome_unknown(engine: WalletSim) -> None:
    sim = WeChat(engine)
    url = sim.start()
    try:
        client = WeChatPayClient(url, **sim.client_options(), timeout_s=3.0, keep_alive_s=0.0)
        sim.drop_after_next = True
        with pytest.raises(LinkTimeout, match="outcome unknown"):
            client.micropay("KG1", engine.make_code("wechat"), 1000, "top-up")
        assert sim.connections_accepted == 1, "only a kept connection's close is sent again"
        assert client.query("KG1").status == "paid"  # the flow's next step: ask, then act on the answer
        assert sim.connections_accepted == 2, "keep_alive_s = 0: a connection per request"
    finally:
        sim.stop()


@pytest.mark.parametrize("bad", [-1.0, 3601.0])
def test_keep_alive_out_of_range_is_refused(engine: WalletSim, bad: float) -> None:
    sim = WeChat(engine)
    with pytest.raises(ConfigError, match="keep_alive_s"):
        WeChatPayClient("https://127.0.0.1:1", **sim.client_options(), keep_alive_s=bad)
