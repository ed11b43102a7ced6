"""HTTPS/JSON client of the wallet platform: ``flows.ports.WalletPort`` over stdlib ``http.client``.

The API is in ``docs/protocols/wallet-api.md``; the house pattern is ``drivers/carrier.py`` (its connection kept,
a close under a request sent once more: ``_call``; thread-safe). What the caller may conclude:

====================  ============================================  ==========================================
raised                when                                          did the platform act?
====================  ============================================  ==========================================
LocalProtocolError    malformed order id / amount, or a 400         no
LinkError             refused, unreachable, 4xx, 5xx on a query     no
LinkTimeout           no answer after sending a write (micropay,    UNKNOWN: query the order, then cancel
                      cancel, refund); 5xx or lost connection       (cancel also reverses a paid order)
RemoteProtocolError   the answer is not JSON, lacks fields, or is   writes: UNKNOWN, as above
                      unsigned / wrongly signed
====================  ============================================  ==========================================

Every request is signed and every answer below HTTP 500 must carry a valid signature bound to the request's nonce
(``drivers.carrier_sign``, the same scheme as the carrier's, with the wallet platform's app id and secret): an
unsigned or forged "paid" is a wrong answer, never believed. ``https`` verifies the platform's certificate against
``ca_file`` (or the system's trust store); plain ``http`` only with ``insecure_plaintext=True`` (test benches).

>>> WalletClient("http://127.0.0.1:1", app_id="A1", app_secret=b"s", insecure_plaintext=True,
...              timeout_s=0.5).query("O1")
Traceback (most recent call last):
...
pos_errors.LinkError: wallet 127.0.0.1:1 unreachable (not sent): [Errno 111] Connection refused
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from drivers.carrier_sign import answer_string, sign_request, verify
from drivers.http_keep import ConnectionKeeper
from drivers.strict_json import decode as _decode
from flows.ports import WalletResult, WalletStatus
from pos_errors import ConfigError, LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError

__all__ = ["WalletClient"]

MAX_ANSWER = 256 * 1024
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_APP_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STATUSES: frozenset[str] = frozenset({"paid", "user_paying", "waiting", "failed", "cancelled", "refunded",
                                       "expired"})


def _no_crash_point(name: str) -> None:
    """The default crash-point hook: nothing happens."""


class WalletClient:
    """``WalletPort`` for a platform at ``base_url`` (``http://host:port[/prefix]``)."""

    def __init__(self, base_url: str, *, app_id: str, app_secret: bytes, ca_file: str = "",
                 insecure_plaintext: bool = False, timeout_s: float = 10.0, terminal_id: str = "",
                 crash_point: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] | None = None, keep_alive_s: float = 0.0) -> None:
        """``crash_point(name)`` is called right after each request left (``"wallet.sent"``); the composition
        root passes the crash harness's hook, the default does nothing. ``clock`` (Unix seconds) and ``nonce``
        exist for tests (stale and replayed requests). ``keep_alive_s``: how long the last connection is kept
        for the next request (a QR payment's polls); 0 = a new connection each."""
        self._crash_point = crash_point or _no_crash_point
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"wallet.url must be https://host[:port][/prefix], not {base_url!r}")
        if url.scheme == "http" and not insecure_plaintext:
            raise ConfigError(f"wallet.url {base_url} is plain http: use https (set wallet.ca_file), or "
                              "insecure_plaintext = true on a test bench only")
        if not isinstance(app_id, str) or not _APP_ID.fullmatch(app_id):
            raise ConfigError(f"wallet.app_id must be 1-64 of A-Z a-z 0-9 . _ -, not {app_id!r}")
        if not app_secret:
            raise ConfigError("wallet app secret is empty (wallet.app_secret_file)")
        self.app_id, self._secret, self._clock = app_id, app_secret, clock
        self._nonce = nonce or (lambda: secrets.token_hex(16))
        self._tls: ssl.SSLContext | None = None
        if url.scheme == "https":
            try:
                self._tls = ssl.create_default_context(cafile=ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"wallet.ca_file {ca_file}: not a readable PEM CA file ({exc})") from exc
        self.base_url, self.timeout_s, self.terminal_id = base_url, timeout_s, terminal_id
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        self._prefix = url.path.rstrip("/")
        if not 0 <= keep_alive_s <= 3600:
            raise ConfigError("wallet.keep_alive_s must be 0..3600 seconds (0 = a new connection per request)")
        self.connections = ConnectionKeeper(self._host, self._port, tls=self._tls, timeout_s=timeout_s,
                                            keep_alive_s=keep_alive_s)

    def close(self) -> None:
        """Close the kept connection, if any (the client stays usable)."""
        self.connections.close()

    def __repr__(self) -> str:
        return f"WalletClient({self.base_url!r})"

    # --- WalletPort ------------------------------------------------------------------------------------------

    def micropay(self, order_id: str, code: str, amount_minor: int, subject: str) -> WalletResult:
        _check(order_id, amount_minor)
        if not code or len(code) > 1024:
            raise LocalProtocolError("a payment code is 1-1024 characters")
        body = {"order_id": order_id, "auth_code": code, "amount_minor": amount_minor, "subject": subject}
        return self._order(self._write("/v1/micropay", body), order_id)

    def create_qr_order(self, order_id: str, amount_minor: int, subject: str, expires_s: int) -> WalletResult:
        _check(order_id, amount_minor)
        body = {"order_id": order_id, "amount_minor": amount_minor, "subject": subject, "expires_s": expires_s}
        return self._order(self._write("/v1/qr-orders", body), order_id)

    def query(self, order_id: str) -> WalletResult:
        _check(order_id)
        status, body = self._call("GET", f"/v1/orders/{quote(order_id, safe='')}")
        if status == 404 and isinstance(body, dict) and body.get("error") == "not_found":
            return WalletResult(order_id, "not_found")
        return self._order(self._expect(status, body), order_id)

    def cancel(self, order_id: str) -> WalletResult:
        _check(order_id)
        return self._order(self._write(f"/v1/orders/{quote(order_id, safe='')}/cancel", {}), order_id)

    def refund(self, order_id: str, amount_minor: int) -> WalletResult:
        _check(order_id, amount_minor)
        path = f"/v1/orders/{quote(order_id, safe='')}/refund"
        return self._order(self._write(path, {"amount_minor": amount_minor}), order_id)

    # --- one exchange ----------------------------------------------------------------------------------------

    def _write(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        status, body = self._call("POST", path, payload, unknown=True)
        try:
            return self._expect(status, body)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{exc}; outcome unknown") from exc

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None, *,
              unknown: bool = False) -> tuple[int, Any]:
        """One request on the kept connection (as the carrier's, ``drivers/http_keep.py``). One that meets the
        kept connection closed by the platform as it goes out (``StaleConnection``) is sent once more on a new
        connection, re-signed: every request may be — the query changes nothing, and micropay, QR order, cancel
        and refund are keyed by the terminal's order id (the platform answers a repeat with the stored order)."""
        return self.connections.sent_again_if_stale(lambda taken: self._exchange(method, path, payload, unknown, taken))

    def _exchange(self, method: str, path: str, payload: Mapping[str, Any] | None, unknown: bool,
                  taken: tuple[http.client.HTTPConnection, bool]) -> tuple[int, Any]:
        conn, reused = taken
        where = f"wallet {self._host}:{self._port}"
        failed: type[LinkError] = LinkTimeout if unknown else LinkError
        tail = "; outcome unknown" if unknown else ""
        headers = {"Accept": "application/json", "X-Terminal-Id": self.terminal_id}
        if self.connections.keep_alive_s <= 0:
            headers["Connection"] = "close"
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        target = self._prefix + path
        timestamp, nonce = str(int(self._clock())), self._nonce()
        headers.update({"X-App-Id": self.app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
                        "X-Signature": sign_request(self._secret, method, target, timestamp, nonce, self.app_id,
                                                    data or b"")})
        kept = False
        try:
            try:
                conn = self.connections.send(conn, reused, where, method, target, data, headers)
                self._crash_point("wallet.sent")
                response = self.connections.response(conn, reused, where)
                raw = response.read(MAX_ANSWER + 1)
            except TimeoutError as exc:
                raise LinkTimeout(f"{where}: no answer within {self.timeout_s} s; outcome unknown") from exc
            except (http.client.HTTPException, OSError) as exc:
                raise failed(f"{where}: connection lost ({type(exc).__name__}){tail}") from exc
            kept = len(raw) <= MAX_ANSWER
        finally:
            if kept:
                self.connections.give(conn, response)
            else:
                conn.close()
        if len(raw) > MAX_ANSWER:
            raise RemoteProtocolError(f"{where}: answer over {MAX_ANSWER} bytes{tail}", raw=raw[:64])
        body: Any = _decode(raw)
        if response.status >= 500:
            text = body.get("message", "") if isinstance(body, dict) else response.reason
            raise failed(f"{where}: platform error {response.status} {text}".rstrip() + tail)
        if not self._answer_signed(response, raw, nonce):
            if response.status in (401, 403):
                error = body.get("error", "") if isinstance(body, dict) else ""
                raise LinkError(f"{where} refused the request ({response.status} {error}, answer unsigned)")
            raise RemoteProtocolError(f"{where}: answer {response.status} unsigned or wrongly signed{tail}",
                                      tag="X-Signature")
        return response.status, body

    def _answer_signed(self, response: http.client.HTTPResponse, raw: bytes, request_nonce: str) -> bool:
        timestamp = response.getheader("X-Timestamp", "")
        nonce = response.getheader("X-Nonce", "")
        signature = response.getheader("X-Signature", "")
        if not (timestamp.isdigit() and nonce and signature) or len(signature) > 128:
            return False
        return verify(self._secret, answer_string(response.status, timestamp, nonce, request_nonce, raw), signature)

    @staticmethod
    def _expect(status: int, body: Any) -> dict[str, Any]:
        if 200 <= status < 300:
            if not isinstance(body, dict):
                raise RemoteProtocolError(f"wallet answered {status} without a JSON object")
            return body
        message = body.get("message", "") if isinstance(body, dict) else ""
        if status in (400, 422):
            raise LocalProtocolError(f"wallet refused the request ({status}): {message}")
        error = body.get("error", "") if isinstance(body, dict) else ""
        if status in (401, 403):  # the platform refused our credentials: nothing was done
            raise LinkError(f"wallet refused the request ({status} {error}): {message}")
        raise LinkError(f"wallet answered {status}: {message}".rstrip(": "))

    @staticmethod
    def _order(body: Mapping[str, Any], order_id: str) -> WalletResult:
        order = body.get("order")
        if not isinstance(order, dict):
            raise RemoteProtocolError("'order' missing or not an object", tag="order")
        fields = {k: order.get(k, "") for k in ("order_id", "status", "reason", "message", "wallet",
                                               "transaction_id")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise RemoteProtocolError("order fields must be strings", tag="order")
        if fields["order_id"] != order_id:
            raise RemoteProtocolError(f"asked about order {order_id}, the wallet answered about another",
                                      tag="order_id")
        if fields["status"] not in _STATUSES:
            raise RemoteProtocolError(f"unknown order status {fields['status']!r}", tag="status")
        status: WalletStatus = fields["status"]  # type: ignore[assignment]
        amount = order.get("amount_minor")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise RemoteProtocolError("order amount_minor must be an integer", tag="amount_minor")
        return WalletResult(order_id, status, fields["reason"], fields["message"], fields["wallet"],
                            fields["transaction_id"], amount, "CNY")  # this platform settles in CNY only


def _check(order_id: str, amount_minor: int | None = None) -> None:
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise LocalProtocolError(f"order id must be 1-64 of A-Z a-z 0-9 _ -, not {order_id!r}")
    if amount_minor is not None and (isinstance(amount_minor, bool) or not isinstance(amount_minor, int)
                                     or amount_minor <= 0):
        raise LocalProtocolError(f"amount_minor must be a positive int, not {amount_minor!r}")
