"""Simulated IoT-SIM carrier platform: a REST/JSON service on loopback with a seeded catalogue and magic SIMs.

The full API is in ``docs/protocols/carrier-api.md``. In short (JSON bodies, UTF-8, money in fen)::

    GET  /v1/sims/{iccid|msisdn}   200 {"sim": {...}}                  404 not_found, 400 invalid_number
    GET  /v1/sims/{iccid}/plans    200 {"iccid": ..., "plans": [...]}  404 not_found
    POST /v1/orders                201 {"order": {...}} when new; 200 and the same order when the id is
         {"order_id", "iccid",     known with the same body (never applied twice); 409 conflict when the
          "plan_id",               body differs; 400 bad_request
          "amount_minor"}
    GET  /v1/orders/{order_id}     200 {"order": {...}}                404 not_found
    POST /v1/topups/{order_id}/reverse  200 {"reversal": {...}} (again: the same answer); 409 not_reversible
         {"reason": text}          with "reason" used / window_passed / not_applied; 404 not_found

A top-up may be reversed while it is unused (``use_topup`` marks one used, as the SIM's traffic would) and within
``reverse_window_s`` of being applied; a reversal takes back what the top-up added (data, SMS, minutes, credit,
the expiry it moved, the plan name it set).

Every request must be signed (app id, timestamp within ±5 minutes, a nonce never seen before, HMAC-SHA256 over
method, path, timestamp, nonce, app id and the body's SHA-256; ``drivers.carrier_sign`` documents the canonical
string, checked independently in ``sim.backends.signed_api``, shared with the wallet platform); anything else is
``401`` with ``unsigned``, ``unknown_app``,
``stale_timestamp``, ``bad_signature`` or ``replayed_nonce`` and changes nothing. Every answer is signed with the
same secret, bound to the request's nonce. HTTPS with a per-simulator test CA (``sim.backends.http_tls``) unless
``tls=False``. ``tamper`` (tests) rewrites an answer after it was signed, as a man in the middle would.

Errors are ``{"error": code, "message": text}``. Orders have status ``applied``, ``pending`` or ``failed``; a
rejected top-up is a ``failed`` order (stored, so asking again gives the same answer), not an HTTP error.
The order id is the terminal's: the platform has no idempotency key of its own.

Magic SIMs (every SIM below has a Luhn-valid ICCID; any other well-formed number is unknown):

=====================  =============  ========================================================================
ICCID                  MSISDN         behaviour
=====================  =============  ========================================================================
89860424000000000017   1064900000001  active, "1GB 月包", ￥12.50 balance, 300 MB left, expires 2027-01-31
89860424000000000025   1064900000002  active, "3GB 月包", ￥0.00, 0 MB left, expires 2026-12-31
8986042400000000038    1064900000003  active, 19-digit ICCID, "10GB 月包", ￥5.00, 8 GB left
89860424000000000108   1064900000010  unknown: 404 not_found (not in the catalogue)
89860424000000000116   1064900000011  inactive (未激活): looked up fine, top-ups fail
89860424000000000124   1064900000012  suspended (停机): looked up fine, top-ups fail
89860424000000000132   1064900000013  slow lookup: the answer comes after ``slow_s`` (2 s, inside the timeout)
89860424000000000140   1064900000014  top-up rejected by the carrier: order ``failed``
89860424000000000157   1064900000015  top-up applied but the answer is lost: replies after ``lost_answer_s``
                                      (15 s, past the client's 10 s); order status then says ``applied``
89860424000000000165   1064900000016  top-up ``pending``, becomes ``applied`` after ``pending_s`` (3 s)
89860424000000000173   1064900000017  active with an empty plan list
89860424000000000181   1064900000018  lookup answers 200 with an HTML page (garbage)
89860424000000000199   1064900000019  lookup answers 503 {"error": "unavailable"}
89860424000000000207   1064900000020  lookup hangs for ``hang_s`` (30 s): the client times out
89860424000000000215   1064900000021  "bank test" SIM: its plans are priced on the acquirer's magic amounts
                                      (￥10.05 → 05, ￥10.51 → 51, ￥10.54 → 54, ￥10.91 → 91, ￥10.93
                                      disconnect, ￥10.96 garbled, ￥10.97 no answer, ￥10.98 late answer,
                                      ￥10.99 host down), so the bank's outcome is chosen by the plan
89860424000000000223   1064900000022  the first POST of each order answers 503 and stores nothing; the
                                      terminal asks the order status (not_found), then sends it again
=====================  =============  ========================================================================

>>> sim = CarrierSim()
>>> url = sim.start()
>>> url.startswith("https://127.0.0.1:"), sim.ca_file.endswith("carrier-ca.pem")
(True, True)
>>> sim.stop()
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from sim.backends.loopback_http import LoopbackHttp
from sim.backends.signed_api import SignedApi, Unauthorized

__all__ = ["CarrierSim", "SimState", "LedgerEntry", "PLANS", "BANK_TEST_PLANS"]

CARRIER = "SIM-CARRIER"
MAX_BODY = 64 * 1024
DEFAULT_APP_ID = "POSSIM-APP-0001"
_ICCID = re.compile(r"89[0-9A-Z]{17,18}")
_MSISDN = re.compile(r"1\d{10}|1\d{12}")
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class _Plan:
    """A catalogue entry; ``credit_minor`` is money added to the balance (a plain recharge)."""

    plan_id: str
    name: str
    name_zh: str
    period_months: int
    price_minor: int
    data_mb: int = 0
    sms: int = 0
    voice_min: int = 0
    promotion: str | None = None
    promo_price_minor: int | None = None
    credit_minor: int = 0
    bonus_data_mb: int = 0
    bonus_credit_minor: int = 0

    @property
    def payable_minor(self) -> int:
        return self.price_minor if self.promo_price_minor is None else self.promo_price_minor

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        del body["credit_minor"]
        return body


PLANS: tuple[_Plan, ...] = (
    _Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, data_mb=1024),
    _Plan("D3G-1M", "3 GB monthly data", "3GB 月包", 1, 2000, data_mb=3072),
    _Plan("D10G-1M", "10 GB monthly data", "10GB 月包", 1, 3000, data_mb=10240),
    _Plan("D5G-1M-BONUS", "5 GB monthly data + 2 GB bonus", "5GB 月包 加赠2GB", 1, 2500, data_mb=5120,
          promotion="Bonus 2 GB / 加赠 2GB 流量", bonus_data_mb=2048),
    _Plan("D3G-3M", "3 GB/month, quarterly", "3GB 季包", 3, 5400, data_mb=9216),
    _Plan("D1G-12M", "1 GB/month, annual", "1GB 年包", 12, 12000, data_mb=12288,
          promotion="Annual special -17% + ￥10 credit / 年包特惠 赠话费", promo_price_minor=9900,
          bonus_credit_minor=1000),
    _Plan("SMS100-1M", "100 SMS pack", "短信包 100条", 1, 500, sms=100),
    _Plan("VOICE50-1M", "50 min voice pack", "语音包 50分钟", 1, 800, voice_min=50),
    _Plan("CREDIT-50", "Balance recharge 50 yuan", "话费充值 50元", 0, 5000, credit_minor=5000),
)
# Offered only to the "bank test" SIM: prices on the acquirer's magic amounts (sim.backends.acquirer.MAGIC_AMOUNTS),
# so a person in the simulator can make the bank decline, stay silent or answer garbage by choosing a plan.
BANK_TEST_PLANS: tuple[_Plan, ...] = (
    _Plan("TEST-05", "Bank test: do not honour (05)", "测试：拒绝交易", 1, 1005, data_mb=10),
    _Plan("TEST-51", "Bank test: insufficient funds (51)", "测试：余额不足", 1, 1051, data_mb=10),
    _Plan("TEST-91", "Bank test: issuer unavailable (91)", "测试：发卡行不可用", 1, 1091, data_mb=10),
    _Plan("TEST-96", "Bank test: garbled answer", "测试：乱码应答", 1, 1096, data_mb=10),
    _Plan("TEST-97", "Bank test: no answer (reversal)", "测试：无应答（冲正）", 1, 1097, data_mb=10),
    _Plan("TEST-98", "Bank test: late answer (reversal)", "测试：迟到应答（冲正）", 1, 1098, data_mb=10),
    _Plan("TEST-54", "Bank test: expired card (54)", "测试：卡已过期", 1, 1054, data_mb=10),
    _Plan("TEST-93", "Bank test: disconnect (reversal)", "测试：断开连接（冲正）", 1, 1093, data_mb=10),
    _Plan("TEST-99", "Bank test: host down for a while", "测试：主机宕机", 1, 1099, data_mb=10),
)
_PLAN_BY_ID: Mapping[str, _Plan] = {p.plan_id: p for p in PLANS + BANK_TEST_PLANS}


@dataclass
class SimState:
    """What the platform holds about one SIM (mutable: tests may change it)."""

    iccid: str
    msisdn: str
    status: str
    plan_name: str
    balance_minor: int
    data_left_mb: int
    expiry: str
    sms_left: int = 0
    voice_left_min: int = 0
    data_used_mb: int = 0
    magic: str = ""
    plans: tuple[str, ...] = field(default_factory=lambda: tuple(p.plan_id for p in PLANS))

    def to_json(self) -> dict[str, Any]:
        return {"iccid": self.iccid, "msisdn": self.msisdn, "status": self.status,
                "plan_name": self.plan_name, "balance_minor": self.balance_minor,
                "data_left_mb": self.data_left_mb, "expiry": self.expiry, "sms_left": self.sms_left,
                "voice_left_min": self.voice_left_min, "data_used_mb": self.data_used_mb, "carrier": CARRIER}


def _seed() -> dict[str, SimState]:
    rows = [  # iccid, msisdn, status, plan, balance, data MB, expiry, magic
        ("89860424000000000017", "1064900000001", "active", "1GB 月包", 1250, 300, "2027-01-31", ""),
        ("89860424000000000025", "1064900000002", "active", "3GB 月包", 0, 0, "2026-12-31", ""),
        ("8986042400000000038", "1064900000003", "active", "10GB 月包", 500, 8192, "2027-03-31", ""),
        ("89860424000000000116", "1064900000011", "inactive", "1GB 月包", 0, 0, "2026-06-30", ""),
        ("89860424000000000124", "1064900000012", "suspended", "1GB 月包", -350, 0, "2026-09-30", ""),
        ("89860424000000000132", "1064900000013", "active", "1GB 月包", 800, 512, "2027-02-28", "slow"),
        ("89860424000000000140", "1064900000014", "active", "1GB 月包", 800, 100, "2027-02-28", "reject"),
        ("89860424000000000157", "1064900000015", "active", "3GB 月包", 0, 50, "2027-02-28", "lost"),
        ("89860424000000000165", "1064900000016", "active", "3GB 月包", 0, 50, "2027-02-28", "pending"),
        ("89860424000000000173", "1064900000017", "active", "1GB 月包", 100, 10, "2027-02-28", "no_plans"),
        ("89860424000000000181", "1064900000018", "active", "1GB 月包", 100, 10, "2027-02-28", "garbage"),
        ("89860424000000000199", "1064900000019", "active", "1GB 月包", 100, 10, "2027-02-28", "down"),
        ("89860424000000000207", "1064900000020", "active", "1GB 月包", 100, 10, "2027-02-28", "hang"),
        ("89860424000000000215", "1064900000021", "active", "1GB 月包", 100, 10, "2027-02-28", "bank_test"),
        ("89860424000000000223", "1064900000022", "active", "1GB 月包", 100, 10, "2027-02-28", "topup_5xx"),
    ]
    sims = {}
    for iccid, msisdn, status, plan, balance, data, expiry, magic in rows:
        sims[iccid] = SimState(iccid, msisdn, status, plan, balance, data, expiry, magic=magic,
                               data_used_mb=724 if data else 0)
        if magic == "no_plans":
            sims[iccid].plans = ()
        elif magic == "bank_test":
            sims[iccid].plans = tuple(p.plan_id for p in BANK_TEST_PLANS)
    return sims


@dataclass(frozen=True)
class LedgerEntry:
    """One top-up the platform applied."""

    order_id: str
    iccid: str
    plan_id: str
    amount_minor: int
    time: dt.datetime
    funding_ref: str = ""  # the payment that funds it (acquirer RRN or wallet transaction id)


@dataclass
class _Order:
    order_id: str
    iccid: str
    plan_id: str
    amount_minor: int
    terminal_id: str
    status: str
    message: str
    created_at: dt.datetime
    due: float | None = None  # monotonic time a pending order becomes applied
    balance_minor: int | None = None
    applied_at: dt.datetime | None = None
    funding_ref: str = ""
    applied_mono: float | None = None  # monotonic time it was applied (the reversal window)
    before: tuple[str, str] | None = None  # the SIM's expiry and plan name before it was applied
    used: bool = False
    reversed_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "iccid": self.iccid, "plan_id": self.plan_id,
                "amount_minor": self.amount_minor, "terminal_id": self.terminal_id,
                "funding_ref": self.funding_ref,
                "status": self.status, "message": self.message,
                "balance_minor": self.balance_minor, "created_at": self.created_at.isoformat(),
                "applied_at": self.applied_at.isoformat() if self.applied_at else None,
                "reversed_at": self.reversed_at.isoformat() if self.reversed_at else None}


class _Reply(Exception):
    """Raised inside a route to answer with an error body."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class CarrierSim(SignedApi, LoopbackHttp):
    """The platform on ``127.0.0.1`` and an ephemeral port (or ``port``); life cycle from ``LoopbackHttp``.

    Args:
        slow_s: delay of the slow lookup. hang_s: delay of the hanging lookup. lost_answer_s: delay of the
            lost top-up answer. pending_s: how long a pending top-up stays pending.
        today: the platform's date (expiry of packages is extended from it).
        app_id, app_secret: the one terminal application it knows (a fresh random secret unless given).
        tls: serve HTTPS with a fresh test CA written to ``workdir`` (a temporary directory unless given).
        clock: Unix seconds, for the ±5 min check.
    """

    def __init__(self, *, port: int = 0, slow_s: float = 2.0, hang_s: float = 30.0,
                 lost_answer_s: float = 15.0, pending_s: float = 3.0, reverse_window_s: float = 1800.0,
                 today: Callable[[], dt.date] = dt.date.today, app_id: str = DEFAULT_APP_ID,
                 app_secret: bytes | None = None, tls: bool = True, workdir: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._init_signing(app_id=app_id, app_secret=app_secret, tls=tls, workdir=workdir, clock=clock,
                           name="carrier")
        self.slow_s, self.hang_s = slow_s, hang_s
        self.lost_answer_s, self.pending_s = lost_answer_s, pending_s
        self.reverse_window_s = reverse_window_s
        self.reversals: list[str] = []  # order ids reversed, in order
        self._today = today
        self._init_http(port)
        self.sims: dict[str, SimState] = _seed()
        self._orders: dict[str, _Order] = {}
        self._ledger: list[LedgerEntry] = []
        self._failed_once: set[str] = set()
        self._lock = threading.RLock()
        self.requests = 0

    def forge_order_answers(self, on: bool) -> None:
        """Play a man in the middle who rewrites every order answer to ``applied`` (the signature then fails)."""
        self.tamper = _forge_applied if on else None

    # --- inspection ----------------------------------------------------------------------------------------

    @property
    def ledger(self) -> list[LedgerEntry]:
        with self._lock:
            self._settle()
            return list(self._ledger)

    def use_topup(self, order_id: str = "") -> str:
        """Mark an applied top-up used (the SIM spent some of it): it can no longer be reversed. ``order_id`` ""
        means the newest applied one. Returns its order id; KeyError when there is none."""
        with self._lock:
            self._settle()
            applied = [o for o in self._orders.values() if o.status == "applied" and o.reversed_at is None]
            found = self._orders.get(order_id) if order_id else (applied[-1] if applied else None)
            if found is None or found.status != "applied":
                raise KeyError(f"no applied top-up {order_id or '(newest)'}")
            found.used = True
            return found.order_id

    def applied_count(self, order_id: str) -> int:
        return sum(1 for entry in self.ledger if entry.order_id == order_id)

    def order(self, order_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._settle()
            found = self._orders.get(order_id)
            return None if found is None else found.to_json()

    # --- routes (called from handler threads) --------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
        """One request -> (status, body, content type). Delays happen here, outside the lock."""
        with self._lock:
            self.requests += 1
        terminal_id = headers.get("X-Terminal-Id", "")
        parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
        try:
            try:
                self.authenticate(method, path, body, headers)  # sim.backends.signed_api: 401 before acting
            except Unauthorized as exc:
                raise _Reply(exc.status, exc.error, exc.message) from exc
            if method == "GET" and parts == ["v1", "health"]:
                return _json(200, {"status": "ok"})
            if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "sims"]:
                return self._lookup(parts[2])
            if method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "sims"] and parts[3] == "plans":
                return _json(200, self._plans(parts[2]))
            if method == "POST" and parts == ["v1", "orders"]:
                return self._create(body, terminal_id)
            if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "topups"] and parts[3] == "reverse":
                return self._reverse(parts[2], body)
            if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "orders"]:
                found = self.order(parts[2])
                if found is None:
                    raise _Reply(404, "not_found", f"no order {parts[2]}")
                return _json(200, {"order": found})
            raise _Reply(404, "no_route", f"no route {method} {path}")
        except _Reply as reply:
            return _json(reply.status, {"error": reply.error, "message": reply.message})

    def stop(self) -> None:
        super().stop()
        self._stop_signing()

    def _find(self, number: str) -> SimState | None:
        number = number.strip().upper()
        if not (_ICCID.fullmatch(number) or _MSISDN.fullmatch(number)):
            raise _Reply(400, "invalid_number", f"not an ICCID (19-20) or MSISDN (11/13 digits): {number!r}")
        with self._lock:
            return self.sims.get(number) or next((s for s in self.sims.values() if s.msisdn == number), None)

    def _lookup(self, number: str) -> tuple[int, bytes, str]:
        sim = self._find(number)
        if sim is None:
            raise _Reply(404, "not_found", "SIM not found / 未找到该卡")
        if sim.magic in ("slow", "hang"):
            self._stopping.wait(self.slow_s if sim.magic == "slow" else self.hang_s)
        elif sim.magic == "garbage":
            return 200, b"<html><body>502 Bad Gateway</body></html>", "text/html"
        elif sim.magic == "down":
            raise _Reply(503, "unavailable", "platform under maintenance / 平台维护中")
        with self._lock:
            return _json(200, {"sim": sim.to_json()})

    def _plans(self, iccid: str) -> dict[str, Any]:
        sim = self._find(iccid)
        if sim is None:
            raise _Reply(404, "not_found", "SIM not found / 未找到该卡")
        return {"iccid": sim.iccid, "plans": [_PLAN_BY_ID[p].to_json() for p in sim.plans]}

    def _create(self, body: bytes, terminal_id: str) -> tuple[int, bytes, str]:
        req = _order_request(body)
        with self._lock:
            self._settle()
            sim = self.sims.get(req["iccid"])
            if sim is not None and sim.magic == "topup_5xx" and req["order_id"] not in self._failed_once:
                self._failed_once.add(req["order_id"])  # nothing stored: the order status says not_found
                raise _Reply(503, "unavailable", "order service busy / 订单服务繁忙")
            known = self._orders.get(req["order_id"])
            if known is not None:
                if (known.iccid, known.plan_id, known.amount_minor) != (req["iccid"], req["plan_id"],
                                                                       req["amount_minor"]):
                    raise _Reply(409, "conflict", f"order {known.order_id} exists with a different body")
                return _json(200, {"order": known.to_json()})
            order = self._new_order(req, terminal_id)
            self._orders[order.order_id] = order
            answer = _json(201, {"order": order.to_json()})
            lost = order.status == "applied" and self.sims[order.iccid].magic == "lost"
        if lost:
            self._stopping.wait(self.lost_answer_s)  # applied, but the terminal will have given up
        return answer

    def _new_order(self, req: dict[str, Any], terminal_id: str) -> _Order:
        order = _Order(req["order_id"], req["iccid"], req["plan_id"], req["amount_minor"], terminal_id,
                       "failed", "", dt.datetime.now().astimezone(), funding_ref=req["funding_ref"])
        sim = self.sims.get(req["iccid"])
        plan = _PLAN_BY_ID.get(req["plan_id"])
        if sim is None:
            order.message = "SIM not found / 未找到该卡"
        elif sim.status != "active":
            order.message = {"inactive": "SIM not activated / 卡未激活",
                             "suspended": "SIM suspended / 卡已停机"}.get(sim.status, f"SIM {sim.status}")
        elif plan is None or plan.plan_id not in sim.plans:
            order.message = "plan not offered for this SIM / 该卡不支持此套餐"
        elif req["amount_minor"] != plan.payable_minor:
            order.message = f"amount {req['amount_minor']} is not the price {plan.payable_minor} / 金额不符"
        elif sim.magic == "reject":
            order.message = "top-up refused by carrier risk control / 运营商风控拒绝充值"
        elif sim.magic == "pending":
            order.status, order.message = "pending", "processing / 处理中"
            order.due = time.monotonic() + self.pending_s
        else:
            self._apply(order)
        return order

    def _reverse(self, order_id: str, body: bytes) -> tuple[int, bytes, str]:
        try:
            req = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Reply(400, "bad_request", f"body is not JSON: {exc}") from exc
        if not isinstance(req, dict) or not isinstance(req.get("reason", ""), str) or len(req.get("reason", "")) > 64:
            raise _Reply(400, "bad_request", "body must be {\"reason\": up to 64 characters}")
        with self._lock:
            self._settle()
            order = self._orders.get(order_id)
            if order is None:
                raise _Reply(404, "not_found", f"no order {order_id[:64]}")
            if order.reversed_at is None:
                why = self._not_reversible(order)
                if why:
                    reason, text = why
                    return _json(409, {"error": "not_reversible", "reason": reason, "message": text})
                self._take_back(order)
            return _json(200, {"reversal": {"order_id": order.order_id, "status": "reversed",
                                            "message": "top-up reversed / 充值已撤销",
                                            "reversed_at": order.reversed_at.isoformat() if order.reversed_at
                                            else None}})

    def _not_reversible(self, order: _Order) -> tuple[str, str] | None:
        if order.status != "applied" or order.applied_mono is None:
            return "not_applied", f"order is {order.status}: nothing to reverse / 订单未充值成功"
        if order.used:
            return "used", "top-up already used on the SIM / 充值已被使用，无法撤销"
        if time.monotonic() - order.applied_mono > self.reverse_window_s:
            return "window_passed", (f"more than {self.reverse_window_s:g} s since the top-up / "
                                     "已超过可撤销时限")
        return None

    def _take_back(self, order: _Order) -> None:
        sim, plan = self.sims[order.iccid], _PLAN_BY_ID[order.plan_id]
        sim.balance_minor -= plan.credit_minor + plan.bonus_credit_minor
        sim.data_left_mb = max(0, sim.data_left_mb - plan.data_mb - plan.bonus_data_mb)
        sim.sms_left = max(0, sim.sms_left - plan.sms)
        sim.voice_left_min = max(0, sim.voice_left_min - plan.voice_min)
        if order.before is not None:
            sim.expiry, sim.plan_name = order.before
        order.reversed_at = dt.datetime.now().astimezone()
        self.reversals.append(order.order_id)

    def _apply(self, order: _Order) -> None:
        sim, plan = self.sims[order.iccid], _PLAN_BY_ID[order.plan_id]
        order.before, order.applied_mono = (sim.expiry, sim.plan_name), time.monotonic()
        sim.balance_minor += plan.credit_minor + plan.bonus_credit_minor
        sim.data_left_mb += plan.data_mb + plan.bonus_data_mb
        sim.sms_left += plan.sms
        sim.voice_left_min += plan.voice_min
        if plan.period_months and plan.data_mb:  # a data package moves the expiry; add-ons (SMS, voice) do not
            start = max(self._today(), dt.date.fromisoformat(sim.expiry))
            sim.expiry = _add_months(start, plan.period_months).isoformat()
        if plan.data_mb:
            sim.plan_name = plan.name_zh
        order.status, order.message, order.balance_minor = "applied", "applied / 充值成功", sim.balance_minor
        order.applied_at = dt.datetime.now().astimezone()
        self._ledger.append(LedgerEntry(order.order_id, order.iccid, order.plan_id, order.amount_minor,
                                        order.applied_at, order.funding_ref))

    def _settle(self) -> None:
        """Apply pending orders whose time has come (lazily: on every look at the state)."""
        now = time.monotonic()
        for order in self._orders.values():
            if order.status == "pending" and order.due is not None and order.due <= now:
                self._apply(order)


def _order_request(body: bytes) -> dict[str, Any]:
    try:
        req = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Reply(400, "bad_request", f"body is not JSON: {exc}") from exc
    if not isinstance(req, dict):
        raise _Reply(400, "bad_request", "body must be a JSON object")
    for key, kind in (("order_id", str), ("iccid", str), ("plan_id", str), ("amount_minor", int)):
        if not isinstance(req.get(key), kind) or isinstance(req.get(key), bool):
            raise _Reply(400, "bad_request", f"{key} missing or not a {kind.__name__}")
    if not _ORDER_ID.fullmatch(req["order_id"]):
        raise _Reply(400, "bad_request", "order_id must be 1-64 of A-Z a-z 0-9 _ -")
    if req["amount_minor"] <= 0:
        raise _Reply(400, "bad_request", "amount_minor must be positive")
    funding = req.setdefault("funding_ref", "")
    if not isinstance(funding, str) or len(funding) > 64:
        raise _Reply(400, "bad_request", "funding_ref must be a string of up to 64 characters")
    return req


def _forge_applied(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
    if "/v1/orders" not in path or status >= 300:
        return status, body
    try:
        answer = json.loads(body)
        answer["order"].update(status="applied", message="applied / 充值成功")
    except (ValueError, KeyError, TypeError, AttributeError):
        return status, body
    return status, json.dumps(answer, ensure_ascii=False).encode()


def _add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)  # unreachable: every month has a 28th


def _json(status: int, payload: Mapping[str, Any]) -> tuple[int, bytes, str]:
    return status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    """JSON over HTTP for a simulator with ``handle(method, path, body, terminal_id)`` (the wallet uses it too)."""

    protocol_version = "HTTP/1.1"
    server_version = "SimCarrier/1.0"
    timeout = 30.0  # per connection: the simulator's ``idle.idle_timeout_s`` (setup)
    disable_nagle_algorithm = True  # headers and body are two writes: without this a kept connection waits out
    # the client's delayed ACK (40 ms) on every answer, as any keep-alive server would (nginx: tcp_nodelay on)
    wbufsize = 64 * 1024  # an answer's head and body leave in one write (one TLS record), flushed at its end, as
    # a real front end sends a small answer (nginx: postpone_output, ssl_buffer_size); two writes cost the client
    # two records to read and often a second wake-up per answer

    def setup(self) -> None:
        self.timeout = self.server.sim.idle.idle_timeout_s  # type: ignore[attr-defined,misc]
        super().setup()

    def handle(self) -> None:
        """Requests until the client or an answer closes the connection, or the simulator's idle policy does
        (idle too long; or the armed race: closed as the next request arrives, unread)."""
        idle = self.server.sim.idle  # type: ignore[attr-defined]
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and idle.wait_for_request(self.connection, used=True):
            self.handle_one_request()

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is over MAX_BODY or its length is not a number."""
        declared = self.headers.get("Content-Length") or "0"
        length = int(declared) if declared.isdigit() and len(declared) < 10 else -1
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _answer(self, method: str, body_in: bytes) -> tuple[int, bytes, str, dict[str, str]]:
        status, body, ctype = self.server.sim.handle(  # type: ignore[attr-defined]
            method, self.path, body_in, self.headers.get("X-Terminal-Id", ""))
        return status, body, ctype, {}

    def _serve(self, method: str) -> None:
        # HTTP/1.1 keep-alive unless the client asks to close (or the body could not be read): the connection
        # then waits for the next request, at most ``timeout`` seconds, as a real front end's keepalive_timeout
        close = self.headers.get("Connection", "").lower() == "close"
        body_in = self._read_body()
        extra: dict[str, str] = {}
        if body_in is None:
            close = True  # the unread body would be taken for the next request
            status, body, ctype = _json(413, {"error": "too_large", "message": f"body over {MAX_BODY} bytes"})
        else:
            status, body, ctype, extra = self._answer(method, body_in)
        try:
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close" if close else "keep-alive")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            close = True  # the client gave up waiting (timeout tests): nothing to tell it
        self.close_connection = close

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass  # keep test output clean


class _CarrierHandler(_Handler):
    """The carrier's: the signature headers reach ``CarrierSim.handle``; every answer it routes is signed (a 413
    for an oversized body is not)."""

    def _answer(self, method: str, body_in: bytes) -> tuple[int, bytes, str, dict[str, str]]:
        sim: CarrierSim = self.server.sim  # type: ignore[attr-defined]
        headers = {k: self.headers.get(k, "") for k in ("X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature",
                                                        "X-Terminal-Id")}
        status, body, ctype = sim.handle(method, self.path, body_in, headers)
        signature = sim.sign_answer(status, body, headers["X-Nonce"])
        if sim.tamper is not None:
            status, body = sim.tamper(method, self.path, status, body)
        return status, body, ctype, signature


CarrierSim.handler_class = _CarrierHandler  # defined below the simulator it serves
CarrierSim.thread_name = "sim-carrier"
