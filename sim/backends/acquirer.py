"""Simulated acquirer host: ISO 8583 over TCP on 127.0.0.1, deciding like an issuer with real crypto.

It speaks the terminal's dialect (``drivers.host.spec``, 2-byte length prefix), one thread per connection, any
number of exchanges per connection. A 0200 is decided in this order, the first failing check giving the code:

====  =======================================================================================================
 12   processing code is not 000000 (purchase)
 14   PAN not among the cards (``sim.devices.cards.CATALOGUE`` or the ``cards`` given)
 54   card expired (profile ``expiry`` YYMMDD before today)
 Q1   ARQC in field 55 does not verify (ICC master key option A → session key → AC, ``emv.crypto.arqc``);
      private code, kept apart from 05 so a scenario can tell "bad cryptogram" from "issuer said no". A chip
      entry mode (05x/07x) without field 55 is also Q1. Magstripe (90x) without field 55 skips this check
 63   PIN block present but cannot be decrypted with the BDK and KSN (``emv.crypto.pin``), or — a block
      without a KSN — as ISO 9564 format 0 under the PIK of the terminal's current sign-on
 55   wrong PIN; the 3rd wrong PIN in a row answers 75 and the card stays PIN-blocked (75) until
      ``reset_pin_tries``. A right PIN below the limit clears the count
 ..   ``force_response(code)`` replaces the code (scenario override) until ``force_response(None)``
 ..   the magic amount's code, see below
 00   approved: 6-digit auth code (field 38), 12-digit RRN (37)
====  =======================================================================================================

Every answer to a verified ARQC carries field 55 with tag 91 = ARPC (method 1) + ARC (the code in ASCII).
Magic amounts, keyed on the fen part (``amount_minor % 100``), the single table ``MAGIC_AMOUNTS``:

=========  ============================================================================================
 x.05       05 do not honour
 x.51       51 insufficient funds
 x.54       54 expired card
 x.61       61 exceeds amount limit
 x.91       91 issuer unavailable
 x.93       disconnect: the connection is closed as soon as the 0200 arrives, nothing decided or recorded
 x.96       garbled answer: the 0210 is cut short, so the terminal cannot decode it
 x.97       no answer: the issuer decided (usually approved, in the ledger) but the 0210 never leaves
 x.98       late answer: the 0210 leaves after ``late_reply_s`` (20 s; longer than the terminal waits)
 x.94       approved normally, but a reversal (reason 68) of it is refused with 12: the money stays taken,
            the terminal's supervisor refunds it (``refuse_reversals = True`` does the same for any amount)
 x.99       host down: the 0200 is dropped undecided and the host refuses connections for ``down_s`` (5 s),
            so the reversal cannot be delivered at once and is sent later (follow-up, before the next sale)
 x.10       partial approval: 10 with field 4 = half the amount, recorded so (``force_response("10")`` the
            same for any amount); ``answer_change`` sends answers with another amount, currency, id or
            processing code (``sim.backends.acquirer_answers``)
=========  ============================================================================================

Advices (0220, repeats 0221) of offline approvals are checked like a 0200 (card, expiry, the TC in field 55
verifies like an ARQC), go into the ledger once per (terminal, STAN) with MTI 0220 (a repeat — same amount, card
and transmission time — changes nothing; another advice under a STAN already used, by an advice or a purchase,
is answered 94, not recorded),
count in settlement like an approved 0200, and are answered 0230 (``advice_code = "96"``: every advice answered
so, nothing recorded — a host in trouble). A refund (0200 with processing code 200000)
finds its original by terminal id + STAN + transmission time in field 90: a captured, unreversed sale → 00 (once
per refund STAN, kept in ``refunds``), otherwise 25; refunds of one sale that would add up to more than it
charged are answered 13 (a second refund under another STAN is never paid). Refunds do not change the sale
totals.

Settlement (0500) compares the terminal's field 63 sale totals with the approved, unreversed 0200s of that
terminal and batch (field 60): ``00`` when equal, ``95`` when not (``forget_last_approval`` makes them differ).
A batch upload (0320, one per sale) replaces the host's view of the batch; the following 0500 with processing
code 960000 is compared with the upload. Every 0500 is kept in ``settlements``.

Reversals (0400, 0401 repeats) find the original by terminal id + STAN + transmission time (field 90: the original
data elements, as a real host matches them — a STAN alone may be an older sale's, after a terminal's counters went
back); one whose POS entry mode (field 22) differs from the original's is refused with 12 and undoes nothing (a
real host matches and risk-checks on it; without field 22 it is a format error, 30). The others mark it reversed
(idempotent), go to ``reversals`` and always answer 00 (unknown original: nothing to undo, and a reversal must
end). Echo answers 0810; ``reply_delay_s`` delays every answer; only masked PANs are stored.
An idle connection is closed after ``idle.idle_timeout_s`` (60 s; ``idle.close_notify`` sends a TLS alert first),
and ``idle.arm_race()`` closes one just as the next request arrives (``sim.backends.idle_close``).

With ``security`` (``sim.backends.acquirer_security``, what every simulated world uses) it serves mutual TLS
only and checks the client certificate, sign-on keys, the MAC of every request and STAN replays before any of
the above, and MACs every answer; without it, it is the plain-TCP bench of the ISO 8583 codec's own tests.
With ``header`` (``drivers.host.header.FrameHeader``: the NII it serves and the application type and version it
speaks) every request must carry that TPDU and application header — otherwise the connection is dropped without
an answer (``header_refusals`` counts them) — and every answer carries the swapped TPDU and the header back.

>>> sorted(MAGIC_AMOUNTS)
[5, 10, 51, 54, 61, 91, 93, 94, 96, 97, 98, 99]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace

from drivers.host import messages as m
from drivers.host import settlement
from drivers.host.counters import VIEW_FIELD, encode_view
from drivers.host.header import FrameHeader
from drivers.host.spec import APPROVED_CODES, PROCESSING_PURCHASE, PROCESSING_SETTLE_AFTER_UPLOAD, describe_response
from emv import tlv
from emv.crypto import arqc, pin
from emv.crypto.pinblock import decipher_format0
from flows.ports import AuthRequest, mask_pan
from pos_errors import CryptoError, PosError, RemoteProtocolError
from sim.backends import issuer
from sim.backends.acquirer_answers import PARTIAL, answer_to, changed, partial_amount, received_summary, sale_totals
from sim.backends.acquirer_ledger import MAGIC_AMOUNTS, Delivery, LedgerEntry, Magic
from sim.backends.acquirer_security import AcquirerSecurity
from sim.backends.idle_close import IdlePolicy
from sim.devices.cards import CATALOGUE, SimCardProfile

__all__ = ["AcquirerSim", "LedgerEntry", "Magic", "MAGIC_AMOUNTS", "PIN_TRIES"]

log = logging.getLogger(__name__)

PIN_TRIES = 3
_CHIP_ENTRY = ("05", "07")
_ECHOED_0210 = ("3", "4", "7", "11", "12", "13", "41", "42", "49")
_GARBLE_CUT = 5  # bytes cut off the end of an answer: always leaves its last field short


class AcquirerSim:
    """The acquirer on loopback.

    Args:
        bdk: base derivation key for the PIN pad's DUKPT (16 bytes TDES, 16/24/32 AES).
        pin_scheme: ``"aes"`` (X9.24-3, format 4) or ``"tdes"`` (X9.24-1, format 0), passed to the PIN facade.
        cards: the cards this issuer knows, any mapping of profiles (found by each profile's ``pan``);
            the whole ``sim.devices.cards.CATALOGUE`` when None.
        today: the issuer's calendar, for expiry and the year of field 13.
        seed: makes auth codes reproducible.
    """

    def __init__(self, *, bdk: bytes, pin_scheme: pin.Scheme = "aes",
                 cards: Mapping[str, SimCardProfile] | None = None,
                 today: Callable[[], dt.date] = dt.date.today, seed: int = 0,
                 security: AcquirerSecurity | None = None, header: FrameHeader | None = None) -> None:
        if pin_scheme not in ("aes", "tdes"):
            raise ValueError(f"pin_scheme is 'aes' or 'tdes', not {pin_scheme!r}")
        self._bdk = bdk
        self.pin_scheme: pin.Scheme = pin_scheme
        self._cards = {card.pan: card for card in (CATALOGUE if cards is None else cards).values()}
        self._today = today
        self._rng = random.Random(seed)
        self.reply_delay_s = 0.0
        self.late_reply_s = 20.0
        self.down_s = 5.0
        self.wire_log: list[str] = []  # MTIs received and answered, in order (scenarios check the order)
        self.settlements: list[tuple[str, int, str, str]] = []  # (tid, batch, processing code, answer)
        self._uploads: dict[tuple[str, int], dict[int, int]] = {}  # (tid, batch) -> original STAN -> amount
        self._forced: str | None = None
        self._ledger: list[LedgerEntry] = []
        self._reversals: list[LedgerEntry] = []
        self._refunds: list[LedgerEntry] = []
        self.refuse_reversals = False  # scenario switch: every reversal (reason 68) is answered 12
        self.refuse_voids = False  # scenario switch: every void (0400 reason 17) is answered 12
        self.answer_change: tuple[str, str] | None = None  # (MTI, field): those answers carry another value there
        self.advice_code: str | None = None  # scenario switch: every advice answered with it, nothing recorded
        self._wrong_pins: dict[str, int] = {}
        self._rrn_seq = 0
        self._lock = threading.Lock()
        self._handled = threading.Condition()  # notified after every message handled (``wait_until``)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._address: tuple[str, int] = ("127.0.0.1", 0)
        self.security = security
        self.header = header  # the dialect's TPDU + application header: required on every request when set
        self.header_refusals = 0  # requests dropped for a wrong TPDU or header
        self.header_requirement = 0  # processing requirement put in every answer header (3: "sign on again")
        self.tls_refusals: list[str] = []  # why each refused TLS handshake failed (tests, the serve check)
        self.handshakes = 0  # TLS handshakes completed (tests and the bench count connection reuse)
        self.resumptions = 0  # ... of which resumed a session (ticket) instead of a full handshake
        self.idle = IdlePolicy()  # idle connections closed after idle.idle_timeout_s (60 s), as real hosts do

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> tuple[str, int]:
        """Listen on 127.0.0.1 (an ephemeral port by default); returns the address to give the terminal."""
        self._stopping.clear()
        self._address = ("127.0.0.1", port)
        self._listen()
        return self._address

    def stop(self) -> None:
        """Close the listener and every connection; pending delayed answers are dropped."""
        self._stopping.set()
        self._unlisten()
        self._drop_connections()

    def __enter__(self) -> AcquirerSim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (valid after ``start``)."""
        return self._address

    # --- scenario controls ----------------------------------------------------------------------------------

    def set_unreachable(self, unreachable: bool) -> None:
        """True: close the listener (connects are refused) and drop open connections. False: listen again."""
        if unreachable:
            self._unlisten()
            self._drop_connections()
        elif self._listener is None and not self._stopping.is_set():
            self._listen()

    def hang_up(self) -> None:
        """Close every open connection (as a host does with idle ones or when it restarts); keep listening."""
        self._drop_connections()

    def set_tls_fault(self, fault: str | None) -> None:
        """Present the broken certificate ``fault`` names (None: the good one) from the next handshake on. Open
        connections are closed: a host changes its certificate by restarting its TLS endpoint, and a terminal
        must not keep talking over a session of the old certificate."""
        if self.security is None:
            raise ValueError("this acquirer runs without TLS")
        self.security.tls_fault = fault
        self._drop_connections()

    def force_response(self, code: str | None) -> None:
        """Answer every following 0200 with ``code`` (after the checks, with ARPC); None ends it."""
        if code is not None and (len(code) != 2 or not code.isalnum()):
            raise ValueError(f"response code must be 2 letters/digits, not {code!r}")
        self._forced = code

    @property
    def forced_response(self) -> str | None:
        """The code ``force_response`` set (None: the issuer decides)."""
        return self._forced

    def set_answer_change(self, change: tuple[str, str] | None) -> None:
        """Every answer of MTI ``change[0]`` carries another value in field ``change[1]`` (None ends it)."""
        self.answer_change = change

    def a0_reversals(self, count: int) -> None:
        """The next ``count`` reversals are answered A0 (key error, not processed): needs ``security``."""
        if self.security is None:
            raise ValueError("this acquirer runs without MACs")
        self.security.a0_reversals = count

    def forged_a0_purchases(self, count: int) -> None:
        """The next ``count`` purchases are decided (and booked) but answered A0 without a MAC, as a forger would."""
        if self.security is None:
            raise ValueError("this acquirer runs without MACs")
        self.security.forged_a0_purchases = count

    def reset_pin_tries(self) -> None:
        with self._lock:
            self._wrong_pins.clear()

    @property
    def ledger(self) -> list[LedgerEntry]:
        """A snapshot of the 0200 decisions, oldest first; ``reversed`` is set once a reversal found one."""
        with self._lock:
            return [replace(e) for e in self._ledger]

    @property
    def reversals(self) -> list[LedgerEntry]:
        """A snapshot of the reversal messages (0400/0401) received, found or not, oldest first."""
        with self._lock:
            return [replace(e) for e in self._reversals]

    @property
    def refunds(self) -> list[LedgerEntry]:
        """A snapshot of the refunds accepted (``original_stan`` = the refunded sale), oldest first."""
        with self._lock:
            return [replace(e) for e in self._refunds]

    def approved_total_minor(self) -> int:
        """Sum of approved, not reversed 0200 amounts: what the merchant would be paid."""
        with self._lock:
            return sum(e.amount_minor for e in self._ledger
                       if e.response_code in APPROVED_CODES and not e.reversed)

    # --- sockets --------------------------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Terminal connections open now (each one's requests are all handled before it counts as closed)."""
        with self._lock:
            return len(self._conns)

    def wait_until(self, condition: Callable[[AcquirerSim], bool], timeout_s: float) -> bool:
        """Block until ``condition(self)`` holds, checked again after every message handled and every connection
        closed (a test waits for the host's side of a request the terminal sent just before it died); False on
        timeout."""
        with self._handled:
            return self._handled.wait_for(lambda: condition(self), timeout_s)

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._address)
        listener.listen(16)
        listener.settimeout(0.05)  # accept wakes up to notice close (closing does not interrupt accept)
        self._address = listener.getsockname()[:2]
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True,
                                               name="acquirer-accept")
        self._accept_thread.start()

    def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accept_thread is not None and self._accept_thread is not threading.current_thread():
            self._accept_thread.join(timeout=1.0)
        self._accept_thread = None

    def _drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="acquirer-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = m.FrameDecoder()
        peer = ""
        try:
            if self.security is not None:
                conn, peer = self._handshake(conn)
            handled = 0
            while not self._stopping.is_set():
                if decoder.buffered == 0 and not self.idle.wait_for_request(conn, used=handled > 0):
                    return  # closed for idleness (or the armed race: a request left unread)
                chunk = conn.recv(4096)
                if not chunk:
                    return
                decoder.receive_data(chunk)
                while (raw := decoder.next_frame()) is not None:
                    handled += 1
                    head = b""
                    if self.header is not None:
                        try:
                            head, raw = self.header.split_request(raw)
                        except RemoteProtocolError:  # routed by TPDU: a request for another NII gets nothing
                            with self._lock:
                                self.header_refusals += 1
                            raise
                    try:
                        reply = self._handle(raw, peer)
                    finally:
                        with self._handled:
                            self._handled.notify_all()
                    if reply is not None:
                        if self.header is not None:
                            reply = m.frame(self.header.answer(head, reply[2:], self.header_requirement))
                        conn.sendall(reply)
        except PosError as exc:  # garbage in (or an answer we cannot build): drop the connection
            log.warning("acquirer: dropping connection: %s", exc)
        except OSError:
            pass  # the terminal went away (e.g. it timed out before a late answer)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
            with self._handled:
                self._handled.notify_all()

    def _handshake(self, conn: socket.socket) -> tuple[socket.socket, str]:
        """Mutual TLS: refuse (close) a client without a certificate from the world's CA."""
        assert self.security is not None  # noqa: S101 - only called with security
        conn.settimeout(5.0)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # handshake flights: no Nagle/delayed-ACK stall
        try:
            tls = self.security.server_context().wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            with self._lock:
                self.tls_refusals.append(str(reason))
            log.info("acquirer: TLS handshake refused: %s", reason)
            _linger(conn)  # the alert is on its way: close without a reset, as a TLS server does
            raise _Disconnect(f"TLS refused: {reason}") from exc
        tls.settimeout(None)
        with self._lock:
            self._conns.discard(conn)
            self._conns.add(tls)
            self.handshakes += 1
            self.resumptions += tls.session_reused
        return tls, self.security.peer_name(tls)

    # --- messages -------------------------------------------------------------------------------------------

    def _handle(self, raw: bytes, peer: str = "") -> bytes | None:
        fields = m.unpack(raw)
        mti = fields["t"]
        with self._lock:
            self.wire_log.append(mti)
        keys = None
        if self.security is not None:
            early, keys = self.security.screen(fields, raw, peer, self._today())
            if early is not None:
                with self._lock:
                    self.wire_log.append(m.unpack(early)["t"])
                return m.frame(early)
        delivery: Delivery = "normal"
        if mti == "0200" and fields.get("3", "").startswith("20"):
            answer = self._refund(fields)
        elif mti == "0200" and self._fault_before_deciding(fields):
            return None
        elif mti in ("0220", "0221"):
            answer = self._advice(fields)
        elif mti == "0200":
            answer, delivery = self._authorize(fields)
        elif mti in ("0400", "0401"):
            answer = self._reverse(fields)
        elif mti == "0500":
            answer = self._settle(fields)
        elif mti == "0320":
            answer = self._batch_upload(fields)
        elif mti == "0800":
            answer = answer_to(fields, "0810", ("7", "11", "41", "70"), "00")
            if self.security is not None and (view := self.security.view_of(fields.get("41", "").rstrip())):
                answer[VIEW_FIELD] = encode_view(view)  # the host's view of the terminal's counters
        else:
            log.warning("acquirer: ignoring MTI %s", mti)
            return None
        if self.answer_change is not None and answer["t"] == self.answer_change[0]:
            answer = changed(answer, self.answer_change[1])
        packed = m.pack(answer) if self.security is None or keys is None else self.security.seal(answer, fields, keys)
        if delivery == "none":
            return None
        if delivery == "garbled":
            packed = packed[:-_GARBLE_CUT]
        delay = self.late_reply_s if delivery == "late" else self.reply_delay_s
        if delay > 0 and self._stopping.wait(delay):
            return None
        with self._lock:
            self.wire_log.append(answer["t"])
        return m.frame(packed)

    def _fault_before_deciding(self, fields: m.Fields) -> bool:
        """Magic amounts that lose the 0200 before the issuer sees it: disconnect, host down."""
        amount = int(fields["4"]) if fields.get("4", "").isdigit() else 0
        delivery = MAGIC_AMOUNTS.get(amount % 100, Magic()).delivery
        if delivery not in ("disconnect", "down"):
            return False
        log.info("acquirer: 0200 stan=%s amount=%d -> %s", fields.get("11"), amount, delivery)
        if delivery == "down":
            self.set_unreachable(True)
            back = threading.Timer(self.down_s, lambda: self.set_unreachable(False))
            back.daemon = True
            back.start()
        raise _Disconnect(f"magic amount: {delivery}")

    def _authorize(self, fields: m.Fields) -> tuple[m.Fields, Delivery]:
        try:
            req = m.parse_auth_request(fields, year=self._today().year)
        except RemoteProtocolError as exc:
            log.warning("acquirer: 0200 format error: %s", exc)
            return answer_to(fields, "0210", _ECHOED_0210, "30"), "normal"
        code, session = self._decide(req, fields.get("3", ""))
        if self._forced is not None:
            code = self._forced
        magic = MAGIC_AMOUNTS.get(req.amount_minor % 100, Magic())
        if code == "00" and magic.code is not None:
            code = magic.code
        approved = partial_amount(req.amount_minor) if code == PARTIAL else None
        with self._lock:
            self._rrn_seq += 1
            today = self._today()
            rrn = f"{today:%y}"[-1] + f"{today.timetuple().tm_yday:03d}" + f"{self._rrn_seq:08d}"
            auth_code = f"{self._rng.randrange(1_000_000):06d}" if code in APPROVED_CODES else ""
            self._ledger.append(LedgerEntry(req.stan, "0200", mask_pan(req.pan), approved or req.amount_minor,
                                            code,
                                            auth_code, rrn, terminal_id=req.terminal_id,
                                            batch=int(fields.get("60", "0") or 0), transmitted=fields.get("7", ""),
                                            **received_summary(req)))
        log.info("acquirer: 0200 tid=%s stan=%06d pan=%s amount=%d -> %s (%s)%s", req.terminal_id, req.stan,
                 mask_pan(req.pan), req.amount_minor, code, describe_response(code),
                 "" if magic.delivery == "normal" else f" [{magic.delivery} answer]")
        answer = answer_to(fields, "0210", _ECHOED_0210, code)
        answer["37"] = rrn
        if approved is not None:  # the approved part, as hosts offering partial approval answer it
            answer["4"] = f"{approved:012d}"
        if auth_code:
            answer["38"] = auth_code
        card = self._cards.get(req.pan)
        if session is not None and card is not None:  # ARPC (method 1 or 2) and any issuer script: sim.backends.issuer
            atc = tlv.flatten(tlv.decode(req.icc_data)).get(0x9F36, b"")
            answer["55"] = issuer.response_icc_data(card, atc, session[1], code, req.pan_sequence).hex().upper()
        return answer, magic.delivery

    def _decide(self, req: AuthRequest, processing_code: str) -> tuple[str, tuple[bytes, bytes] | None]:
        """Issuer checks. Returns the code and, once the ARQC verified, (session key, ARQC) for the ARPC."""
        if processing_code != PROCESSING_PURCHASE:
            return "12", None
        card = self._cards.get(req.pan)
        if card is None:
            return "14", None
        if dt.datetime.strptime(card.expiry, "%y%m%d").date() < self._today():
            return "54", None
        session: tuple[bytes, bytes] | None = None
        if req.icc_data or req.pos_entry_mode[:2] in _CHIP_ENTRY:
            session = self._verify_arqc(card, req)
            if session is None:
                return "Q1", None
        if req.pin_block is not None:
            return self._check_pin(card, req), session
        return "00", session

    def _verify_arqc(self, card: SimCardProfile, req: AuthRequest) -> tuple[bytes, bytes] | None:
        try:
            values = tlv.flatten(tlv.decode(req.icc_data))
            cryptogram, atc = values[0x9F26], values[0x9F36]
            psn = req.pan_sequence if req.pan_sequence is not None else card.psn
            icc_mk = arqc.derive_icc_master_key(card.issuer_master_key, req.pan, psn)
            key = arqc.derive_session_key(icc_mk, atc)
            expected = arqc.generate_ac(key, arqc.ac_input(values))
        except (PosError, KeyError, ValueError) as exc:
            log.info("acquirer: stan=%06d ARQC not verifiable: %s", req.stan, type(exc).__name__)
            return None
        return (key, cryptogram) if expected == cryptogram else None

    def _check_pin(self, card: SimCardProfile, req: AuthRequest) -> str:
        try:
            if req.ksn is None:  # master/session: ISO 9564 format 0 under the PIK of this terminal's sign-on
                keys = self.security.keys_of(req.terminal_id) if self.security is not None else None
                if keys is None:
                    raise CryptoError("no PIK for this terminal")
                entered = decipher_format0(keys.pik, req.pin_block or b"", req.pan)
            else:
                entered = pin.decrypt_pin_block(self.pin_scheme, self._bdk, req.ksn, req.pin_block or b"", req.pan)
        except (PosError, ValueError) as exc:
            log.info("acquirer: stan=%06d PIN block not decryptable: %s", req.stan, type(exc).__name__)
            return "63"
        with self._lock:
            wrong = self._wrong_pins.get(req.pan, 0)
            if wrong >= PIN_TRIES:
                return "75"
            if entered == card.pin:
                self._wrong_pins.pop(req.pan, None)
                return "00"
            self._wrong_pins[req.pan] = wrong + 1
            return "75" if wrong + 1 >= PIN_TRIES else "55"

    def forget_last_approval(self) -> None:
        """Fault switch: the host loses its newest approved sale, so the next settlement's totals differ."""
        with self._lock:
            entry = next((e for e in reversed(self._ledger)
                          if e.response_code in APPROVED_CODES and not e.reversed and not e.lost), None)
            if entry is not None:
                entry.lost = True

    def _settle(self, fields: m.Fields) -> m.Fields:
        """0500: compare the terminal's totals with ours for (terminal, batch); after an upload, with the upload."""
        answer = answer_to(fields, "0510", ("3", "7", "11", "41", "42", "60", "63"), "00")
        tid, batch = fields.get("41", "").rstrip(), int(fields.get("60", "0") or 0)
        theirs = settlement.parse_totals(fields.get("63", ""), batch=batch)
        with self._lock:
            if fields.get("3") == PROCESSING_SETTLE_AFTER_UPLOAD:
                ours = sale_totals(list(self._uploads.get((tid, batch), {}).values()))
            else:
                ours = sale_totals([e.amount_minor for e in self._ledger if e.terminal_id == tid
                                     and e.batch == batch and e.response_code in APPROVED_CODES
                                     and not e.reversed and not e.lost])
            answer["39"] = "00" if ours == (theirs.sale_count, theirs.sale_minor) else "95"
            self.settlements.append((tid, batch, fields.get("3", ""), answer["39"]))
        log.info("acquirer: 0500 tid=%s batch=%06d terminal %d/%d host %d/%d -> %s", tid, batch,
                 theirs.sale_count, theirs.sale_minor, *ours, answer["39"])
        return answer

    def _batch_upload(self, fields: m.Fields) -> m.Fields:
        item = settlement.parse_batch_upload(fields)
        tid = fields.get("41", "").rstrip()
        with self._lock:
            self._uploads.setdefault((tid, item.batch), {})[item.original_stan] = item.amount_minor
        return answer_to(fields, "0330", ("3", "4", "11", "41", "42", "60", "62"), "00")

    def _reverse(self, fields: m.Fields) -> m.Fields:
        answer = answer_to(fields, "0410", ("3", "4", "7", "11", "41", "42", "49", "90"), "00")
        try:
            original = m.parse_original_data(fields.get("90", ""))
            stan = int(fields["11"])
            entry_mode = fields["22"]
        except (RemoteProtocolError, KeyError, ValueError) as exc:
            log.warning("acquirer: %s format error: %s", fields["t"], exc)
            answer["39"] = "30"
            return answer
        tid = fields.get("41", "").rstrip()
        with self._lock:
            target = next((e for e in reversed(self._ledger) if e.names(tid, original)), None)
            amount = int(fields["4"]) if fields.get("4", "").isdigit() else 0
            refused = fields.get("39") == "68" and (
                self.refuse_reversals or MAGIC_AMOUNTS.get(amount % 100, Magic()).reversal_code != "00")
            if target is not None and target.entry_mode and entry_mode != target.entry_mode:
                log.warning("acquirer: %s tid=%s stan=%06d: POS entry mode %s differs from the original's %s -> 12",
                            fields["t"], tid, stan, entry_mode, target.entry_mode)
                answer["39"] = "12"  # not the message the card was presented in: refused, nothing undone
            elif fields.get("39") == "17" and self.refuse_voids:
                answer["39"] = "12"
            elif refused:
                answer["39"] = "12" if self.refuse_reversals else MAGIC_AMOUNTS[amount % 100].reversal_code
            elif target is not None:
                target.reversed = True
            self._reversals.append(LedgerEntry(stan, fields["t"], target.masked_pan if target else "", amount,
                                               answer["39"], terminal_id=tid, original_stan=original.stan,
                                               entry_mode=entry_mode))
        log.info("acquirer: %s tid=%s stan=%06d reverses stan=%06d (%s)", fields["t"], tid, stan,
                 original.stan, "found" if target else "no such original, nothing to undo")
        return answer


    def _advice(self, fields: m.Fields) -> m.Fields:
        """0220/0221: record an offline approval once; a repeat of the same STAN changes nothing."""
        if self.advice_code is not None:  # a host in trouble (96) or refusing advices: not taken, not recorded
            return answer_to(fields, "0230", _ECHOED_0210, self.advice_code)
        try:
            req = m.parse_auth_request(fields, year=self._today().year)
        except RemoteProtocolError as exc:
            log.warning("acquirer: %s format error: %s", fields["t"], exc)
            return answer_to(fields, "0230", _ECHOED_0210, "30")
        with self._lock:
            known = [e for e in self._ledger if e.mti == "0220" and e.stan == req.stan
                     and e.terminal_id == req.terminal_id]
            purchase = any(e.mti == "0200" and e.stan == req.stan and e.terminal_id == req.terminal_id
                           for e in self._ledger)
        seen = self.security is not None and self.security.stan_seen(req.terminal_id, self._today(), req.stan)
        if purchase or seen or any((e.amount_minor, e.masked_pan, e.transmitted) != (
                req.amount_minor, mask_pan(req.pan), fields.get("7", "")) for e in known):
            log.info("acquirer: %s tid=%s stan=%06d: another advice has this STAN -> 94", fields["t"],
                     req.terminal_id, req.stan)  # a repeat is the same advice; this one is another payment
            return answer_to(fields, "0230", _ECHOED_0210, "94")
        if not known:
            code, _session = self._decide(req, fields.get("3", ""))
            with self._lock:
                self._ledger.append(LedgerEntry(req.stan, "0220", mask_pan(req.pan), req.amount_minor, code,
                                                fields.get("38", "").strip(), terminal_id=req.terminal_id,
                                                batch=int(fields.get("60", "0") or 0),
                                                transmitted=fields.get("7", ""), **received_summary(req)))
            log.info("acquirer: %s tid=%s stan=%06d pan=%s amount=%d -> %s", fields["t"], req.terminal_id,
                     req.stan, mask_pan(req.pan), req.amount_minor, code)
        return answer_to(fields, "0230", _ECHOED_0210, "00")

    def _refund(self, fields: m.Fields) -> m.Fields:
        """0200 processing 200000: refund a captured sale named by field 90; idempotent per refund STAN."""
        answer = answer_to(fields, "0210", _ECHOED_0210, "00")
        try:
            original = m.parse_original_data(fields.get("90", ""))
            stan = int(fields["11"])
        except (RemoteProtocolError, KeyError, ValueError):
            answer["39"] = "30"
            return answer
        tid = fields.get("41", "").rstrip()
        with self._lock:
            if any(e.stan == stan and e.terminal_id == tid for e in self._refunds):
                return answer  # a repeat: already refunded
            target = next((e for e in reversed(self._ledger) if e.names(tid, original)
                           and e.response_code in APPROVED_CODES and not e.reversed), None)
            given = sum(e.amount_minor for e in self._refunds if e.terminal_id == tid
                        and target is not None and e.original_stan == target.stan)
            if target is None:
                answer["39"] = "25"
            elif given + int(fields.get("4", "0")) > target.amount_minor:  # never more back than was charged
                answer["39"] = "13"
            else:
                self._refunds.append(LedgerEntry(stan, "0200", target.masked_pan, int(fields.get("4", "0")), "00",
                                                 terminal_id=tid, original_stan=original.stan))
        log.info("acquirer: refund tid=%s stan=%06d of stan=%06d -> %s", tid, stan, original.stan, answer["39"])
        return answer


def _linger(conn: socket.socket) -> None:
    """Half-close and drain briefly, so the peer reads our alert instead of a connection reset."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.5)
        while conn.recv(4096):
            pass


class _Disconnect(PosError):
    """Drop the connection without an answer (a magic amount's fault)."""
