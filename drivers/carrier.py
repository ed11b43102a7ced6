"""HTTP/JSON client of the IoT-SIM carrier platform: ``flows.ports.CarrierPort`` over stdlib ``http.client``.

The API is in ``docs/protocols/carrier-api.md``. Its connection is kept (``drivers.http_keep``; a close under a
request: ``_call``); it may be used from several threads. What the caller may conclude from each outcome:

====================  ===================================================  ===================================
raised                when                                                 did the platform get the request?
====================  ===================================================  ===================================
LocalProtocolError    a malformed number / order id / amount, or the       no, or it refused it: nothing
                      platform answered 400 (it refuses the request)       was applied
LinkError             refused, unreachable, connect timed out, 4xx         no (reads: not answered)
LinkError             5xx on a read; connection lost during a read         a read changes nothing
LinkTimeout           no answer within ``timeout_s`` after sending;        UNKNOWN: query ``order_status``
                      create_topup: 5xx or connection lost after sending   before any retry
RemoteProtocolError   the answer is not JSON, lacks fields, names another  create_topup: UNKNOWN, as above
                      SIM / order, is too deep / too big, or its
                      signature is missing or wrong (``X-Signature``)
====================  ===================================================  ===================================

Every request is signed (``drivers.carrier_sign``: app id, timestamp, nonce, SHA-256 of the body, HMAC-SHA256
with the app secret) and every answer below HTTP 500 must carry a valid signature bound to the request's nonce;
an unsigned or wrongly signed answer is never believed. ``https`` verifies the platform's certificate against
``ca_file`` (or the system's trust store); plain ``http`` only with ``insecure_plaintext=True`` (tests).

A 409 conflict (the order id is already used for a different top-up) comes back as a ``failed`` result: this
request applied nothing. ``LinkTimeout`` is a ``LinkError``, so catch it first.

>>> client = CarrierClient("http://127.0.0.1:1", app_id="A1", app_secret=b"s", insecure_plaintext=True,
...                        timeout_s=0.5)
>>> client.lookup_sim("1064900000001")
Traceback (most recent call last):
...
pos_errors.LinkError: carrier 127.0.0.1:1 unreachable (not sent): [Errno 111] Connection refused
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
from drivers.secret_file import read_private
from drivers.strict_json import decode as _decode
from flows.ports import Plan, ReverseResult, SimInfo, TopupResult, TopupStatus
from pos_errors import ConfigError, LinkError, LinkTimeout, LocalProtocolError, RemoteProtocolError

__all__ = ["CarrierClient", "normalise_number", "read_app_secret"]

MAX_ANSWER = 256 * 1024
_APP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NUMBER = re.compile(r"[0-9A-Z]{19,20}|\d{11}|\d{13}")
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ORDER_STATUSES: Mapping[str, TopupStatus] = {"applied": "applied", "pending": "pending", "failed": "failed"}
CONFLICT_MESSAGE = "order id already used for a different top-up (409)"  # technical: shown inside topup.refused


def normalise_number(number: str) -> str:
    """ICCID or MSISDN as the platform expects it: no spaces, upper case. Raises LocalProtocolError.

    >>> normalise_number(" 8986 0424 0000 0000 0017 ")
    '89860424000000000017'
    """
    cleaned = re.sub(r"[\s-]", "", number).upper()
    if not _NUMBER.fullmatch(cleaned):
        raise LocalProtocolError(f"not an ICCID (19-20 characters) or MSISDN (11/13 digits): {number!r}")
    return cleaned


def read_app_secret(path: str, section: str = "carrier") -> bytes:
    """The app secret from ``path`` (read at boot; messages name the setting ``<section>.app_secret_file``):
    the file must be a regular file of mode 0600 (or 0400) owned by us, holding the secret on one line (at least
    16 characters). Raises ConfigError."""
    key = f"{section}.app_secret_file"
    secret = read_private(path, key, 4096)
    if len(secret) < 16 or len(secret) > 4096 or b"\n" in secret:
        raise ConfigError(f"{key} {path} must hold one secret of 16-4096 characters")
    return secret


def _no_crash_point(name: str) -> None:
    """The default crash-point hook: nothing happens."""


class CarrierClient:
    """``CarrierPort`` for a platform at ``base_url`` (``https://host:port[/prefix]``)."""

    def __init__(self, base_url: str, *, app_id: str, app_secret: bytes, ca_file: str = "",
                 insecure_plaintext: bool = False, timeout_s: float = 10.0, terminal_id: str = "",
                 crash_point: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] | None = None, keep_alive_s: float = 0.0) -> None:
        """``crash_point(name)`` is called right after each request left (``"carrier.sent"``); the composition
        root passes the crash harness's hook, the default does nothing. ``clock`` (Unix seconds) and ``nonce``
        exist for tests (stale and replayed requests). ``keep_alive_s``: how long the last connection is kept
        for the next request (HTTP/1.1 keep-alive, ``drivers.http_keep``); 0 = a new connection each."""
        self._crash_point = crash_point or _no_crash_point
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"carrier.url must be https://host[:port][/prefix], not {base_url!r}")
        if url.scheme == "http" and not insecure_plaintext:
            raise ConfigError(f"carrier.url {base_url} is plain http: use https (set carrier.ca_file), or "
                              "insecure_plaintext = true on a test bench only")
        if not isinstance(app_id, str) or not _APP_ID.fullmatch(app_id):
            raise ConfigError(f"carrier.app_id must be 1-64 of A-Z a-z 0-9 . _ -, not {app_id!r}")
        if not app_secret:
            raise ConfigError("carrier app secret is empty (carrier.app_secret_file)")
        self.app_id = app_id
        self._secret = app_secret
        self._clock = clock
        self._nonce = nonce or (lambda: secrets.token_hex(16))
        self._tls: ssl.SSLContext | None = None
        if url.scheme == "https":
            try:
                self._tls = ssl.create_default_context(cafile=ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"carrier.ca_file {ca_file}: not a readable PEM CA file ({exc})") from exc
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.terminal_id = terminal_id
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        if not 0 <= keep_alive_s <= 3600:
            raise ConfigError("carrier.keep_alive_s must be 0..3600 seconds (0 = a new connection per request)")
        self.connections = ConnectionKeeper(self._host, self._port, tls=self._tls, timeout_s=timeout_s,
                                            keep_alive_s=keep_alive_s)

    def close(self) -> None:
        """Close the kept connection, if any (the client stays usable)."""
        self.connections.close()

    def __repr__(self) -> str:
        return f"CarrierClient({self.base_url!r}, app_id={self.app_id!r}, terminal_id={self.terminal_id!r})"

    # --- CarrierPort ---------------------------------------------------------------------------------------

    def lookup_sim(self, number: str) -> SimInfo | None:
        """The SIM with this ICCID or MSISDN, or None when the platform does not know it."""
        wanted = normalise_number(number)
        status, body = self._call("GET", f"/v1/sims/{quote(wanted, safe='')}")
        if status == 404 and _error(body) == "not_found":
            return None
        sim = _object(self._expect(status, body, 200), "sim")
        info = SimInfo(iccid=_str(sim, "iccid"), msisdn=_str(sim, "msisdn"), status=_str(sim, "status"),
                       plan_name=_str(sim, "plan_name"), balance_minor=_int(sim, "balance_minor"),
                       data_left_mb=_int(sim, "data_left_mb"), expiry=_str(sim, "expiry"),
                       carrier=_str(sim, "carrier", "SIM-CARRIER"), data_used_mb=_opt_int(sim, "data_used_mb") or 0,
                       sms_left=_opt_int(sim, "sms_left") or 0, voice_left_min=_opt_int(sim, "voice_left_min") or 0)
        if wanted not in (info.iccid.upper(), info.msisdn):
            raise RemoteProtocolError(f"asked for {wanted}, the carrier answered about another SIM",
                                      tag="sim")
        return info

    def list_plans(self, iccid: str) -> list[Plan]:
        """Plans this SIM may buy, in the platform's order; empty when the SIM is unknown."""
        wanted = normalise_number(iccid)
        status, body = self._call("GET", f"/v1/sims/{quote(wanted, safe='')}/plans")
        if status == 404 and _error(body) == "not_found":
            return []
        plans = self._expect(status, body, 200).get("plans")
        if not isinstance(plans, list):
            raise RemoteProtocolError("carrier answer: plans missing or not a list", tag="plans")
        return [_plan(item) for item in plans]

    def create_topup(self, order_id: str, iccid: str, plan_id: str, amount_minor: int, *,
                     funding_ref: str = "") -> TopupResult:
        """POST the order. Sending the same order again is safe: the platform never applies it twice.
        ``funding_ref`` names the payment that funds it (acquirer RRN or wallet transaction id).

        Raises LinkTimeout or RemoteProtocolError when the outcome is unknown (see the module table).
        """
        _check_order_id(order_id)
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise LocalProtocolError(f"amount_minor must be a positive int, not {amount_minor!r}")
        if not isinstance(funding_ref, str) or len(funding_ref) > 64 or not funding_ref.isprintable():
            raise LocalProtocolError(f"funding_ref must be up to 64 printable characters, not {funding_ref!r}")
        payload: dict[str, Any] = {"order_id": order_id, "iccid": normalise_number(iccid), "plan_id": plan_id,
                                   "amount_minor": amount_minor}
        if funding_ref:
            payload["funding_ref"] = funding_ref
        status, body = self._call("POST", "/v1/orders", payload, outcome_unknown_after_send=True)
        if status == 409:
            return TopupResult(order_id, "failed", None, CONFLICT_MESSAGE)
        return _order(self._expect(status, body, 200, 201, unknown=True), order_id)

    def order_status(self, order_id: str) -> TopupResult:
        """The platform's word on an order sent earlier; ``not_found`` when it never arrived."""
        _check_order_id(order_id)
        status, body = self._call("GET", f"/v1/orders/{quote(order_id, safe='')}")
        if status == 404 and _error(body) == "not_found":
            return TopupResult(order_id, "not_found", None, _message(body))
        return _order(self._expect(status, body, 200), order_id)

    def reverse_topup(self, order_id: str, reason: str = "") -> ReverseResult:
        """``POST /v1/topups/{order_id}/reverse``: take an applied top-up back off the SIM. 200 ``reversed``
        (also when it was reversed before); 409 ``not_reversible`` with the carrier's reason (``used``,
        ``window_passed``, ``not_applied``); 404 ``not_found``. Raises LinkTimeout when the outcome is unknown."""
        _check_order_id(order_id)
        if not isinstance(reason, str) or len(reason) > 64 or not reason.isprintable():
            raise LocalProtocolError(f"reason must be up to 64 printable characters, not {reason!r}")
        status, body = self._call("POST", f"/v1/topups/{quote(order_id, safe='')}/reverse", {"reason": reason},
                                  outcome_unknown_after_send=True)
        if status == 404 and _error(body) == "not_found":
            return ReverseResult(order_id, False, "not_found", _message(body))
        if status == 409 and _error(body) == "not_reversible":
            why = body.get("reason") if isinstance(body, dict) else None
            return ReverseResult(order_id, False, why[:32] if isinstance(why, str) and why else "refused",
                                 _message(body))
        answer = _object(self._expect(status, body, 200, unknown=True), "reversal")
        if _str(answer, "order_id") != order_id:
            raise RemoteProtocolError(f"asked to reverse order {order_id}, the carrier answered about another",
                                      tag="order_id")
        if _str(answer, "status") != "reversed":
            raise RemoteProtocolError(f"carrier answer: reversal status {answer['status']!r:.40} is not "
                                      "'reversed'; outcome unknown", tag="status")
        message = answer.get("message")
        return ReverseResult(order_id, True, "", message[:200] if isinstance(message, str) else "")

    def health(self) -> bool:
        """True when the platform answers ``GET /v1/health`` with 200 (diagnostics). Raises LinkError."""
        status, _body = self._call("GET", "/v1/health")
        return status == 200

    # --- one exchange --------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None, *,
              outcome_unknown_after_send: bool = False) -> tuple[int, Any]:
        """Send one request; returns (HTTP status, decoded JSON or the raw bytes when not JSON). On a kept
        connection a failed *send* is repeated once on a new one (the platform never had the whole request).
        A kept connection the platform closed as the request went out (``StaleConnection``: no answer byte) is
        sent once more on a new connection, re-signed: every carrier request may be — the GETs change nothing,
        both POSTs are keyed by the terminal's order id, applied or reversed at most once by the platform."""
        return self.connections.sent_again_if_stale(
            lambda taken: self._exchange(method, path, payload, outcome_unknown_after_send, taken))

    def _exchange(self, method: str, path: str, payload: Mapping[str, Any] | None, outcome_unknown_after_send: bool,
                  taken: tuple[http.client.HTTPConnection, bool]) -> tuple[int, Any]:
        conn, reused = taken
        where = f"carrier {self._host}:{self._port}"
        # After the request left, a write (POST) may have been applied: report it as outcome unknown.
        failed: type[LinkError] = LinkTimeout if outcome_unknown_after_send else LinkError
        tail = "; outcome unknown" if outcome_unknown_after_send else ""
        headers = {"Accept": "application/json", "User-Agent": "iotsim-pos/0.1"}
        if self.connections.keep_alive_s <= 0:
            headers["Connection"] = "close"
        if self.terminal_id:
            headers["X-Terminal-Id"] = self.terminal_id
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
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
                self._crash_point("carrier.sent")
                response = self.connections.response(conn, reused, where)
                raw = response.read(MAX_ANSWER + 1)
                declared = response.getheader("Content-Length", "")
                if len(raw) <= MAX_ANSWER and declared.isdigit() and len(raw) < int(declared):  # short read
                    raise http.client.IncompleteRead(raw, int(declared) - len(raw))
            except TimeoutError as exc:
                raise LinkTimeout(f"{where}: no answer within {self.timeout_s} s; outcome unknown") from exc
            except (http.client.RemoteDisconnected, http.client.IncompleteRead, OSError) as exc:
                raise failed(f"{where}: connection lost ({exc!r}){tail}") from exc
            except http.client.HTTPException as exc:
                raise RemoteProtocolError(f"{where} did not answer HTTP: {exc!r}") from exc
            kept = len(raw) <= MAX_ANSWER
        finally:
            if kept:
                self.connections.give(conn, response)
            else:
                conn.close()
        if len(raw) > MAX_ANSWER:
            raise RemoteProtocolError(f"{where}: answer over {MAX_ANSWER} bytes", raw=raw[:64])
        body = _decode(raw)
        if response.status >= 500:  # never believed either way: a read failed, a write's outcome is unknown
            text = _message(body) or response.reason
            raise failed(f"{where}: platform error {response.status}: {text}{tail}")
        if not self._answer_signed(response, raw, nonce):
            if response.status in (401, 403):
                raise LinkError(f"{where} refused the request ({response.status} {_error(body) or ''}, "
                                f"answer unsigned): {_message(body)}")
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

    def _expect(self, status: int, body: Any, *ok: int, unknown: bool = False) -> dict[str, Any]:
        """The JSON object of a 2xx answer; maps 4xx to our errors."""
        if status in ok:
            if not isinstance(body, dict):
                raise RemoteProtocolError(f"carrier answered {status} without a JSON object"
                                          + ("; outcome unknown" if unknown else ""),
                                          raw=body[:200] if isinstance(body, bytes) else None)
            return body
        if status in (400, 422):
            raise LocalProtocolError(f"carrier refused the request ({status} {_error(body)}): "
                                     f"{_message(body)}")
        if 400 <= status < 500:
            raise LinkError(f"carrier answered {status} {_error(body) or ''}: {_message(body)}".rstrip(": "))
        raise RemoteProtocolError(f"carrier answered unexpected HTTP {status}"
                                  + ("; outcome unknown" if unknown else ""))


def _error(body: Any) -> str | None:
    value = body.get("error") if isinstance(body, dict) else None
    return value[:64] if isinstance(value, str) else None


def _message(body: Any) -> str:
    """The platform's text for a person, cut to 200 characters (it ends up in logs and on the screen)."""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return ""


def _check_order_id(order_id: str) -> None:
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise LocalProtocolError(f"order id must be 1-64 of A-Z a-z 0-9 _ -, not {order_id!r}")


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"carrier answer: {key!r} missing or not an object", tag=key)
    return value


def _str(obj: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise RemoteProtocolError(f"carrier answer: {key!r} missing or not a string", tag=key)
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int:  # JSON gives int, never a subclass: a bool (True) is refused here too
        raise RemoteProtocolError(f"carrier answer: {key!r} missing or not an integer", tag=key)
    return value


def _opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key)


def _plan(item: Any) -> Plan:
    if not isinstance(item, dict):
        raise RemoteProtocolError("carrier answer: a plan is not an object", tag="plans")
    promotion = item.get("promotion")
    if promotion is not None and not isinstance(promotion, str):
        raise RemoteProtocolError("carrier answer: 'promotion' not a string", tag="promotion")
    return Plan(plan_id=_str(item, "plan_id"), name=_str(item, "name"), name_zh=_str(item, "name_zh"),
                period_months=_int(item, "period_months"), price_minor=_int(item, "price_minor"),
                data_mb=_int(item, "data_mb"), sms=_opt_int(item, "sms") or 0,
                voice_min=_opt_int(item, "voice_min") or 0, promotion=promotion,
                promo_price_minor=_opt_int(item, "promo_price_minor"),
                bonus_data_mb=_opt_int(item, "bonus_data_mb") or 0,
                bonus_credit_minor=_opt_int(item, "bonus_credit_minor") or 0)


def _order(body: Mapping[str, Any], order_id: str) -> TopupResult:
    order = _object(body, "order")
    if _str(order, "order_id") != order_id:
        raise RemoteProtocolError(f"asked about order {order_id}, the carrier answered about another",
                                  tag="order_id")
    status = _ORDER_STATUSES.get(_str(order, "status"))
    if status is None:
        raise RemoteProtocolError(f"carrier answer: order status {order['status']!r:.40} is not one of "
                                  f"{list(_ORDER_STATUSES)}", tag="status")
    message = order.get("message")
    reversed_at = order.get("reversed_at")  # null until the top-up was taken back (docs/protocols/carrier-api.md)
    if reversed_at is not None and not (isinstance(reversed_at, str) and reversed_at):
        raise RemoteProtocolError(f"carrier answer: reversed_at {reversed_at!r:.40} is not a time", tag="reversed_at")
    return TopupResult(order_id, status, _opt_int(order, "balance_minor"),
                       message if isinstance(message, str) else "", reversed=reversed_at is not None)
