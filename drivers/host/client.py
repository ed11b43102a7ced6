"""Client of the acquirer host: ``flows.ports.HostPort`` over ISO 8583 with a 2-byte length prefix, over mutual
TLS (``drivers.host.tls``) with every message MACed under the working keys of a sign-on (``drivers.host.signon``).

Each exchange sends one frame and reads frames until the answer whose (MTI, STAN, TID) matches the request;
frames that decode but do not match (a late answer to an earlier STAN) are logged and discarded. The connection
stays open for the next exchange for up to ``keep_alive_s`` (``drivers.host.transport`` says when it is reused,
when it is replaced, and why nothing is ever sent twice); 0 = a new connection per exchange. What the caller
may conclude from each outcome:

===================  =============================================  =========================================
raised               when                                           did the host get the request?
===================  =============================================  =========================================
LocalProtocolError   the request cannot be encoded                  no: nothing was sent
LinkError            connect refused, reset, unreachable or timed   no: it failed before the whole frame was
                     out (``connect_timeout_s``); send failed       handed to the kernel, so the host never
                                                                    had a complete message
LinkTimeout          no matching answer within ``timeout_s`` of     unknown: it may have been processed; the
                     the send, or the connection dropped after it   caller reverses (or repeats a reversal)
RemoteProtocolError  an answer arrived but cannot be decoded, or    unknown, exactly like LinkTimeout: the
                     it lacks a valid field 39                      host got something; reverse
===================  =============================================  =========================================

``LinkTimeout`` is a ``LinkError``, so catch it first. ``LinkSecurityError`` (a refused TLS handshake or
sign-on) is a ``LinkError``: nothing was processed. An answer whose MAC is missing or wrong is a
``RemoteProtocolError``, like garbage: the caller reverses — so is an ``A0`` (key error) without a valid MAC
to a purchase, reversal or advice, after a new sign-on (``drivers.host.session_link``). A 0210 with 94
(duplicate transmission) to a purchase is ``StanInUse`` (a ``LinkError``: not processed, nothing to reverse —
the STAN belongs to an older message); the client first asks the host for its view of our counters (echo), so
the caller's next STAN is fresh.
An advice answered 94 is returned as its code, after the same echo (``flows.saf`` renumbers it once).
The 0810 answers to sign-on and echo carry that view (field 61, ``drivers.host.counters``): kept as
``host_view`` and handed to ``on_host_view`` (the composition root advances the journal's counters with it).
Its only state between calls is the working keys of the last sign-on (one sign-on at a time) and the host's view;
it may be used from several threads. It logs MTI, STAN, masked PAN
and response code only; never the PAN, track, PIN block or a key.

>>> client = HostClient("127.0.0.1", 1, terminal_id="T0000001", merchant_id="M001", connect_timeout_s=0.5)
>>> client.echo()  # nothing listens on port 1
False
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import ssl
import threading
from collections.abc import Callable

from drivers.host.advice import build_advice, build_refund
from drivers.host.answer_check import checked
from drivers.host.counters import HostView, is_ahead, parse_view
from drivers.host.dukpt_link import DukptMacer, UnmacedKeyError, dukpt_exchange
from drivers.host.header import FrameHeader
from drivers.host.messages import (
    Fields,
    build_auth_request,
    build_echo,
    build_reversal,
    expected_key,
    pack,
    parse_auth_response,
    response_code,
)
from drivers.host.session_link import after_key_error, renumbered, session_exchange
from drivers.host.settlement import build_batch_upload, build_settlement
from drivers.host.signon import (
    KEY_ERROR_CODE,
    TerminalKeys,
    accept_keys,
    build_sign_off,
    build_sign_on,
    verify_mac,
)
from drivers.host.spec import describe_response
from drivers.host.transport import Transport
from flows.ports import (
    AdviceRequest,
    AuthRequest,
    AuthResponse,
    BatchUploadItem,
    RefundRequest,
    ReversalRequest,
    SettlementRequest,
)
from pos_errors import ConfigError, LinkError, LinkFault, LinkSecurityError, PosError, RemoteProtocolError, StanInUse

__all__ = ["HostClient"]

log = logging.getLogger(__name__)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class HostClient:
    """``HostPort`` implementation for one acquirer endpoint.

    Args:
        host, port: the acquirer's TCP endpoint.
        timeout_s: how long to wait for the answer after the request was sent (then LinkTimeout).
        connect_timeout_s: how long a TCP connect may take (then LinkError: nothing was sent).
        terminal_id: field 41 (1..8 characters) unless the request carries its own.
        merchant_id: field 42 (1..15 characters) unless the request carries its own.
        batch_number: field 60; the settlement flow may change the attribute between batches.
        clock: current time for field 7 of reversals and echoes (UTC by default).
        next_stan: STAN source for echoes (the journal's, ideally); a private counter otherwise.
        crash_point: called as ``crash_point("host.sent")`` right after each request left; the composition root
            passes the crash harness's hook (``drivers.crashpoint.reached``), the default does nothing.
        tls: the mutual-TLS client context (``drivers.host.tls.client_context``); None = plain TCP (test benches
            only, the composition root refuses it unless ``insecure_plaintext``).
        server_name: the host name the host's certificate must name (defaults to ``host``).
        tmk: the terminal master key (16 bytes): every message is MACed under the MAK of a sign-on
            (``drivers.host.signon``); None = no MACs (the codec's own tests).
        header: the dialect's TPDU and application header around every message (``drivers.host.header``).
        keep_alive_s: how long an idle connection is kept for the next exchange (0: one per exchange).

    Raises:
        ConfigError: a parameter that can never work (empty terminal id, non-positive timeout).
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 15.0, connect_timeout_s: float = 3.0,
                 terminal_id: str, merchant_id: str, batch_number: int = 1,
                 clock: Callable[[], dt.datetime] = _utc_now,
                 next_stan: Callable[[], int] | None = None,
                 crash_point: Callable[[str], None] | None = None, tls: ssl.SSLContext | None = None,
                 server_name: str | None = None, tmk: bytes | None = None,
                 header: FrameHeader | None = None, keep_alive_s: float = 0.0) -> None:
        if not 0 < len(terminal_id) <= 8:
            raise ConfigError("host.terminal_id must be 1..8 characters")
        if not 0 < len(merchant_id) <= 15:
            raise ConfigError("host.merchant_id must be 1..15 characters")
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ConfigError("host.timeout_s and host.connect_timeout_s must be positive")
        if not 0 <= keep_alive_s <= 3600:
            raise ConfigError("host.keep_alive_s must be 0..3600 seconds (0 = a new connection per message)")
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.terminal_id = terminal_id
        self.merchant_id = merchant_id
        self.batch_number = batch_number
        self._clock = clock
        self._next_stan = next_stan if next_stan is not None else self._private_stan
        self._stan_counter = itertools.count(1)
        self._stan_lock = threading.Lock()
        if tmk is not None and len(tmk) != 16:
            raise ConfigError("the terminal master key must be 16 bytes (double-length TDES)")
        self.server_name = server_name or host
        self._transport = Transport(host, port, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, tls=tls,
                                    server_name=server_name, crash_point=crash_point, header=header,
                                    keep_alive_s=keep_alive_s)
        self._tmk = tmk
        self._keys: TerminalKeys | None = None
        self._dukpt: DukptMacer | None = None
        self._signed_on_day: dt.date | None = None
        self._keys_lock = threading.Lock()
        self._sign_on_lock = threading.Lock()
        self.host_view: HostView | None = None  # the host's last view of our counters (0810 field 61)
        self.on_host_view: Callable[[HostView], None] | None = None  # told each view (composition root: journal)
        self.echo_failure: PosError | None = None  # why the last echo failed (diagnostics name an unMACed A0)

    def __repr__(self) -> str:
        return f"HostClient({self.host}:{self.port}, tid={self.terminal_id})"

    def close(self) -> None:
        """Close the kept connection, if any (the client stays usable: the next exchange opens a new one)."""
        self._transport.close()

    @property
    def connections(self) -> tuple[int, int]:
        """(connections opened, of which resumed a TLS session) since the client was made."""
        return self._transport.connections, self._transport.resumed

    # --- HostPort -------------------------------------------------------------------------------------------

    def authorize(self, request: AuthRequest) -> AuthResponse:
        """0200 purchase → 0210.

        Raises:
            LinkError: not sent (see the module table).
            LinkTimeout, RemoteProtocolError: outcome unknown, the caller must reverse.
            LocalProtocolError: the request is invalid, nothing was sent.
        """
        fields = build_auth_request(request, terminal_id=self.terminal_id, merchant_id=self.merchant_id,
                                    batch_number=self.batch_number)
        log.info("0200 stan=%06d pan=%s amount=%d", request.stan, request.masked_pan, request.amount_minor)
        response = parse_auth_response(checked(fields, self._exchange(fields)))
        if response.response_code == "94":  # this purchase was never sent before: the STAN is an older message's
            log.warning("0210 stan=%06d rc=94: the host already has this STAN; asking for its view", request.stan)
            self.echo()
            raise StanInUse(f"0210 stan={request.stan:06d} duplicate transmission (94): not processed")
        log.info("0210 stan=%06d rc=%s (%s) auth=%s rrn=%s", request.stan, response.response_code,
                 describe_response(response.response_code), response.auth_code, response.rrn)
        return response

    def reverse(self, request: ReversalRequest) -> str:
        """0400 (0401 when ``request.repeat``) → 0410; returns field 39 of the answer.

        Any answer means the host has the reversal; the same errors as ``authorize`` mean it may not, so the
        caller repeats it (as 0401, same STAN) until it is answered.
        """
        fields = build_reversal(request, transmitted_at=self._clock(), terminal_id=self.terminal_id,
                                merchant_id=self.merchant_id, batch_number=self.batch_number)
        log.info("%s stan=%06d original_stan=%06d reason=%s", fields["t"], request.stan,
                 request.original.stan, request.reason_code)
        code = response_code(checked(fields, self._exchange(fields)))
        log.info("0410 stan=%06d rc=%s (%s)", request.stan, code, describe_response(code))
        return code

    def settle(self, request: SettlementRequest) -> str:
        """0500 → 0510: "00" when the host's totals for the batch equal ours, "95" when they differ."""
        fields = build_settlement(request, transmitted_at=self._clock(), terminal_id=self.terminal_id,
                                  merchant_id=self.merchant_id)
        t = request.totals
        log.info("0500 stan=%06d batch=%06d sales=%d/%d%s", request.stan, t.batch, t.sale_count, t.sale_minor,
                 " (after upload)" if request.after_upload else "")
        code = response_code(self._exchange(fields))
        log.info("0510 stan=%06d rc=%s (%s)", request.stan, code, describe_response(code))
        return code

    def upload(self, item: BatchUploadItem) -> str:
        """0320 → 0330: one captured sale of the batch, sent again after a totals mismatch."""
        fields = build_batch_upload(item, transmitted_at=self._clock(), terminal_id=self.terminal_id,
                                    merchant_id=self.merchant_id)
        log.info("0320 stan=%06d original_stan=%06d amount=%d", item.stan, item.original_stan, item.amount_minor)
        return response_code(self._exchange(fields))

    def advise(self, request: AdviceRequest) -> str:
        """0220 (0221 when ``request.repeat``) → 0230: a payment the card approved offline; returns field 39.
        Not acknowledged (LinkError, RemoteProtocolError): it stays queued and is repeated as 0221."""
        fields = build_advice(request, terminal_id=self.terminal_id, merchant_id=self.merchant_id,
                              batch_number=self.batch_number)
        log.info("%s stan=%06d pan=%s amount=%d", fields["t"], request.auth.stan, request.auth.masked_pan,
                 request.auth.amount_minor)
        code = response_code(checked(fields, self._exchange(fields)))
        log.info("0230 stan=%06d rc=%s", request.auth.stan, code)
        if code == "94":  # another payment has this STAN at the host: its view moves our counters past it first
            self.echo()
        return code

    def refund(self, request: RefundRequest) -> AuthResponse:
        """0200 with processing code 200000 → 0210, by reference to the original (no PAN)."""
        fields = build_refund(request, transmitted_at=self._clock(), terminal_id=self.terminal_id,
                              merchant_id=self.merchant_id, batch_number=self.batch_number)
        log.info("0200 refund stan=%06d original_stan=%06d amount=%d", request.stan, request.original.stan,
                 request.original.amount_minor)
        response = parse_auth_response(checked(fields, self._exchange(fields)))
        log.info("0210 refund stan=%06d rc=%s", request.stan, response.response_code)
        return response

    def echo(self) -> bool:
        """0800 echo test (field 70 = 301) → 0810. True when answered; never raises for link trouble."""
        stan = self._next_stan()
        fields = build_echo(stan, transmitted_at=self._clock(), terminal_id=self.terminal_id)
        try:
            answer = self._exchange(fields)
        except (LinkError, RemoteProtocolError) as exc:
            log.warning("0800 stan=%06d: no echo from %s:%d: %s", stan, self.host, self.port, exc)
            self.echo_failure = exc
            return False
        self.echo_failure = None
        log.info("0810 stan=%06d rc=%s", stan, answer.get("39", "--"))
        if self._tmk is not None or self._dukpt is not None:  # a view only from an answer whose MAC verified
            self._take_view(answer)
        return True

    def _take_view(self, answer: Fields) -> None:
        """Keep the host's view of our counters and pass it on; a malformed one is logged and changes nothing."""
        try:
            view = parse_view(answer)
        except RemoteProtocolError as exc:
            log.warning("%s: %s: ignored", answer.get("t"), exc)
            return
        if view is None:
            return
        self.host_view = view
        if is_ahead(view.batch, self.batch_number):
            self.batch_number = view.batch
        log.info("host's view: last stan=%06d batch=%06d invoice=%06d", view.stan, view.batch, view.invoice)
        try:
            if self.on_host_view is not None:
                self.on_host_view(view)
        except PosError as exc:  # the journal could not record it (disk full): it says so itself
            log.warning("host's view not applied: %s", exc)

    # --- sign-on (master/session keys) ---------------------------------------------------------------------

    @property
    def secured(self) -> bool:
        """True when messages are MACed under sign-on keys (a TMK is configured)."""
        return self._tmk is not None

    @property
    def signed_on(self) -> bool:
        """True while working keys from a sign-on are held (always False without a TMK)."""
        return self._keys is not None

    def sign_on(self) -> None:
        """0800 sign-on (签到) → 0810 with PIK and MAK under the TMK; both check values and the answer's MAC
        under the new MAK are verified before the keys replace the old ones.

        Raises:
            LinkSecurityError: TLS refused, sign-on refused (``SIGN_ON``) or a check value wrong (``KEY_CHECK``).
            LinkError, RemoteProtocolError: no usable answer.
        """
        if self._tmk is None:
            raise ConfigError("sign-on needs a terminal master key (host.tmk_file)")
        stan = self._next_stan()
        fields = build_sign_on(stan, transmitted_at=self._clock(), terminal_id=self.terminal_id,
                               batch_number=self.batch_number)
        answer, raw = self._round_trip(pack(fields), expected_key(fields))
        code = answer.get("39", "")
        if code != "00" or "62" not in answer:
            raise LinkSecurityError(f"sign-on refused by the acquirer (code {code or '--'})", LinkFault.SIGN_ON)
        keys = accept_keys(answer["62"], self._tmk)
        try:
            verify_mac(raw, keys.mak, answer)
        except RemoteProtocolError as exc:
            raise LinkSecurityError(f"sign-on answer: {exc}", LinkFault.SIGN_ON) from exc
        with self._keys_lock:
            self._keys, self._signed_on_day = keys, self._clock().date()
        log.info("0810 stan=%06d signed on: working keys verified", stan)
        self._take_view(answer)

    def sign_off(self) -> None:
        """0800 sign-off (MACed) → 0810; the keys are forgotten whatever the answer. No-op when not signed on."""
        keys, self._keys = self._keys, None
        if keys is None:
            return
        stan = self._next_stan()
        fields = build_sign_off(stan, transmitted_at=self._clock(), terminal_id=self.terminal_id,
                                batch_number=self.batch_number)
        self._secured(fields, keys)
        log.info("0810 stan=%06d signed off", stan)

    def pin_key(self) -> tuple[bytes, bytes]:
        """The PIK of the current sign-on as the host delivered it (under the TMK) and its check value, for the
        PIN pad (signs on first when needed; errors as ``sign_on``). The terminal never holds the PIK in clear."""
        keys = self._session()
        return keys.pik_under_tmk, keys.pik_kcv

    def _session(self) -> TerminalKeys:
        keys = self._keys
        if keys is None or self._signed_on_day != self._clock().date():  # and at the start of each business day
            with self._sign_on_lock:  # one sign-on at a time: a second thread uses the keys the first one got
                if self._keys is keys:
                    self.sign_on()
            keys = self._keys
        if keys is None:  # pragma: no cover - sign_on either sets the keys or raises
            raise LinkSecurityError("not signed on", LinkFault.SIGN_ON)
        return keys

    # --- one exchange ---------------------------------------------------------------------------------------

    def use_dukpt_mac(self, macer: DukptMacer) -> None:
        """``key_scheme = "dukpt"``: from now on every message is MACed by ``macer`` (the PIN pad, which holds
        the DUKPT key) with field 53 = the transaction's KSN (``drivers.host.dukpt_link``); no sign-on."""
        self._dukpt = macer

    def _exchange(self, fields: Fields) -> Fields:
        if self._dukpt is not None:
            return dukpt_exchange(fields, self._dukpt, self._round_trip)
        if self._tmk is None:
            return self._round_trip(pack(fields), expected_key(fields))[0]
        try:
            answer: Fields | UnmacedKeyError = self._secured(fields, self._session())
        except UnmacedKeyError as exc:  # not authenticated: drivers.host.session_link says what follows
            answer = exc
        if self._transport.sign_on_requested:  # the answer's header asks for a new sign-on: before the next message
            self._transport.sign_on_requested = False
            log.info("%s stan=%s: the acquirer asks for a new sign-on", fields["t"], fields.get("11"))
            self._keys = None
        if not isinstance(answer, UnmacedKeyError) and answer.get("39") != KEY_ERROR_CODE:
            return answer
        log.warning("%s stan=%s: acquirer reports a key error (A0)%s: signing on again", fields["t"],
                    fields.get("11"), " without a valid MAC" if isinstance(answer, UnmacedKeyError) else "")
        self._keys = None
        return after_key_error(fields, answer, self._session, self._secured,
                               lambda sent: renumbered(sent, self._next_stan(), self._clock()))

    def _secured(self, fields: Fields, keys: TerminalKeys) -> Fields:
        """One MACed exchange (``session_link.session_exchange``): a missing or wrong MAC is no answer."""
        return session_exchange(fields, keys, self._round_trip)

    def _round_trip(self, message: bytes, want: tuple[str, str, str]) -> tuple[Fields, bytes]:
        return self._transport.round_trip(message, want)

    def _private_stan(self) -> int:
        with self._stan_lock:
            return (next(self._stan_counter) - 1) % 999999 + 1
