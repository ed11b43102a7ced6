"""The strict simulated WeChat Pay platform, keeping (and able to replay) every answer, for the cancel tests; the
signature check of an answer by wechatpy, the independent oracle; a client served by a platform for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wechatpy.pay.utils import calculate_signature_hmac

from drivers import wechatpay_codec as codec
from drivers.wechatpay import WeChatPayClient
from sim.backends.wallet import WalletSim
from sim.backends.wechatpay import WeChatPaySim


class Replaying(WeChatPaySim):
    """The strict platform, keeping every answer by API path; ``replay[path]`` answers that path instead."""

    def __init__(self, engine: WalletSim) -> None:
        super().__init__(engine)
        self.answers: dict[str, list[bytes]] = {}
        self.replay: dict[str, bytes] = {}

    def handle(self, method: str, path: str, body: bytes, terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        if path in self.replay:
            self.calls.append(path)
            return 200, self.replay[path], "text/xml"
        status, answer, ctype = super().handle(method, path, body, terminal_id, client_cert)
        self.answers.setdefault(path, []).append(answer)
        return status, answer, ctype


def genuine(sim: WeChatPaySim, raw: bytes) -> dict[str, str]:
    """The answer's fields, after wechatpy (the oracle) agrees the platform signed them."""
    fields = codec.decode(raw)
    assert calculate_signature_hmac({k: v for k, v in fields.items() if k != "sign"},
                                    sim.api_key.decode()) == fields["sign"]
    return fields


@contextmanager
def client_of(sim: WeChatPaySim, timeout_s: float = 3.0) -> Iterator[WeChatPayClient]:
    """A client of ``sim`` over HTTPS (merchant certificate on /secapi/), the platform stopped afterwards."""
    url = sim.start()
    try:
        yield WeChatPayClient(url, **sim.client_options(), timeout_s=timeout_s)
    finally:
        sim.stop()
