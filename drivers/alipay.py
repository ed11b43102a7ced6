"""Alipay open platform client (``alipay.trade.*``, RSA2): ``flows.ports.WalletPort`` for 当面付.

Every call is a ``POST`` of the signed public parameters (``app_id``, ``method``, ``format=JSON``,
``charset=utf-8``, ``sign_type=RSA2``, ``timestamp`` in Beijing time, ``version=1.0``, ``biz_content``) to the
gateway; every answer's ``sign`` is verified with the Alipay public key (``drivers.alipay_sign``) before
anything in it is believed.

===========  =======================  =========================================================================
port call    method                   notes
===========  =======================  =========================================================================
micropay     alipay.trade.pay         ``scene=bar_code``; ``10003`` → ``user_paying`` (the flow polls);
                                      ``20000`` → LinkTimeout (outcome unknown: query, then cancel)
query        alipay.trade.query       ``ACQ.TRADE_NOT_EXIST`` → ``not_found``
cancel       alipay.trade.cancel      ``action`` close → ``cancelled``, refund → ``refunded``; ``retry_flag=Y``
                                      retried; an answer naming another ``out_trade_no`` is not believed
refund       alipay.trade.refund      ``10000`` → ``refunded``
create_qr…   alipay.trade.precreate   the answer's ``qr_code`` is the QR to show
===========  =======================  =========================================================================

The connection is kept (``drivers.platform_http``). A request that meets it closed by the platform as it goes
out is sent once more on a new connection, signed again: every call here may be — queries change nothing;
trade.pay and precreate are keyed by ``out_trade_no`` (Alipay never charges one trade twice: the same
``out_trade_no`` with the same parameters answers the existing trade); cancel is made to be repeated
(``retry_flag``); a refund is keyed by its ``out_request_no`` (``R<order>``), refunded at most once.

>>> from cryptography.hazmat.primitives.asymmetric import rsa
>>> key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
>>> AlipayClient("http://127.0.0.1:1/gateway.do", app_id="2021000000000001", app_private_key=key,
...              alipay_public_key=key.public_key(), insecure_plaintext=True, timeout_s=0.5).query("O1")
Traceback (most recent call last):
...
pos_errors.LinkError: Alipay 127.0.0.1:1 unreachable (not sent): [Errno 111] Connection refused
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from drivers import alipay_sign
from drivers.platform_http import PlatformHttp
from flows.ports import WalletOrderStatus, WalletResult
from pos_errors import ConfigError, LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError

__all__ = ["AlipayClient", "yuan", "fen"]

_PLATFORM = "Alipay"
BEIJING = dt.timezone(dt.timedelta(hours=8))
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AMOUNT = re.compile(r"([0-9]{1,10})(?:\.([0-9]{1,2}))?")
_FAILED: Mapping[str, str] = {"ACQ.PAYMENT_AUTH_CODE_INVALID": "code_expired",
                              "ACQ.BUYER_BALANCE_NOT_ENOUGH": "insufficient_balance",
                              "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH": "insufficient_balance"}
_STATES: Mapping[str, WalletOrderStatus] = {
    "WAIT_BUYER_PAY": WalletOrderStatus.USER_PAYING, "TRADE_SUCCESS": WalletOrderStatus.PAID,
    "TRADE_FINISHED": WalletOrderStatus.PAID, "TRADE_CLOSED": WalletOrderStatus.CANCELLED}


def yuan(amount_minor: int) -> str:
    """An amount in fen as Alipay writes yuan.

    >>> yuan(1004)
    '10.04'
    """
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def fen(text: Any, tag: str) -> int:
    """An amount in yuan as Alipay writes it (``"10.04"``) in fen. Raises RemoteProtocolError."""
    match = _AMOUNT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise RemoteProtocolError(f"{_PLATFORM}: {tag} {text!r:.20} is not an amount in yuan", tag=tag)
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


class AlipayClient:
    """``WalletPort`` for the Alipay gateway at ``url`` (``https://openapi.alipay.com/gateway.do``)."""

    def __init__(self, url: str, *, app_id: str, app_private_key: rsa.RSAPrivateKey | alipay_sign.AppKey,
                 alipay_public_key: rsa.RSAPublicKey, ca_file: str = "", insecure_plaintext: bool = False,
                 timeout_s: float = 10.0, terminal_id: str = "", crash_point: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, keep_alive_s: float = 20.0) -> None:
        if not re.fullmatch(r"[0-9]{16}", app_id or ""):
            raise ConfigError(f"alipay.app_id must be the 16-digit APPID of the merchant's app, not {app_id!r}")
        self.app_id, self.terminal_id = app_id, terminal_id
        self._key, self._alipay_key, self._clock = app_private_key, alipay_public_key, clock
        self._http = PlatformHttp(url, platform=_PLATFORM, ca_file=ca_file, insecure_plaintext=insecure_plaintext,
                                  timeout_s=timeout_s, crash_point=crash_point, keep_alive_s=keep_alive_s)

    def __repr__(self) -> str:
        return f"AlipayClient({self._http.url!r}, app_id={self.app_id!r})"

    # --- WalletPort ------------------------------------------------------------------------------------------

    def micropay(self, order_id: str, code: str, amount_minor: int, subject: str) -> WalletResult:
        _check(order_id, amount_minor)
        if not re.fullmatch(r"(2[5-9]|30)[0-9]{14,22}", code):
            raise LocalProtocolError("an Alipay payment code is 16-24 digits starting 25-30")
        answer = self._call("alipay.trade.pay", {
            "out_trade_no": order_id, "scene": "bar_code", "auth_code": code, "product_code": "FACE_TO_FACE_PAYMENT",
            "subject": subject[:256], "total_amount": yuan(amount_minor), "terminal_id": self.terminal_id},
            write=True)
        code_, sub = answer.get("code"), str(answer.get("sub_code", ""))
        text = str(answer.get("sub_msg") or answer.get("msg") or "")[:200]
        if code_ == "10000":
            return self._paid(answer, order_id)
        if code_ == "10003":
            return WalletResult(order_id, WalletOrderStatus.USER_PAYING, message=text, wallet="alipay")
        if code_ == "20000" or sub == "ACQ.SYSTEM_ERROR":
            raise LinkTimeout(f"{_PLATFORM} trade.pay {code_} {sub}: {text}; outcome unknown")
        if sub == "ACQ.TRADE_HAS_SUCCESS":
            return self.query(order_id)
        if sub == "ACQ.TRADE_HAS_CLOSE":
            return WalletResult(order_id, WalletOrderStatus.CANCELLED, "trade_closed", text, "alipay")
        return WalletResult(order_id, WalletOrderStatus.FAILED, _FAILED.get(sub, sub.lower()[:64]), text, "alipay")

    def create_qr_order(self, order_id: str, amount_minor: int, subject: str, expires_s: int) -> WalletResult:
        _check(order_id, amount_minor)
        answer = self._call("alipay.trade.precreate", {
            "out_trade_no": order_id, "total_amount": yuan(amount_minor), "subject": subject[:256],
            "timeout_express": f"{max(1, expires_s // 60)}m", "terminal_id": self.terminal_id}, write=True)
        if answer.get("code") != "10000":
            if answer.get("code") == "20000":
                raise LinkTimeout(f"{_PLATFORM} trade.precreate 20000; outcome unknown")
            return WalletResult(order_id, WalletOrderStatus.FAILED, str(answer.get("sub_code", "")).lower()[:64],
                                str(answer.get("sub_msg", ""))[:200], "alipay")
        self._same_order(answer, order_id)
        qr_code = answer.get("qr_code")
        if not isinstance(qr_code, str) or not qr_code.startswith("https://") or len(qr_code) > 512 \
                or not qr_code.isprintable():
            raise RemoteProtocolError(f"{_PLATFORM} trade.precreate: qr_code missing or malformed", tag="qr_code")
        return WalletResult(order_id, WalletOrderStatus.WAITING, wallet="alipay", amount_minor=amount_minor,
                            currency="CNY", qr_code=qr_code)

    def query(self, order_id: str) -> WalletResult:
        _check(order_id)
        answer = self._call("alipay.trade.query", {"out_trade_no": order_id}, write=False)
        if answer.get("code") != "10000":
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return WalletResult(order_id, WalletOrderStatus.NOT_FOUND)
            raise LinkError(f"{_PLATFORM} trade.query {answer.get('code')} {answer.get('sub_code', '')}")
        state = answer.get("trade_status")
        if state in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return self._paid(answer, order_id)
        self._same_order(answer, order_id)
        if not isinstance(state, str) or state not in _STATES:
            raise RemoteProtocolError(f"{_PLATFORM} trade.query: unknown trade_status {state!r:.40}",
                                      tag="trade_status")
        return WalletResult(order_id, _STATES[state], "", "", "alipay")

    def cancel(self, order_id: str) -> WalletResult:
        """``alipay.trade.cancel``: closes an unpaid trade (one never seen too), refunds a paid one."""
        _check(order_id)
        answer: dict[str, Any] = {}
        for _ in range(3):
            answer = self._call("alipay.trade.cancel", {"out_trade_no": order_id}, write=True)
            if answer.get("code") == "10000" and answer.get("retry_flag") != "Y":
                self._same_order(answer, order_id)  # a signed cancel of another order (replayed) is not this one
                refunded = answer.get("action") == "refund"
                return WalletResult(order_id, WalletOrderStatus.REFUNDED if refunded else WalletOrderStatus.CANCELLED,
                                    "" if refunded else "merchant_cancelled", "", "alipay")
            if answer.get("retry_flag") != "Y":
                break
        raise LinkError(f"{_PLATFORM} trade.cancel {answer.get('code')} {answer.get('sub_code', '')}: "
                        f"{str(answer.get('sub_msg', ''))[:100]}")

    def refund(self, order_id: str, amount_minor: int) -> WalletResult:
        _check(order_id, amount_minor)
        answer = self._call("alipay.trade.refund", {"out_trade_no": order_id, "refund_amount": yuan(amount_minor),
                                                    "out_request_no": f"R{order_id}"}, write=True)
        if answer.get("code") == "10000":
            self._same_order(answer, order_id)
            return WalletResult(order_id, WalletOrderStatus.REFUNDED, "", "", "alipay",
                                str(answer.get("trade_no", ""))[:64])
        if answer.get("code") == "20000":
            raise LinkTimeout(f"{_PLATFORM} trade.refund 20000; outcome unknown")
        return WalletResult(order_id, WalletOrderStatus.FAILED, str(answer.get("sub_code", "")).lower()[:64],
                            str(answer.get("sub_msg", ""))[:200], "alipay")

    # --- helpers ---------------------------------------------------------------------------------------------

    def _paid(self, answer: Mapping[str, Any], order_id: str) -> WalletResult:
        self._same_order(answer, order_id)
        trade_no = answer.get("trade_no")
        if not isinstance(trade_no, str) or not re.fullmatch(r"[A-Za-z0-9]{1,64}", trade_no):
            raise RemoteProtocolError(f"{_PLATFORM}: paid without a trade_no", tag="trade_no")
        currency = answer.get("trans_currency") or "CNY"  # absent: the trade is in CNY
        return WalletResult(order_id, WalletOrderStatus.PAID, wallet="alipay", transaction_id=trade_no,
                            amount_minor=fen(answer.get("total_amount"), "total_amount"),
                            currency=currency if isinstance(currency, str) else "?")

    def _same_order(self, answer: Mapping[str, Any], order_id: str) -> None:
        if answer.get("out_trade_no") != order_id:
            raise RemoteProtocolError(f"{_PLATFORM}: asked about order {order_id}, the answer is about another",
                                      tag="out_trade_no")
        if "terminal_id" in answer and self.terminal_id and answer["terminal_id"] != self.terminal_id:
            raise RemoteProtocolError(f"{_PLATFORM}: the answer names another terminal", tag="terminal_id")

    def _call(self, method: str, biz: Mapping[str, str], *, write: bool) -> dict[str, Any]:
        """Sign, send, verify. Returns the ``<method>_response`` object of a signed answer."""
        def signed() -> bytes:  # called again (the current timestamp) for a resend on a new connection
            params = {"app_id": self.app_id, "method": method, "format": "JSON", "charset": "utf-8",
                      "sign_type": "RSA2", "version": "1.0",
                      "timestamp": dt.datetime.fromtimestamp(self._clock(), BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                      "biz_content": json.dumps({k: v for k, v in biz.items() if v != ""}, ensure_ascii=False,
                                                separators=(",", ":"))}
            app_key = self._key.get() if isinstance(self._key, alipay_sign.AppKey) else self._key  # on first use
            params["sign"] = alipay_sign.sign(params, app_key)
            return urlencode(params).encode("ascii")
        tail = "; outcome unknown" if write else ""
        status, raw = self._http.post(signed, "application/x-www-form-urlencoded;charset=utf-8")
        if status != 200:
            raise (LinkTimeout if write else LinkError)(f"{self._http.where}: HTTP {status}{tail}")
        key = method.replace(".", "_") + "_response"
        try:
            span = alipay_sign.signed_span(raw, key) or alipay_sign.signed_span(raw, "error_response")
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{exc}{tail}", tag=exc.tag) from exc
        if span is None:
            raise RemoteProtocolError(f"{_PLATFORM} answer to {method} has no {key}{tail}", tag=key)
        text, signature = span
        answer: dict[str, Any] = json.loads(text)
        if not signature and str(answer.get("code", "")).startswith("400") and answer.get("code") != "40004":
            message = f"{_PLATFORM} refused {method} ({answer.get('sub_code', answer.get('code'))}, unsigned)"
            if write:
                raise RemoteProtocolError(message + tail, tag="sign")
            raise LinkError(message)
        if not alipay_sign.verify(text, signature, self._alipay_key):
            raise RemoteProtocolError(f"{_PLATFORM} answer to {method}: signature missing or wrong{tail}", tag="sign")
        code = answer.get("code")
        if not isinstance(code, str) or code not in ("10000", "10003", "20000") and not code.startswith("400"):
            raise RemoteProtocolError(f"{_PLATFORM} answer to {method}: code {code!r:.12} unknown{tail}", tag="code")
        return answer


def _check(order_id: str, amount_minor: int | None = None) -> None:
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise LocalProtocolError(f"out_trade_no must be 1-64 of A-Z a-z 0-9 _ -, not {order_id!r}")
    if amount_minor is not None and (isinstance(amount_minor, bool) or not isinstance(amount_minor, int)
                                     or amount_minor <= 0):
        raise LocalProtocolError(f"amount must be a positive int of fen, not {amount_minor!r}")
