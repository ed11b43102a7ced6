"""WeChat Pay merchant API v2 client: ``flows.ports.WalletPort`` for 付款码支付 and Native (merchant QR) orders.

Calls (all ``POST`` of a signed ``<xml>`` body, ``drivers.wechatpay_codec``; every answer's ``sign`` verified with
the merchant API key, its ``appid`` / ``mch_id`` / ``out_trade_no`` checked before anything is believed):

===========  ==========================  =====================================================================
port call    API                         notes
===========  ==========================  =====================================================================
micropay     /pay/micropay               ``USERPAYING`` → ``user_paying`` (the flow polls); ``SYSTEMERROR`` /
                                         ``BANKERROR`` → LinkTimeout (outcome unknown: query, then reverse)
query        /pay/orderquery             ``ORDERNOTEXIST`` → ``not_found``
cancel       /secapi/pay/reverse         a micropay order (or one never seen): reversed, ``recall=Y`` retried;
             /pay/closeorder             a Native order not paid: closed; paid: refunded; either believed
                                         only when /pay/orderquery then says REVOKED / CLOSED / REFUND
refund       /secapi/pay/refund          then /pay/refundquery: ``SUCCESS`` / ``PROCESSING`` → ``refunded``
create_qr…   /pay/unifiedorder           ``trade_type=NATIVE``: the answer's ``code_url`` is the QR to show
===========  ==========================  =====================================================================

An answer whose ``return_code`` is ``FAIL`` is unsigned: for a write it is "outcome unknown" (an attacker could
forge it), for a read a LinkError. ``/secapi/`` calls use the merchant API certificate when one is configured.

Connections are kept (``drivers.platform_http``: one for the plain calls, one for ``/secapi/``). A request that
meets a kept connection closed by the platform as it goes out is sent once more on a new one, with a new
``nonce_str`` and signature — every call here may be: the queries change nothing; micropay and unifiedorder are
keyed by ``out_trade_no`` (WeChat Pay never charges one order twice: a repeat of a paid micropay answers its
result or ``ORDERPAID``, which is followed by a query; unifiedorder with the same parameters gives the same
order); reverse and closeorder are made to be repeated (``recall=Y``); a refund is keyed by ``out_refund_no``.

>>> WeChatPayClient("http://127.0.0.1:1", appid="wx1", mch_id="1", api_key=b"k" * 32, insecure_plaintext=True,
...                 timeout_s=0.5).query("O1")
Traceback (most recent call last):
...
pos_errors.LinkError: WeChat Pay 127.0.0.1:1 unreachable (not sent): [Errno 111] Connection refused
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping

from drivers import wechatpay_codec as codec
from drivers.platform_http import PlatformHttp, ServerError
from flows.ports import WalletOrderStatus, WalletResult
from pos_errors import ConfigError, LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError

__all__ = ["WeChatPayClient", "UNKNOWN_OUTCOME", "BEIJING"]

UNKNOWN_OUTCOME = frozenset({"SYSTEMERROR", "BANKERROR"})  # micropay: query, then reverse (付款码支付 最佳实践)
BEIJING = dt.timezone(dt.timedelta(hours=8))
log = logging.getLogger(__name__)
_PLATFORM = "WeChat Pay"
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # out_trade_no: at most 32 characters
_FEE = re.compile(r"[1-9][0-9]{0,11}")
_TRANSACTION_ID = re.compile(r"[A-Za-z0-9]{1,32}")  # 微信支付订单号: given once the customer paid
IN_AIR_S = 120.0  # a payment request that got no answer may still reach the platform this long after (TCP, proxies)
_FAILED: Mapping[str, str] = {"NOTENOUGH": "insufficient_balance", "AUTHCODEEXPIRE": "code_expired",
                              "AUTH_CODE_INVALID": "code_expired", "AUTH_CODE_ERROR": "code_expired"}
_STATES: Mapping[str, WalletOrderStatus] = {
    "SUCCESS": WalletOrderStatus.PAID, "USERPAYING": WalletOrderStatus.USER_PAYING,
    "PAYERROR": WalletOrderStatus.FAILED, "CLOSED": WalletOrderStatus.CANCELLED,
    "REVOKED": WalletOrderStatus.CANCELLED, "REFUND": WalletOrderStatus.REFUNDED}


class WeChatPayClient:
    """``WalletPort`` for WeChat Pay API v2 at ``url`` (``https://api.mch.weixin.qq.com`` in production)."""

    def __init__(self, url: str, *, appid: str, mch_id: str, api_key: bytes, ca_file: str = "",
                 insecure_plaintext: bool = False, timeout_s: float = 10.0,
                 client_cert: tuple[str, str] | None = None, terminal_id: str = "",
                 spbill_create_ip: str = "127.0.0.1", notify_url: str = "https://127.0.0.1/wechatpay/notify",
                 crash_point: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] | None = None, keep_alive_s: float = 20.0,
                 client_key_pem: bytes | None = None) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", appid or "") or not re.fullmatch(r"[0-9]{1,32}", mch_id or ""):
            raise ConfigError(f"wechatpay.appid / mch_id not set or malformed ({appid!r}, {mch_id!r})")
        if len(api_key) != 32:
            raise ConfigError("wechatpay API key must be the 32 characters set in the merchant platform")
        self.appid, self.mch_id, self._key = appid, mch_id, api_key
        self.terminal_id, self.spbill_create_ip, self.notify_url = terminal_id, spbill_create_ip, notify_url
        self._clock, self._nonce = clock, nonce or (lambda: secrets.token_hex(16))
        common = {"platform": _PLATFORM, "ca_file": ca_file, "insecure_plaintext": insecure_plaintext,
                  "timeout_s": timeout_s, "crash_point": crash_point, "keep_alive_s": keep_alive_s}
        self._http = PlatformHttp(url, **common)  # type: ignore[arg-type]
        self._secapi = PlatformHttp(url, client_cert=client_cert, client_key_pem=client_key_pem,  # key read once
                                    **common)  # type: ignore[arg-type]
        self._prefix = self._http.path.rstrip("/")
        self._unanswered: dict[str, float] = {}  # order id -> when (monotonic) its micropay went without an answer

    def __repr__(self) -> str:
        return f"WeChatPayClient({self._http.url!r}, appid={self.appid!r}, mch_id={self.mch_id!r})"

    # --- WalletPort ------------------------------------------------------------------------------------------

    def micropay(self, order_id: str, code: str, amount_minor: int, subject: str) -> WalletResult:
        _check(order_id, amount_minor)
        if not re.fullmatch(r"1[0-5][0-9]{16}", code):
            raise LocalProtocolError("a WeChat Pay payment code is 18 digits starting 10-15")
        fields = self._call("/pay/micropay", {"body": _cut(subject), "out_trade_no": order_id,
                                              "total_fee": str(amount_minor), "fee_type": "CNY",
                                              "spbill_create_ip": self.spbill_create_ip, "auth_code": code,
                                              "device_info": self.terminal_id}, write=True)
        if fields.get("result_code") == "SUCCESS":
            return self._paid(fields, order_id)
        err, text = fields.get("err_code", ""), fields.get("err_code_des", "")[:200]
        if err == "USERPAYING":
            return WalletResult(order_id, WalletOrderStatus.USER_PAYING, message=text, wallet="wechat")
        if err in UNKNOWN_OUTCOME:
            raise LinkTimeout(f"{_PLATFORM} micropay {err}: {text}; outcome unknown")
        if err == "ORDERPAID":
            return self.query(order_id)
        if err in ("ORDERREVERSED", "ORDERCLOSED"):
            return WalletResult(order_id, WalletOrderStatus.CANCELLED, err.lower(), text, "wechat")
        return WalletResult(order_id, WalletOrderStatus.FAILED, _FAILED.get(err, err.lower()), text, "wechat")

    def create_qr_order(self, order_id: str, amount_minor: int, subject: str, expires_s: int) -> WalletResult:
        _check(order_id, amount_minor)
        until = dt.datetime.fromtimestamp(self._clock() + max(expires_s, 60), BEIJING).strftime("%Y%m%d%H%M%S")
        fields = self._call("/pay/unifiedorder", {
            "body": _cut(subject), "out_trade_no": order_id, "total_fee": str(amount_minor), "fee_type": "CNY",
            "spbill_create_ip": self.spbill_create_ip, "notify_url": self.notify_url, "trade_type": "NATIVE",
            "product_id": order_id, "time_expire": until, "device_info": self.terminal_id}, write=True)
        if fields.get("result_code") != "SUCCESS":
            err = fields.get("err_code", "")
            if err in UNKNOWN_OUTCOME:
                raise LinkTimeout(f"{_PLATFORM} unifiedorder {err}; outcome unknown")
            return WalletResult(order_id, WalletOrderStatus.FAILED, err.lower(), fields.get("err_code_des", "")[:200],
                                "wechat")
        code_url = fields.get("code_url", "")
        if not code_url.startswith("weixin://") or len(code_url) > 512 or not code_url.isprintable():
            raise RemoteProtocolError(f"{_PLATFORM} unifiedorder: code_url missing or malformed", tag="code_url")
        return WalletResult(order_id, WalletOrderStatus.WAITING, wallet="wechat", amount_minor=amount_minor,
                            currency="CNY", qr_code=code_url)

    def query(self, order_id: str) -> WalletResult:
        return self._query(order_id)[0]

    def cancel(self, order_id: str) -> WalletResult:
        """Reverse a 付款码 order (paid or not; one the platform never saw ends ``not_found``: nothing charged),
        close or refund a Native one. Whether it was paid is asked first (twice when the first query fails: the
        answer to a reverse and the REVOKED after it do not say), so a paid order reversed ends ``refunded``."""
        _check(order_id)
        current, trade_type = self._state_before_undo(order_id)
        if current is not None and current.status in (WalletOrderStatus.CANCELLED, WalletOrderStatus.REFUNDED,
                                                       WalletOrderStatus.FAILED):
            return current
        if trade_type == "NATIVE" and current is not None:
            if current.status == WalletOrderStatus.PAID:
                return self.refund(order_id, current.amount_minor or 0)
            fields = self._call("/pay/closeorder", {"out_trade_no": order_id}, write=True)
            if fields.get("result_code") == "SUCCESS":
                return self._confirm_undone(order_id, "closeorder", paid=False)
            if fields.get("err_code") == "ORDERPAID":
                return self.refund(order_id, self.query(order_id).amount_minor or 0)
            raise LinkError(f"{_PLATFORM} closeorder {fields.get('err_code', '')}: {fields.get('err_code_des', '')}")
        for _ in range(3):  # 撤销订单: recall=Y means "call again"
            fields = self._call("/secapi/pay/reverse", {"out_trade_no": order_id}, write=True, secapi=True)
            if fields.get("result_code") == "SUCCESS":
                paid = current is not None and current.status == WalletOrderStatus.PAID
                return self._confirm_undone(order_id, "reverse", paid=paid, seen=_seen(current))
            if fields.get("err_code") == "ORDERNOTEXIST":  # never reached the platform: the query must agree
                return self._confirm_never_seen(order_id, seen=_seen(current))
            if fields.get("recall") != "Y":
                break
        raise LinkError(f"{_PLATFORM} reverse {fields.get('err_code', '')}: {fields.get('err_code_des', '')}")

    def refund(self, order_id: str, amount_minor: int) -> WalletResult:
        _check(order_id, amount_minor)
        total = self.query(order_id).amount_minor or amount_minor
        fields = self._call("/secapi/pay/refund", {"out_trade_no": order_id, "out_refund_no": f"R{order_id}",
                                                   "total_fee": str(total), "refund_fee": str(amount_minor),
                                                   "refund_fee_type": "CNY"}, write=True, secapi=True)
        if fields.get("result_code") != "SUCCESS":
            err = fields.get("err_code", "")
            if err in UNKNOWN_OUTCOME:
                raise LinkTimeout(f"{_PLATFORM} refund {err}; outcome unknown")
            return WalletResult(order_id, WalletOrderStatus.FAILED, err.lower(), fields.get("err_code_des", "")[:200],
                                "wechat")
        return self.refund_query(order_id)

    def refund_query(self, order_id: str) -> WalletResult:
        """``/pay/refundquery``: ``refunded`` when the refund succeeded or is being processed."""
        _check(order_id)
        fields = self._call("/pay/refundquery", {"out_trade_no": order_id}, write=False)
        if fields.get("result_code") != "SUCCESS":
            raise LinkError(f"{_PLATFORM} refundquery {fields.get('err_code', '')}")
        self._same_order(fields, order_id)
        status = fields.get("refund_status_0", "")
        if status in ("SUCCESS", "PROCESSING"):
            return WalletResult(order_id, WalletOrderStatus.REFUNDED, "", "", "wechat",
                                fields.get("refund_id_0", "")[:64])
        return WalletResult(order_id, WalletOrderStatus.FAILED, status.lower()[:32], "refund not done", "wechat")

    # --- helpers ---------------------------------------------------------------------------------------------

    def _state_before_undo(self, order_id: str) -> tuple[WalletResult | None, str]:
        """The order as the platform has it before a reverse (a read: asked once more when the first fails);
        (None, "") when neither answered — the reverse still goes (money first), paid or not then unknown."""
        for attempt in range(2):
            try:
                return self._query(order_id)
            except LinkError as exc:
                if attempt:
                    log.warning("%s orderquery %s before the reverse failed twice: %s", _PLATFORM, order_id, exc)
        return None, ""

    def _confirm_never_seen(self, order_id: str, *, seen: bool) -> WalletResult:
        """A reverse answered ``ORDERNOTEXIST``: believed only when the order query says so too (the answer names
        no order); then nothing was ever charged. Never believed when the query before the reverse saw the order,
        or while a micropay of it that got no answer may still arrive (``IN_AIR_S``): ORDERNOTEXIST answers name
        no order, so a replayed one would pass, and a late payment would be charged after a final "never seen".
        Anything else raises LinkError (the cancel stays pending and is tried again)."""
        self._believable_never_seen(order_id, "reverse", seen)
        after, _trade_type = self._query(order_id)
        if after.status != WalletOrderStatus.NOT_FOUND:
            raise LinkError(f"{_PLATFORM} reverse answered ORDERNOTEXIST but orderquery says {after.status}")
        return _never_seen(order_id)

    def _confirm_undone(self, order_id: str, api: str, *, paid: bool, seen: bool = False) -> WalletResult:
        """Believe a reverse / closeorder ``SUCCESS`` only once an order query shows the order undone.

        Those answers name no order (API v2: ``result_code`` and ``recall`` only), so a signed one captured for
        another order, or an earlier call, would pass for this one. The order query names it (``out_trade_no``
        checked) and ``REVOKED`` / ``CLOSED`` / ``REFUND`` are final states: a replayed query cannot show an order
        undone that never was. Anything else raises LinkError (the cancel stays pending and is tried again).
        """
        try:
            after, _trade_type = self._query(order_id)
        except LinkError as exc:
            raise LinkError(f"{_PLATFORM} {api} answered SUCCESS, not confirmed by orderquery: {exc}") from exc
        if after.status == WalletOrderStatus.REFUNDED or (after.status == WalletOrderStatus.CANCELLED and paid):
            return WalletResult(order_id, WalletOrderStatus.REFUNDED, "", after.message, "wechat",
                                after.transaction_id)
        if after.status == WalletOrderStatus.CANCELLED:
            return WalletResult(order_id, WalletOrderStatus.CANCELLED, "merchant_cancelled", after.message, "wechat")
        if after.status == WalletOrderStatus.NOT_FOUND and not paid:  # a reverse SUCCESS for an order never seen
            self._believable_never_seen(order_id, api, seen)
            return _never_seen(order_id)
        raise LinkError(f"{_PLATFORM} {api} answered SUCCESS but orderquery says {after.status}: "
                        "the order is not undone")

    def _believable_never_seen(self, order_id: str, api: str, seen: bool) -> None:
        sent = self._unanswered.get(order_id)
        if seen or (sent is not None and time.monotonic() - sent < IN_AIR_S):
            why = "the order query before it saw the order" if seen else "its unanswered payment may still arrive"
            raise LinkError(f"{_PLATFORM} {api}: 'order does not exist' not believed ({why}); the cancel stays pending")

    def _query(self, order_id: str) -> tuple[WalletResult, str]:
        _check(order_id)
        fields = self._call("/pay/orderquery", {"out_trade_no": order_id}, write=False)
        if fields.get("result_code") != "SUCCESS":
            if fields.get("err_code") == "ORDERNOTEXIST":
                return WalletResult(order_id, WalletOrderStatus.NOT_FOUND), ""
            raise LinkError(f"{_PLATFORM} orderquery {fields.get('err_code', '')}: {fields.get('err_code_des', '')}")
        state, trade_type = fields.get("trade_state", ""), fields.get("trade_type", "")
        if state == "SUCCESS":
            return self._paid(fields, order_id), trade_type
        self._same_order(fields, order_id)
        text = fields.get("trade_state_desc", "")[:200]
        if state == "NOTPAY":
            status = WalletOrderStatus.WAITING if trade_type == "NATIVE" else WalletOrderStatus.USER_PAYING
            return WalletResult(order_id, status, message=text, wallet="wechat"), trade_type
        if state not in _STATES:
            raise RemoteProtocolError(f"{_PLATFORM} orderquery: unknown trade_state {state!r:.40}", tag="trade_state")
        amount = _fee(fields) if fields.get("total_fee") else None
        status, transaction_id = _STATES[state], fields.get("transaction_id", "")
        if state == "REVOKED" and _TRANSACTION_ID.fullmatch(transaction_id):
            status = WalletOrderStatus.REFUNDED  # reversed after the customer paid (a transaction id): money back
        return WalletResult(order_id, status, "", text, "wechat", transaction_id[:64], amount), trade_type

    def _paid(self, fields: Mapping[str, str], order_id: str) -> WalletResult:
        """A paid answer as the platform states it; the flow compares amount and currency with the order."""
        self._same_order(fields, order_id)
        transaction_id = fields.get("transaction_id", "")
        if not _TRANSACTION_ID.fullmatch(transaction_id):
            raise RemoteProtocolError(f"{_PLATFORM}: paid without a transaction_id", tag="transaction_id")
        return WalletResult(order_id, WalletOrderStatus.PAID, wallet="wechat", transaction_id=transaction_id,
                            amount_minor=_fee(fields), currency=fields.get("fee_type") or "CNY")

    @staticmethod
    def _same_order(fields: Mapping[str, str], order_id: str) -> None:
        if fields.get("out_trade_no") != order_id:
            raise RemoteProtocolError(f"{_PLATFORM}: asked about order {order_id}, the answer is about another",
                                      tag="out_trade_no")

    def _call(self, api: str, params: Mapping[str, str], *, write: bool, secapi: bool = False) -> dict[str, str]:
        """Sign, send, decode, verify. Returns the answer's fields (``return_code`` SUCCESS, signed, ours)."""
        def signed() -> bytes:  # called again (a fresh nonce_str: the platform refuses a replayed one) for a resend
            request = {"appid": self.appid, "mch_id": self.mch_id, "nonce_str": self._nonce(),
                       "sign_type": "HMAC-SHA256", **{k: v for k, v in params.items() if v != ""}}
            request["sign"] = codec.sign(request, self._key)
            try:
                return codec.encode(request)
            except ValueError as exc:
                raise LocalProtocolError(str(exc)) from exc
        link = self._secapi if secapi else self._http
        tail = "; outcome unknown" if write else ""
        try:
            status, raw = link.post(signed, "text/xml; charset=utf-8", self._prefix + api)
        except LinkError as exc:  # LinkTimeout too
            if api == "/pay/micropay" and not isinstance(exc, ServerError):  # no answer: it may still arrive
                now = time.monotonic()  # forget the ones past their lifetime: the record stays small
                self._unanswered = {k: v for k, v in self._unanswered.items() if now - v < IN_AIR_S}
                self._unanswered[params["out_trade_no"]] = now
            raise
        if status != 200:
            raise (LinkTimeout if write else LinkError)(f"{link.where}: HTTP {status}{tail}")
        try:
            fields = codec.decode(raw)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{exc}{tail}", tag=exc.tag) from exc
        if fields.get("return_code") != "SUCCESS":
            message = f"{_PLATFORM} refused {api} ({fields.get('return_msg', '')[:100]!r}, unsigned)"
            if write:
                raise RemoteProtocolError(message + tail, tag="return_code")
            raise LinkError(message)
        if not codec.verify(fields, self._key):
            raise RemoteProtocolError(f"{_PLATFORM} answer to {api}: signature missing or wrong{tail}", tag="sign")
        if fields.get("appid") != self.appid or fields.get("mch_id") != self.mch_id:
            raise RemoteProtocolError(f"{_PLATFORM} answer to {api} is for another merchant{tail}", tag="mch_id")
        if fields.get("result_code") not in ("SUCCESS", "FAIL"):
            raise RemoteProtocolError(f"{_PLATFORM} answer to {api}: result_code missing or unknown{tail}",
                                      tag="result_code")
        return fields


def _seen(current: WalletResult | None) -> bool:
    return current is not None and current.status != WalletOrderStatus.NOT_FOUND


def _never_seen(order_id: str) -> WalletResult:
    """The order never reached the platform (its order query says ``ORDERNOTEXIST``): nothing was charged."""
    return WalletResult(order_id, WalletOrderStatus.CANCELLED, "not_found", "order never reached the platform",
                        "wechat")


def _fee(fields: Mapping[str, str]) -> int:
    value = fields.get("total_fee", "")
    if not _FEE.fullmatch(value):
        raise RemoteProtocolError(f"{_PLATFORM}: total_fee {value!r:.20} is not a positive number of fen",
                                  tag="total_fee")
    return int(value)


def _cut(text: str, limit: int = 128) -> str:
    """``body`` is at most 128 bytes of UTF-8."""
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", "ignore")


def _check(order_id: str, amount_minor: int | None = None) -> None:
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise LocalProtocolError(f"out_trade_no must be 1-32 of A-Z a-z 0-9 _ -, not {order_id!r}")
    if amount_minor is not None and (isinstance(amount_minor, bool) or not isinstance(amount_minor, int)
                                     or amount_minor <= 0):
        raise LocalProtocolError(f"amount must be a positive int of fen, not {amount_minor!r}")
