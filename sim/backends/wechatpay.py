"""Simulated WeChat Pay merchant API v2 (``api.mch.weixin.qq.com``) over HTTPS with a per-world test CA.

It speaks the real wire format (``POST`` of a flat ``<xml>``, ``sign_type=HMAC-SHA256`` with the merchant API
key) and keeps its books in the shared ``WalletSim`` (``engine``), so the magic code endings of
``sim/backends/wallet.py`` decide outcomes here too. Routes: ``/pay/micropay``, ``/pay/orderquery``,
``/secapi/pay/reverse``, ``/secapi/pay/refund``, ``/pay/refundquery``, ``/pay/unifiedorder``, ``/pay/closeorder``.
A reverse of an order it never received answers ``ORDERNOTEXIST`` and records nothing (as API v3's reverse
documents: 404 "交易订单号不存在"); one whose code payment arrived and is still being decided (magic "no answer")
is reversed and closed for good, so the late payment is refused; an order reversed after it was paid is ``REVOKED``
in the order query, with its ``transaction_id``. ``fail_queries`` = N: the next N order queries answer ``SYSTEMERROR``.

Strict like the platform: a request that is not XML, names another ``appid`` / ``mch_id``, has no ``sign``, another
``sign_type``, a wrong ``sign``, or a ``nonce_str`` seen before is answered ``return_code=FAIL`` (unsigned, as the
platform does) with the platform's wording and changes nothing; each refusal is kept in ``refused``. Every
``return_code=SUCCESS`` answer is signed. The signature is computed here independently of ``drivers/``.

>>> from sim.backends.wallet import WalletSim
>>> sim = WeChatPaySim(WalletSim())
>>> sim.start().startswith("https://127.0.0.1:"), len(sim.api_key)
(True, 32)
>>> sim.stop()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeTree
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from defusedxml import DefusedXmlException

from sim.backends.carrier import _Handler
from sim.backends.http_tls import LoopbackCa
from sim.backends.loopback_http import LoopbackHttp
from sim.backends.wallet import WECHAT_QR_PREFIX, WalletOrder, WalletSim, _Reply

__all__ = ["WeChatPaySim", "platform_sign"]

APPID = "wx8888888888888888"
MCH_ID = "1900000109"
_REQUIRED = {"/pay/micropay": ("body", "total_fee", "spbill_create_ip", "auth_code"),
             "/pay/unifiedorder": ("body", "total_fee", "spbill_create_ip", "notify_url", "trade_type"),
             "/secapi/pay/refund": ("out_refund_no", "total_fee", "refund_fee")}
_TRADE_STATE = {"paid": "SUCCESS", "user_paying": "USERPAYING", "waiting": "NOTPAY", "failed": "PAYERROR",
                "cancelled": "REVOKED", "refunded": "REFUND", "expired": "CLOSED"}
_ERR = {"insufficient_balance": ("NOTENOUGH", "余额不足"),
        "code_expired": ("AUTHCODEEXPIRE", "二维码已过期，请用户在微信上刷新后再试")}


def platform_sign(fields: Mapping[str, str], key: bytes) -> str:
    """WeChat Pay 签名算法 (HMAC-SHA256), written from the platform's documentation."""
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign" and fields[k]) + "&key="
    return hmac.new(key, text.encode("utf-8") + key, hashlib.sha256).hexdigest().upper()


class WeChatPaySim(LoopbackHttp):
    """``start()`` → base URL; ``client_options()`` → what ``drivers.wechatpay.WeChatPayClient`` needs."""

    handler_class = _Handler
    thread_name = "sim-wechatpay"

    def __init__(self, engine: WalletSim, *, port: int = 0, api_key: bytes | None = None, tls: bool = True,
                 workdir: str | None = None, require_client_cert: bool = True) -> None:
        """``require_client_cert``: ``/secapi/`` calls (reverse, refund) need the merchant API certificate
        (``client_cert``, made here with its own test CA), as on the real platform (HTTPS only)."""
        self.engine, self.appid, self.mch_id = engine, APPID, MCH_ID
        self.api_key = api_key or secrets.token_hex(16).encode()
        self.refused: list[str] = []
        self.calls: list[str] = []  # the API path of every request accepted, in order
        self.tamper: Callable[[str, dict[str, str]], dict[str, str]] | None = None
        self.fail_queries = 0  # the next N /pay/orderquery answered SYSTEMERROR (the platform's trouble)
        self._nonces: set[str] = set()
        self._undone: dict[str, str] = {}  # order → REVOKED (reversed) / CLOSED (closeorder), as orderquery says
        self._lock = threading.Lock()
        self._tmp = None if workdir or not tls else tempfile.TemporaryDirectory(prefix="wechatpay-tls-")
        self.test_ca: LoopbackCa | None = None
        self.client_cert: tuple[str, str] | None = None
        self.require_client_cert = require_client_cert and tls
        if tls:
            folder = workdir or self._tmp.name  # type: ignore[union-attr]
            self.test_ca = LoopbackCa.create(folder, "wechatpay")
            self.tls = self.test_ca.server_context()
            merchant_ca, *pair = _merchant_certificate(Path(folder), self.mch_id)
            self.client_cert = (pair[0], pair[1])
            self.tls.verify_mode = ssl.CERT_OPTIONAL  # asked for; required on /secapi/ only
            self.tls.load_verify_locations(merchant_ca)
        self._init_http(port)

    @property
    def ca_file(self) -> str:
        return self.test_ca.ca_file if self.test_ca else ""

    def client_options(self) -> dict[str, Any]:
        return {"appid": self.appid, "mch_id": self.mch_id, "api_key": self.api_key, "ca_file": self.ca_file,
                "insecure_plaintext": self.test_ca is None, "client_cert": self.client_cert}

    def write_key(self, path: str) -> str:
        """The merchant API key in a 0600 file, as a technician installs it; returns the path."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.api_key + b"\n")
        return path

    def forge_paid(self, on: bool) -> None:
        """Play a man in the middle who rewrites every micropay answer to "paid" (he cannot sign it)."""
        self.tamper = _forge_paid if on else None

    def stop(self) -> None:
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- the wire --------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes, _terminal_id: str,
               client_cert: bool = False) -> tuple[int, bytes, str]:
        api = path.split("?", 1)[0]
        try:
            if api.startswith("/secapi/") and self.require_client_cert and not client_cert:
                raise _Refused("no_client_cert", "请求需要商户API证书 (no client certificate)")
            request = self._authenticate(method, body)
            with self._lock:
                self.calls.append(api)
            fields = self._route(api, request)
            answer = {"return_code": "SUCCESS", "return_msg": "OK", "appid": self.appid, "mch_id": self.mch_id,
                      "nonce_str": secrets.token_hex(16), **fields}
            answer["sign"] = platform_sign(answer, self.api_key)
            if self.tamper is not None and api == "/pay/micropay":
                answer = self.tamper(api, answer)
        except _Refused as refused:
            with self._lock:
                self.refused.append(refused.code)
            answer = {"return_code": "FAIL", "return_msg": refused.message}
        except _Reply as reply:  # the engine's platform error: HTTP 5xx like a real outage
            return reply.status, b"<xml><return_code>FAIL</return_code></xml>", "text/xml"
        return 200, _xml(answer), "text/xml; charset=utf-8"

    def _authenticate(self, method: str, body: bytes) -> dict[str, str]:
        if method != "POST":
            raise _Refused("method", "请使用post方法")
        try:
            root = SafeTree.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except (ParseError, DefusedXmlException, ValueError) as exc:
            raise _Refused("xml", "XML格式错误") from exc
        request = {child.tag: child.text or "" for child in root if isinstance(child.tag, str)}
        if root.tag != "xml" or len(request) != len(root):
            raise _Refused("xml", "XML格式错误")
        if request.get("appid") != self.appid or request.get("mch_id") != self.mch_id:
            raise _Refused("appid", "appid和mch_id不匹配")
        if not request.get("sign") or not request.get("nonce_str"):
            raise _Refused("unsigned", "缺少参数 sign 或 nonce_str")
        if request.get("sign_type") != "HMAC-SHA256":
            raise _Refused("sign_type", "签名类型错误")
        if not hmac.compare_digest(platform_sign(request, self.api_key), request["sign"]):
            raise _Refused("bad_signature", "签名错误")
        with self._lock:
            if request["nonce_str"] in self._nonces:
                raise _Refused("replayed_nonce", "nonce_str重复，请求已处理过")
            self._nonces.add(request["nonce_str"])
        return request

    def _route(self, api: str, req: dict[str, str]) -> dict[str, str]:
        missing = next((name for name in (*_REQUIRED.get(api, ()), "out_trade_no") if not req.get(name)), None)
        if missing:
            raise _Refused("param", f"缺少参数{missing}")
        order_id = req["out_trade_no"]
        if api == "/pay/micropay":
            amount = _fen(req.get("total_fee", ""))
            return self._pay_answer(self.engine.pay_code(order_id, req.get("auth_code", ""), amount))
        if api == "/pay/unifiedorder":
            if req.get("trade_type") != "NATIVE" or not req.get("notify_url") or not req.get("product_id"):
                return _fail("PARAM_ERROR", "trade_type=NATIVE 需要 notify_url 和 product_id")
            order = self.engine.create_qr(order_id, _fen(req.get("total_fee", "")),
                                          _seconds_until(req.get("time_expire", "")), "wechat")
            return {"result_code": "SUCCESS", "trade_type": "NATIVE", "prepay_id": f"wx{order.qr_token}",
                    "code_url": WECHAT_QR_PREFIX + order.qr_token}
        order = self.engine.find(order_id)
        if api == "/secapi/pay/reverse":
            if not self.engine.received(order_id):  # nothing to reverse (v3's reverse: 404 "交易订单号不存在")
                return {**_fail("ORDERNOTEXIST", "此交易订单号不存在"), "recall": "N"}  # nothing recorded
            self.engine.cancel_order(order_id)
            with self._lock:
                self._undone[order_id] = "REVOKED"
            return {"result_code": "SUCCESS", "recall": "N"}  # names no order, as on the platform
        if order is None and api == "/pay/orderquery" and self._failing_query():
            return _fail("SYSTEMERROR", "系统超时，请稍后再试")
        if order is None:
            return _fail("ORDERNOTEXIST", "此交易订单号不存在")
        if api == "/pay/orderquery":
            if self._failing_query():
                return _fail("SYSTEMERROR", "系统超时，请稍后再试")
            return self._query_answer(order)
        if api == "/pay/closeorder":
            if order.status == "paid":
                return _fail("ORDERPAID", "订单已支付，不能发起关单")
            self.engine.cancel_order(order_id)
            with self._lock:
                self._undone[order_id] = "CLOSED"
            return {"result_code": "SUCCESS"}
        if api == "/secapi/pay/refund":
            if order.status not in ("paid", "refunded") or _fen(req.get("total_fee", "")) != order.amount_minor:
                return _fail("INVALID_REQUEST", "订单状态错误或订单金额不符")
            self.engine.refund_order(order_id)
            return {"result_code": "SUCCESS", "out_trade_no": order_id, "out_refund_no": req.get("out_refund_no", ""),
                    "refund_id": f"50{order.transaction_id[1:]}", "refund_fee": req.get("refund_fee", ""),
                    "total_fee": str(order.amount_minor)}
        if api == "/pay/refundquery":
            if order.status != "refunded":
                return _fail("REFUNDNOTEXIST", "退款订单查询失败")
            return {"result_code": "SUCCESS", "out_trade_no": order_id, "refund_count": "1",
                    "refund_status_0": "SUCCESS", "refund_id_0": f"50{order.transaction_id[1:]}"}
        raise _Refused("route", f"no such API {api[:40]}")

    def _failing_query(self) -> bool:
        """``fail_queries``: the next N order queries answer SYSTEMERROR (signed, as the platform's own trouble)."""
        with self._lock:
            if self.fail_queries <= 0:
                return False
            self.fail_queries -= 1
            return True

    def _pay_answer(self, order: WalletOrder) -> dict[str, str]:
        if order.status == "paid":
            return self._query_answer(order, with_state=False)
        if order.status == "user_paying":
            return _fail("USERPAYING", "需要用户输入支付密码")
        code, text = _ERR.get(order.reason, ("PAYERROR", order.message or "支付失败"))
        return _fail(code, text)

    def _query_answer(self, order: WalletOrder, *, with_state: bool = True) -> dict[str, str]:
        answer = {"result_code": "SUCCESS", "out_trade_no": order.order_id, "fee_type": "CNY",
                  "trade_type": "NATIVE" if order.kind == "qr" else "MICROPAY"}
        if with_state:
            answer["trade_state"] = _TRADE_STATE.get(order.status, "PAYERROR")
            if order.status in ("cancelled", "refunded") and order.order_id in self._undone:
                answer["trade_state"] = self._undone[order.order_id]  # a reversed paid order: REVOKED, not REFUND
            answer["trade_state_desc"] = order.message[:100]
        if order.amount_minor:
            answer["total_fee"] = str(order.amount_minor)
        if order.transaction_id:
            answer.update({"transaction_id": f"42{order.transaction_id[1:]}", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                           "bank_type": "CMC", "cash_fee": str(order.amount_minor)})
        return answer


class _WeChatHandler(_Handler):
    """Tells the platform whether the client presented a merchant API certificate (its CA verified it)."""

    def _answer(self, method: str, body_in: bytes) -> tuple[int, bytes, str, dict[str, str]]:
        getpeercert = getattr(self.connection, "getpeercert", None)
        has_cert = bool(getpeercert()) if getpeercert is not None else False
        sim: WeChatPaySim = self.server.sim  # type: ignore[attr-defined]
        status, body, ctype = sim.handle(method, self.path, body_in, "", client_cert=has_cert)
        return status, body, ctype, {}


WeChatPaySim.handler_class = _WeChatHandler


def _merchant_certificate(folder: Path, mch_id: str) -> tuple[str, str, str]:
    """A TEST stand-in for WeChat Pay's merchant API certificate: (CA PEM, client cert PEM, client key PEM 0600)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pos-sim WeChat Pay merchant TEST CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, mch_id)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (folder / "wechatpay-merchant-ca.pem", folder / "apiclient_cert.pem", folder / "apiclient_key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    fd = os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return str(paths[0]), str(paths[1]), str(paths[2])


def _seconds_until(time_expire: str) -> int:
    """Seconds from now to a ``time_expire`` (yyyyMMddHHmmss, Beijing time); 120 when absent or malformed."""
    try:
        until = dt.datetime.strptime(time_expire, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    except ValueError:
        return 120
    return max(1, int(until.timestamp() - time.time()))


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _fail(err_code: str, text: str) -> dict[str, str]:
    return {"result_code": "FAIL", "err_code": err_code, "err_code_des": text}


def _fen(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) <= 0:
        raise _Refused("param", "total_fee 必须是正整数（分）")
    return int(text)


def _xml(fields: Mapping[str, str]) -> bytes:
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>").encode()


def _forge_paid(_api: str, answer: dict[str, str]) -> dict[str, str]:
    forged = {k: v for k, v in answer.items() if k not in ("err_code", "err_code_des")}
    forged.update({"result_code": "SUCCESS", "transaction_id": "4200000000000000000000000001", "fee_type": "CNY"})
    forged.setdefault("total_fee", "1")
    return forged  # the sign is the platform's for the real answer: it no longer verifies
