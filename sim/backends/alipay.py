"""Simulated Alipay open platform gateway (``openapi.alipay.com/gateway.do``) over HTTPS with a per-world test CA.

It speaks the real wire format: a form-encoded ``POST`` of the public parameters and ``biz_content``, signed RSA2
(SHA256withRSA) with the merchant app's private key; it answers ``{"<method>_response": {...}, "sign": "..."}``
signed with the platform's own key. Methods: ``alipay.trade.pay`` (``scene=bar_code``), ``.query``, ``.cancel``,
``.refund``, ``.precreate``. Books and magic code endings are the shared ``WalletSim`` (``engine``).

Strict like the gateway: a missing parameter is ``40001 isv.missing-*`` (``isv.missing-signature`` without
``sign``), an unknown app ``40002 isv.invalid-app-id``, another ``sign_type`` ``isv.invalid-signature-type``, a
wrong signature ``isv.invalid-signature``, a ``timestamp`` more than ``skew_s`` (5 min) from the platform's clock
``isv.invalid-timestamp``; these answers are unsigned and change nothing (kept in ``refused``). The signature is
checked here with ``cryptography`` directly, independently of ``drivers/``.

>>> from sim.backends.wallet import WalletSim
>>> sim = AlipaySim(WalletSim())
>>> sim.start().endswith("/gateway.do")
True
>>> sim.stop()
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sim.backends.carrier import _Handler
from sim.backends.http_tls import LoopbackCa
from sim.backends.loopback_http import LoopbackHttp
from sim.backends.wallet import ALIPAY_QR_PREFIX, WalletOrder, WalletSim, _Reply

__all__ = ["AlipaySim", "APP_ID"]

APP_ID = "2021000000000001"
BEIJING = dt.timezone(dt.timedelta(hours=8))
_PUBLIC = ("app_id", "method", "charset", "sign_type", "timestamp", "version", "biz_content")
_STATUS = {"paid": "TRADE_SUCCESS", "user_paying": "WAIT_BUYER_PAY", "waiting": "WAIT_BUYER_PAY",
           "failed": "TRADE_CLOSED", "cancelled": "TRADE_CLOSED", "refunded": "TRADE_CLOSED",
           "expired": "TRADE_CLOSED"}
_SUB = {"insufficient_balance": ("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足"),
        "code_expired": ("ACQ.PAYMENT_AUTH_CODE_INVALID", "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款")}


class AlipaySim(LoopbackHttp):
    """``start()`` → gateway URL; ``write_keys(dir)`` → the key files a terminal is configured with."""

    handler_class = _Handler
    thread_name = "sim-alipay"

    def __init__(self, engine: WalletSim, *, port: int = 0, tls: bool = True, workdir: str | None = None,
                 skew_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.app_id, self.skew_s, self._clock = engine, APP_ID, skew_s, clock
        # TEST keys, made once per process (RSA 2048 costs ~50 ms each): the platform's and the merchant app's
        self.platform_key, self.app_key = _test_keys()
        self.refused: list[str] = []
        self.calls: list[str] = []
        self.tamper: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._tmp = None if workdir or not tls else tempfile.TemporaryDirectory(prefix="alipay-tls-")
        self.test_ca: LoopbackCa | None = None
        if tls:
            self.test_ca = LoopbackCa.create(workdir or self._tmp.name, "alipay")  # type: ignore[union-attr]
            self.tls = self.test_ca.server_context()
        self._init_http(port)

    @property
    def base_url(self) -> str:
        return super().base_url + "/gateway.do"

    @property
    def ca_file(self) -> str:
        return self.test_ca.ca_file if self.test_ca else ""

    def client_options(self) -> dict[str, Any]:
        return {"app_id": self.app_id, "app_private_key": self.app_key,
                "alipay_public_key": self.platform_key.public_key(), "ca_file": self.ca_file,
                "insecure_plaintext": self.test_ca is None}

    def write_keys(self, directory: str) -> tuple[str, str]:
        """(app private key PEM, mode 0600; Alipay public key PEM) as a technician installs them."""
        private = os.path.join(directory, "alipay-app-private-key.pem")
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.app_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        public = os.path.join(directory, "alipay-public-key.pem")
        with open(public, "wb") as out:
            out.write(self.platform_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return private, public

    def forge_paid(self, on: bool) -> None:
        """Play a man in the middle who rewrites every trade.pay answer to "paid" (he cannot sign it)."""
        self.tamper = _forge_paid if on else None

    def stop(self) -> None:
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- the wire --------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes, _terminal_id: str) -> tuple[int, bytes, str]:
        try:
            params = self._authenticate(method, body)
        except _Refused as refused:
            with self._lock:
                self.refused.append(refused.sub_code)
            key = refused.method.replace(".", "_") + "_response" if refused.method else "error_response"
            answer = {"code": refused.code, "msg": "Invalid Arguments" if refused.code == "40002" else
                      "Missing Required Arguments", "sub_code": refused.sub_code, "sub_msg": refused.message}
            return 200, json.dumps({key: answer}, ensure_ascii=False).encode(), "application/json;charset=utf-8"
        name = params["method"]
        try:
            biz = json.loads(params["biz_content"])
            if not isinstance(biz, dict):
                raise ValueError("biz_content")
            answer = self._route(name, biz)
        except _Reply as reply:  # the engine's platform error: HTTP 5xx like a real outage
            return reply.status, b"", "text/plain"
        except (ValueError, KeyError, TypeError):
            answer = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.INVALID_PARAMETER",
                      "sub_msg": "参数无效"}
        return 200, self._signed(name, answer), "application/json;charset=utf-8"

    def _signed(self, method: str, answer: dict[str, Any]) -> bytes:
        text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        signature = base64.b64encode(self.platform_key.sign(text.encode(), padding.PKCS1v15(),
                                                            hashes.SHA256())).decode()
        if self.tamper is not None and method == "alipay.trade.pay":
            text = json.dumps(self.tamper(method, answer), ensure_ascii=False, separators=(",", ":"))
        key = method.replace(".", "_") + "_response"
        return ('{"' + key + '":' + text + ',"sign":"' + signature + '"}').encode()

    def _authenticate(self, method: str, body: bytes) -> dict[str, str]:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Refused("", "40002", "isv.invalid-parameter", "参数无效") from exc
        params = dict(pairs)
        name = params.get("method", "")
        if method != "POST" or len(params) != len(pairs):
            raise _Refused(name, "40002", "isv.invalid-parameter", "参数重复或请求方法错误")
        if not params.get("sign"):
            raise _Refused(name, "40001", "isv.missing-signature", "缺少签名参数")
        missing = next((p for p in _PUBLIC if not params.get(p)), None)
        if missing:
            raise _Refused(name, "40001", f"isv.missing-{missing.replace('_', '-')}", f"缺少{missing}参数")
        if params["app_id"] != self.app_id:
            raise _Refused(name, "40002", "isv.invalid-app-id", "无效的AppID参数")
        if params["sign_type"] != "RSA2":
            raise _Refused(name, "40002", "isv.invalid-signature-type", "无效的签名类型")
        content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k])
        try:
            self.app_key.public_key().verify(base64.b64decode(params["sign"], validate=True), content.encode(),
                                             padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError) as exc:
            raise _Refused(name, "40002", "isv.invalid-signature", "验签出错") from exc
        try:
            sent = dt.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        except ValueError as exc:
            raise _Refused(name, "40002", "isv.invalid-timestamp", "非法的时间戳参数") from exc
        if abs(sent.timestamp() - self._clock()) > self.skew_s:
            raise _Refused(name, "40002", "isv.invalid-timestamp", "非法的时间戳参数")
        with self._lock:
            self.calls.append(name)
        return params

    def _route(self, method: str, biz: dict[str, Any]) -> dict[str, Any]:
        order_id = biz["out_trade_no"]
        if not isinstance(order_id, str) or not order_id:
            raise ValueError("out_trade_no")
        if method in ("alipay.trade.pay", "alipay.trade.precreate") and not biz.get("subject"):
            raise ValueError("subject")  # required by both: 40004 ACQ.INVALID_PARAMETER
        if method == "alipay.trade.pay":
            if biz.get("scene") != "bar_code" or not isinstance(biz.get("auth_code"), str):
                raise ValueError("scene")
            return self._pay_answer(self.engine.pay_code(order_id, biz["auth_code"], _fen(biz["total_amount"])))
        if method == "alipay.trade.precreate":
            express = str(biz.get("timeout_express", "2m"))  # "Nm" minutes ("Nh", "Nd" exist too)
            minutes = int(express[:-1]) * {"m": 1, "h": 60, "d": 1440}.get(express[-1:], 0) \
                if express[:-1].isascii() and express[:-1].isdigit() else 0
            if not 1 <= minutes <= 21600:
                raise ValueError("timeout_express")
            order = self.engine.create_qr(order_id, _fen(biz["total_amount"]), minutes * 60, "alipay")
            return {**_ok(), "out_trade_no": order_id, "qr_code": ALIPAY_QR_PREFIX + order.qr_token}
        if method == "alipay.trade.cancel":
            before = self.engine.find(order_id)
            paid = before is not None and before.status == "paid"
            self.engine.cancel_order(order_id)
            answer = {**_ok(), "out_trade_no": order_id, "retry_flag": "N", "action": "refund" if paid else "close"}
            if before is not None and before.transaction_id:  # trade_no: returned when a trade was closed/refunded
                answer["trade_no"] = f"2026{before.transaction_id[1:]}"
            return answer
        order = self.engine.find(order_id)
        if order is None:
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST",
                    "sub_msg": "交易不存在"}
        if method == "alipay.trade.query":
            return {**self._trade(order), "trade_status": _STATUS.get(order.status, "TRADE_CLOSED")}
        if method == "alipay.trade.refund":
            if order.status not in ("paid", "refunded"):
                return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR",
                        "sub_msg": "交易状态不合法"}
            self.engine.refund_order(order_id)
            return {**self._trade(order), "fund_change": "Y", "refund_fee": biz.get("refund_amount", "")}
        raise ValueError("method")

    def _pay_answer(self, order: WalletOrder) -> dict[str, Any]:
        if order.status == "paid":
            return {**self._trade(order), "gmt_payment": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")}
        if order.status == "user_paying":
            return {"code": "10003", "msg": " order success pay inprocess", "out_trade_no": order.order_id,
                    "total_amount": _yuan(order.amount_minor)}
        sub, text = _SUB.get(order.reason, ("ACQ.TRADE_HAS_CLOSE", order.message or "交易已关闭"))
        return {"code": "40004", "msg": "Business Failed", "sub_code": sub, "sub_msg": text}

    @staticmethod
    def _trade(order: WalletOrder) -> dict[str, Any]:
        answer = {**_ok(), "out_trade_no": order.order_id, "total_amount": _yuan(order.amount_minor),
                  "buyer_logon_id": "159****5620"}
        if order.transaction_id:
            answer["trade_no"] = f"2026{order.transaction_id[1:]}"
        return answer


_KEYS: list[rsa.RSAPrivateKey] = []
_KEYS_LOCK = threading.Lock()


def _test_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    with _KEYS_LOCK:
        if not _KEYS:
            _KEYS.extend(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
        return _KEYS[0], _KEYS[1]


class _Refused(Exception):
    def __init__(self, method: str, code: str, sub_code: str, message: str) -> None:
        super().__init__(message)
        self.method, self.code, self.sub_code, self.message = method, code, sub_code, message


def _ok() -> dict[str, str]:
    return {"code": "10000", "msg": "Success"}


def _yuan(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


def _fen(text: Any) -> int:
    yuan, _, cents = str(text).partition(".")
    digits = yuan + cents
    if not (yuan and digits.isascii() and digits.isdigit()) or len(cents) > 2:
        raise ValueError("total_amount")
    return int(yuan) * 100 + int(cents.ljust(2, "0") or 0)


def _forge_paid(_method: str, answer: dict[str, Any]) -> dict[str, Any]:
    forged = {k: v for k, v in answer.items() if k not in ("sub_code", "sub_msg")}
    forged.update({"code": "10000", "msg": "Success", "trade_no": "2026000000000000000001"})
    return forged  # the sign is the platform's for the real answer: it no longer verifies
