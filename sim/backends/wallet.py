"""Simulated wallet platform (WeChat Pay / Alipay / EMV QR acquirer) on loopback HTTPS/JSON, signed both ways.

The API is in ``docs/protocols/wallet-api.md``::

    POST /v1/micropay           {"order_id", "auth_code", "amount_minor", "subject"}  customer-presented code
    POST /v1/qr-orders          {"order_id", "amount_minor", "subject", "expires_s"}  terminal shows a QR
    GET  /v1/orders/{id}        200 {"order": ORDER}, 404 not_found
    POST /v1/orders/{id}/cancel an unpaid order is cancelled, a paid one refunded ("cancel or reverse")
    POST /v1/orders/{id}/refund {"amount_minor"}

ORDER is ``{"order_id", "status", "reason", "message", "wallet", "transaction_id", "amount_minor"}`` with status
``paid``, ``user_paying``, ``waiting``, ``failed``, ``cancelled``, ``refunded`` or ``expired``.

Every request must be signed and every answer is signed (``sim.backends.signed_api``: app id, timestamp within
±5 minutes, fresh nonce, HMAC-SHA256 over method, path, timestamp, nonce, app id and the body's SHA-256); an
unsigned, stale, wrongly signed or replayed request is refused with ``401`` before the platform acts. HTTPS with a
per-simulator test CA unless ``tls=False``. ``forge_paid_answers`` (tests) plays a man in the middle.

Outcomes are data: the **last two digits** of a customer's code (of the application PAN, tag 5A, for an EMV
consumer-presented code) choose what happens; any other ending pays at once.

======  ========================================================================================
ending  outcome
======  ========================================================================================
91      user paying (customer enters a password), then paid after ``user_paying_s`` (3 s)
92      user paying, then the customer cancels (``failed``, ``user_cancelled``) after 3 s
93      insufficient balance (``failed``, ``insufficient_balance``)
94      code expired (``failed``, ``code_expired``)
95      platform error: HTTP 503 ``platform_error``
96      no answer: the request hangs for ``hang_s`` (30 s), the client times out
97      user paying for ever: the terminal's merchant timeout cancels the order
98      paid at once, but for 1 fen: a "paid" for another amount (the terminal must not believe it)
======  ========================================================================================

A code is good for ``code_ttl_s`` (60 s) from ``make_code`` and for one payment only. An amount whose fen part
is ``.93`` is refused as insufficient balance on every channel. Merchant-presented orders are paid or refused
by ``phone_scan(payload, pay)`` (the order id is the QR's terminal label 62.07 + bill number 62.01) and expire
after their ``expires_s``.

>>> sim = WalletSim()
>>> sim.make_code("wechat", "paid")[:2] in {"10", "11", "12", "13", "14", "15"}
True
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from emv import qr, tlv
from flows.wallet_payment import flatten_cpm
from pos_errors import PosError
from sim.backends.carrier import _CarrierHandler, _json  # the same signed JSON-over-HTTP plumbing as the carrier
from sim.backends.loopback_http import LoopbackHttp
from sim.backends.signed_api import SignedApi, Unauthorized, forge_field

__all__ = ["WalletSim", "OUTCOMES", "WalletOrder", "DEFAULT_APP_ID"]

DEFAULT_APP_ID = "POSSIM-WALLET-0001"

OUTCOMES = {"paid": "00", "user_paying_then_paid": "91", "user_paying_then_cancelled": "92",
            "insufficient_balance": "93", "expired_code": "94", "platform_error": "95", "no_answer": "96",
            "user_paying_forever": "97", "paid_other_amount": "98"}
_PREFIX = {"wechat": "13", "alipay": "28"}
WECHAT_QR_PREFIX = "weixin://wxpay/bizpayurl?pr="
ALIPAY_QR_PREFIX = "https://qr.alipay.com/bax"
_LENGTH = {"wechat": 18, "alipay": 18}


@dataclass
class WalletOrder:
    order_id: str
    amount_minor: int
    status: str
    wallet: str = ""
    reason: str = ""
    message: str = ""
    transaction_id: str = ""
    kind: str = "micropay"
    due: float | None = None  # monotonic time a user_paying order settles
    settle_to: str = ""
    expires_at: float | None = None
    qr_token: str = ""  # a WeChat Pay / Alipay merchant-presented order: the token in its code_url / qr_code

    def to_json(self) -> dict[str, Any]:
        keys = ("order_id", "amount_minor", "status", "wallet", "reason", "message", "transaction_id")
        return {k: v for k, v in asdict(self).items() if k in keys}


class _Reply(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _ending(code: str) -> str:
    if code.isdigit():
        return code[-2:]
    try:
        pan = next((o.value for o in flatten_cpm(qr.parse_cpm(code)) if o.tag == 0x5A), b"")
    except PosError:
        return ""
    return pan.hex()[-2:]


def _wallet_of(code: str) -> str:
    if code.isdigit():
        return "wechat" if code[:2] in {"10", "11", "12", "13", "14", "15"} else "alipay"
    return "emvqr"


class WalletSim(SignedApi, LoopbackHttp):
    """Start with ``start()`` (returns the base URL); ``stop()``. Inspect ``orders``, ``counts()``, ``refused``.

    ``app_id``/``app_secret``: the one terminal application it knows (a fresh random secret unless given);
    ``tls``: serve HTTPS with a fresh test CA in ``workdir`` (a temporary directory unless given); ``wall_clock``:
    Unix seconds for the ±5 min check (``clock`` is the monotonic clock of the orders)."""

    handler_class = _CarrierHandler
    thread_name = "sim-wallet"

    def __init__(self, *, user_paying_s: float = 3.0, hang_s: float = 30.0, code_ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, seed: int = 1, app_id: str = DEFAULT_APP_ID,
                 app_secret: bytes | None = None, tls: bool = True, workdir: str | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._init_signing(app_id=app_id, app_secret=app_secret, tls=tls, workdir=workdir, clock=wall_clock,
                           name="wallet")
        self.user_paying_s, self.hang_s, self.code_ttl_s = user_paying_s, hang_s, code_ttl_s
        self._clock = clock
        self._random = random.Random(seed)
        self.orders: dict[str, WalletOrder] = {}
        self._issued: dict[str, float] = {}
        self._used: set[str] = set()
        self._receiving: set[str] = set()  # orders whose code payment arrived and is still being decided
        self._lock = threading.RLock()
        self._init_http()
        self.requests = 0
        self.last_shown_qr: str | None = None

    # --- what a person does ----------------------------------------------------------------------------------

    def make_code(self, wallet: str, outcome: str = "paid") -> str:
        """A fresh payment code as the customer's phone shows it (wechat, alipay or emvqr)."""
        ending = OUTCOMES[outcome]
        if wallet == "emvqr":
            pan = f"621234{self._random.randrange(10**8):08d}{ending}"
            app = tlv.Tlv.template(0x61, tlv.Tlv(0x4F, bytes.fromhex("A000000333010101")),
                                   tlv.Tlv(0x50, b"UnionPay"), tlv.Tlv(0x5A, bytes.fromhex(pan)),
                                   tlv.Tlv(0x9F36, self._random.randbytes(2)),
                                   tlv.Tlv(0x9F26, self._random.randbytes(8)))
            code = base64.b64encode(tlv.encode([tlv.Tlv(0x85, qr.CPM_VERSION), app])).decode()
        else:
            middle = _LENGTH[wallet] - 4
            code = f"{_PREFIX[wallet]}{self._random.randrange(10**middle):0{middle}d}{ending}"
        with self._lock:
            self._issued[code] = self._clock()
        return code

    def phone_scan(self, payload: str, pay: bool = True) -> str:
        """A customer scans the terminal's QR with a phone and pays (or refuses). Returns what happened."""
        token = _platform_token(payload)
        if token is not None:
            with self._lock:
                self._settle()
                order = next((o for o in self.orders.values() if o.qr_token and o.qr_token == token), None)
                return self._phone_pays(order, pay, order.wallet if order else "")
        try:
            mpm = qr.parse_mpm(payload)
        except PosError as exc:
            return f"the phone cannot read this QR: {exc}"
        with self._lock:
            self._settle()
            order = self.orders.get((mpm.terminal_label or "") + (mpm.bill_number or ""))
            if order is not None and mpm.amount_minor != order.amount_minor:
                return "amount differs from the order"
            return self._phone_pays(order, pay, "emvqr")

    def _phone_pays(self, order: WalletOrder | None, pay: bool, wallet: str) -> str:
        if order is None or order.kind != "qr":
            return "unknown order"
        if order.status != "waiting":
            return f"order is {order.status}"
        if pay:
            order.status, order.wallet, order.transaction_id = "paid", wallet, self._txn_id()
        else:
            order.status, order.reason, order.message = "failed", "user_cancelled", "customer refused"
        return order.status

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._settle()
            statuses = [o.status for o in self.orders.values()]
        return {s: statuses.count(s) for s in ("paid", "refunded", "cancelled", "failed", "expired", "waiting",
                                               "user_paying")}

    # --- routes ----------------------------------------------------------------------------------------------

    def forge_paid_answers(self, on: bool) -> None:
        """Play a man in the middle who rewrites every code payment answer to ``paid`` (the signature then fails)."""
        self.tamper = _forge_paid if on else None

    def stop(self) -> None:
        super().stop()
        self._stop_signing()

    def handle(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
        with self._lock:
            self.requests += 1
        parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
        try:
            try:
                self.authenticate(method, path, body, headers)
            except Unauthorized as exc:
                raise _Reply(exc.status, exc.error, exc.message) from exc
            if method == "POST" and parts == ["v1", "micropay"]:
                return self._micropay(_body(body))
            if method == "POST" and parts == ["v1", "qr-orders"]:
                return self._qr_order(_body(body))
            if len(parts) >= 3 and parts[:2] == ["v1", "orders"]:
                with self._lock:
                    self._settle()
                    order = self.orders.get(parts[2])
                    if order is None and method == "POST" and parts[3:] == ["cancel"]:
                        # cancelling an order that never arrived closes its id: a late request is refused
                        order = self.orders[parts[2]] = WalletOrder(parts[2], 0, "cancelled", reason="closed")
                    if order is None:
                        raise _Reply(404, "not_found", f"no order {parts[2]}")
                    if method == "GET" and len(parts) == 3:
                        return _json(200, {"order": order.to_json()})
                    if method == "POST" and parts[3:] == ["cancel"]:
                        return _json(200, {"order": self._cancel(order).to_json()})
                    if method == "POST" and parts[3:] == ["refund"]:
                        if order.status in ("paid", "refunded"):
                            order.status = "refunded"
                        return _json(200, {"order": order.to_json()})
            raise _Reply(404, "no_route", f"no route {method} {path}")
        except _Reply as reply:
            return _json(reply.status, {"error": reply.error, "message": reply.message})

    def _micropay(self, req: dict[str, Any]) -> tuple[int, bytes, str]:
        order_id, code, amount = req.get("order_id"), req.get("auth_code"), req.get("amount_minor")
        if not (isinstance(order_id, str) and isinstance(code, str) and isinstance(amount, int) and amount > 0):
            raise _Reply(400, "bad_request", "order_id, auth_code and a positive amount_minor are required")
        return _json(200, {"order": self.pay_code(order_id, code, amount).to_json()})

    # --- the platform's books, shared by its JSON, WeChat Pay and Alipay fronts ------------------------------

    def pay_code(self, order_id: str, code: str, amount: int) -> WalletOrder:
        """Charge a customer's code (magic endings above). Raises ``PlatformError`` for ending 95; hangs for 96."""
        ending = _ending(code)
        if ending == OUTCOMES["platform_error"]:
            raise _Reply(503, "platform_error", "wallet platform error / 支付平台错误")
        if ending == OUTCOMES["no_answer"]:
            with self._lock:
                self._receiving.add(order_id)
            try:
                self._stopping.wait(self.hang_s)
            finally:
                with self._lock:
                    self._receiving.discard(order_id)
        with self._lock:
            if order_id in self.orders:
                return self.orders[order_id]
            order = WalletOrder(order_id, amount, "paid", wallet=_wallet_of(code))
            issued = self._issued.setdefault(code, self._clock())
            if code in self._used or self._clock() - issued > self.code_ttl_s or ending == OUTCOMES["expired_code"]:
                order.status, order.reason = "failed", "code_expired"
                order.message = "payment code expired — ask for a fresh code / 付款码已过期，请刷新"
            elif ending == OUTCOMES["insufficient_balance"] or amount % 100 == 93:
                order.status, order.reason = "failed", "insufficient_balance"
                order.message = "insufficient balance / 余额不足"
            elif ending in (OUTCOMES["user_paying_then_paid"], OUTCOMES["user_paying_then_cancelled"],
                            OUTCOMES["user_paying_forever"]):
                order.status = "user_paying"
                order.message = "waiting for the customer's password / 等待用户输入密码"
                order.settle_to = {"91": "paid", "92": "failed"}.get(ending, "")
                order.due = self._clock() + self.user_paying_s
            else:
                order.transaction_id = self._txn_id()
                if ending == OUTCOMES["paid_other_amount"]:  # a platform that charged 1 fen, not what was asked
                    order.amount_minor = 1
            self._used.add(code)
            self.orders[order_id] = order
            return order

    def create_qr(self, order_id: str, amount: int, expires_s: int, wallet: str) -> WalletOrder:
        """A merchant-presented order of a platform (``wechat`` / ``alipay``): paid by ``phone_scan(qr_url)``."""
        with self._lock:
            if order_id not in self.orders:
                self.orders[order_id] = WalletOrder(order_id, amount, "waiting", wallet=wallet, kind="qr",
                                                    expires_at=self._clock() + expires_s,
                                                    qr_token=f"{self._random.randrange(10**16):016d}")
            return self.orders[order_id]

    def find(self, order_id: str) -> WalletOrder | None:
        with self._lock:
            self._settle()
            return self.orders.get(order_id)

    def received(self, order_id: str) -> bool:
        """True when the platform has this order, or its code payment arrived and is still being decided."""
        with self._lock:
            return order_id in self.orders or order_id in self._receiving

    def cancel_order(self, order_id: str) -> WalletOrder:
        """Cancel (撤销): an unpaid order closed, a paid one reversed; an id never seen is closed for good."""
        with self._lock:
            self._settle()
            order = self.orders.get(order_id)
            if order is None:
                order = self.orders[order_id] = WalletOrder(order_id, 0, "cancelled", reason="closed")
            return self._cancel(order)

    def refund_order(self, order_id: str) -> WalletOrder | None:
        with self._lock:
            self._settle()
            order = self.orders.get(order_id)
            if order is not None and order.status in ("paid", "refunded"):
                order.status = "refunded"
            return order

    def _qr_order(self, req: dict[str, Any]) -> tuple[int, bytes, str]:
        order_id, amount, expires = req.get("order_id"), req.get("amount_minor"), req.get("expires_s", 120)
        if not (isinstance(order_id, str) and isinstance(amount, int) and amount > 0 and isinstance(expires, int)):
            raise _Reply(400, "bad_request", "order_id, a positive amount_minor and expires_s are required")
        with self._lock:
            if order_id not in self.orders:
                self.orders[order_id] = WalletOrder(order_id, amount, "waiting", kind="qr",
                                                    expires_at=self._clock() + expires)
            return _json(201, {"order": self.orders[order_id].to_json()})

    def _cancel(self, order: WalletOrder) -> WalletOrder:
        if order.status == "paid":
            order.status, order.message = "refunded", "reversed / 已撤销"
        elif order.status in ("user_paying", "waiting"):
            order.status, order.reason, order.message = "cancelled", "merchant_cancelled", "cancelled / 已撤销"
        return order

    def _settle(self) -> None:
        now = self._clock()
        for order in self.orders.values():
            if order.status == "user_paying" and order.settle_to and order.due is not None and now >= order.due:
                if order.settle_to == "paid":
                    order.status, order.transaction_id, order.message = "paid", self._txn_id(), ""
                else:
                    order.status, order.reason = "failed", "user_cancelled"
                    order.message = "the customer cancelled on the phone / 用户取消支付"
            if order.status == "waiting" and order.expires_at is not None and now >= order.expires_at:
                order.status, order.reason, order.message = "expired", "order_expired", "QR expired / 二维码已过期"

    def _txn_id(self) -> str:
        return f"W{self._random.randrange(10**12):012d}"


def _platform_token(payload: str) -> str | None:
    """The order token of a WeChat Pay ``code_url`` or an Alipay ``qr_code``; None for anything else."""
    for prefix in (WECHAT_QR_PREFIX, ALIPAY_QR_PREFIX):
        if payload.startswith(prefix):
            return payload[len(prefix):]
    return None


def _forge_paid(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
    """Every code payment answer rewritten to ``paid`` (queries pass untouched, as in the WeChat Pay fake)."""
    if method == "POST" and urlsplit(path).path.endswith("/v1/micropay") and status == 200:
        return status, forge_field(body, "order", "status", "paid")
    return status, body


def _body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Reply(400, "bad_request", "body is not JSON") from exc
    if not isinstance(data, dict):
        raise _Reply(400, "bad_request", "body is not a JSON object")
    return data
