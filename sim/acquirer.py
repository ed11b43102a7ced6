"""Simulated acquirer host: ISO 8583 over TCP on 127.0.0.1, deciding like an issuer with real crypto.

It speaks the terminal's dialect (``drivers.host.spec``, 2-byte length prefix), one thread per connection, any
number of exchanges per connection. A 0200 is decided in this order, the first failing check giving the code:

====  =======================================================================================================
 12   processing code is not 000000 (purchase)
 14   PAN not among the cards (``sim.cards.CATALOGUE`` or the ``cards`` given)
 54   card expired (profile ``expiry`` YYMMDD before today)
 Q1   ARQC in field 55 does not verify (ICC master key option A → session key → AC, ``emv.crypto.arqc``);
      private code, kept apart from 05 so a scenario can tell "bad cryptogram" from "issuer said no". A chip
      entry mode (05x/07x) without field 55 is also Q1. Magstripe (90x) without field 55 skips this check
 63   PIN block present but cannot be decrypted with the BDK and KSN (``emv.crypto.pin``)
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
 x.61       61 exceeds amount limit
 x.91       91 issuer unavailable
 x.96       garbled answer: the 0210 is cut short, so the terminal cannot decode it
 x.97       no answer: the issuer decided (usually approved, in the ledger) but the 0210 never leaves
 x.98       late answer: the 0210 leaves after ``late_reply_s`` (20 s; longer than the terminal waits)
=========  ============================================================================================

Reversals (0400, 0401 repeats) find the original by terminal id + STAN (field 90), mark it reversed
(idempotent), go to ``reversals`` and always answer 00 (unknown original: nothing to undo, and a reversal must
end). Echo answers 0810; ``reply_delay_s`` delays every answer; only masked PANs are stored.

>>> sorted(MAGIC_AMOUNTS)
[5, 51, 61, 91, 96, 97, 98]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from drivers.host import messages as m
from drivers.host.spec import APPROVED_CODES, PROCESSING_PURCHASE, describe_response
from emv import tlv
from emv.crypto import arqc, pin
from emv.errors import PosError, RemoteProtocolError
from flows.ports import AuthRequest, mask_pan
from sim import issuer
from sim.cards import CATALOGUE, SimCardProfile

__all__ = ["AcquirerSim", "LedgerEntry", "Magic", "MAGIC_AMOUNTS", "PIN_TRIES"]

log = logging.getLogger(__name__)

Delivery = Literal["normal", "none", "late", "garbled"]


@dataclass(frozen=True)
class Magic:
    """What a magic amount does: a response code, and/or a way of (not) delivering the answer."""

    code: str | None = None
    delivery: Delivery = "normal"


MAGIC_AMOUNTS: dict[int, Magic] = {  # amount_minor % 100 -> outcome; documented in the module docstring
    5: Magic(code="05"), 51: Magic(code="51"), 61: Magic(code="61"), 91: Magic(code="91"),
    96: Magic(delivery="garbled"), 97: Magic(delivery="none"), 98: Magic(delivery="late"),
}

PIN_TRIES = 3
_CHIP_ENTRY = ("05", "07")
_ECHOED_0210 = ("3", "4", "7", "11", "12", "13", "41", "42", "49")
_GARBLE_CUT = 5  # bytes cut off the end of an answer: always leaves its last field short


@dataclass
class LedgerEntry:
    """A 0200 decision (in ``ledger``) or a 0400/0401 received (in ``reversals``, ``original_stan`` set)."""

    stan: int
    mti: str
    masked_pan: str
    amount_minor: int
    response_code: str
    auth_code: str = ""
    rrn: str = ""
    reversed: bool = False
    terminal_id: str = ""
    original_stan: int | None = None


class AcquirerSim:
    """The acquirer on loopback.

    Args:
        bdk: base derivation key for the PIN pad's DUKPT (16 bytes TDES, 16/24/32 AES).
        pin_scheme: ``"aes"`` (X9.24-3, format 4) or ``"tdes"`` (X9.24-1, format 0), passed to the PIN facade.
        cards: the cards this issuer knows, any mapping of profiles (found by each profile's ``pan``);
            the whole ``sim.cards.CATALOGUE`` when None.
        today: the issuer's calendar, for expiry and the year of field 13.
        seed: makes auth codes reproducible.
    """

    def __init__(self, *, bdk: bytes, pin_scheme: pin.Scheme = "aes",
                 cards: Mapping[str, SimCardProfile] | None = None,
                 today: Callable[[], dt.date] = dt.date.today, seed: int = 0) -> None:
        if pin_scheme not in ("aes", "tdes"):
            raise ValueError(f"pin_scheme is 'aes' or 'tdes', not {pin_scheme!r}")
        self._bdk = bdk
        self.pin_scheme: pin.Scheme = pin_scheme
        self._cards = {card.pan: card for card in (CATALOGUE if cards is None else cards).values()}
        self._today = today
        self._rng = random.Random(seed)
        self.reply_delay_s = 0.0
        self.late_reply_s = 20.0
        self._forced: str | None = None
        self._ledger: list[LedgerEntry] = []
        self._reversals: list[LedgerEntry] = []
        self._wrong_pins: dict[str, int] = {}
        self._rrn_seq = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._address: tuple[str, int] = ("127.0.0.1", 0)

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

    def force_response(self, code: str | None) -> None:
        """Answer every following 0200 with ``code`` (after the checks, with ARPC); None ends it."""
        if code is not None and (len(code) != 2 or not code.isalnum()):
            raise ValueError(f"response code must be 2 letters/digits, not {code!r}")
        self._forced = code

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

    def approved_total_minor(self) -> int:
        """Sum of approved, not reversed 0200 amounts: what the merchant would be paid."""
        with self._lock:
            return sum(e.amount_minor for e in self._ledger
                       if e.response_code in APPROVED_CODES and not e.reversed)

    # --- sockets --------------------------------------------------------------------------------------------

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
        try:
            while not self._stopping.is_set():
                chunk = conn.recv(4096)
                if not chunk:
                    return
                decoder.receive_data(chunk)
                while (raw := decoder.next_frame()) is not None:
                    reply = self._handle(raw)
                    if reply is not None:
                        conn.sendall(reply)
        except PosError as exc:  # garbage in (or an answer we cannot build): drop the connection
            log.warning("acquirer: dropping connection: %s", exc)
        except OSError:
            pass  # the terminal went away (e.g. it timed out before a late answer)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    # --- messages -------------------------------------------------------------------------------------------

    def _handle(self, raw: bytes) -> bytes | None:
        fields = m.unpack(raw)
        mti = fields["t"]
        delivery: Delivery = "normal"
        if mti == "0200":
            answer, delivery = self._authorize(fields)
        elif mti in ("0400", "0401"):
            answer = self._reverse(fields)
        elif mti == "0800":
            answer = _answer(fields, "0810", ("7", "11", "41", "70"), "00")
        else:
            log.warning("acquirer: ignoring MTI %s", mti)
            return None
        packed = m.pack(answer)
        if delivery == "none":
            return None
        if delivery == "garbled":
            packed = packed[:-_GARBLE_CUT]
        delay = self.late_reply_s if delivery == "late" else self.reply_delay_s
        if delay > 0 and self._stopping.wait(delay):
            return None
        return m.frame(packed)

    def _authorize(self, fields: m.Fields) -> tuple[m.Fields, Delivery]:
        try:
            req = m.parse_auth_request(fields, year=self._today().year)
        except RemoteProtocolError as exc:
            log.warning("acquirer: 0200 format error: %s", exc)
            return _answer(fields, "0210", _ECHOED_0210, "30"), "normal"
        code, session = self._decide(req, fields.get("3", ""))
        if self._forced is not None:
            code = self._forced
        magic = MAGIC_AMOUNTS.get(req.amount_minor % 100, Magic())
        if code == "00" and magic.code is not None:
            code = magic.code
        with self._lock:
            self._rrn_seq += 1
            today = self._today()
            rrn = f"{today:%y}"[-1] + f"{today.timetuple().tm_yday:03d}" + f"{self._rrn_seq:08d}"
            auth_code = f"{self._rng.randrange(1_000_000):06d}" if code in APPROVED_CODES else ""
            self._ledger.append(LedgerEntry(req.stan, "0200", mask_pan(req.pan), req.amount_minor, code,
                                            auth_code, rrn, terminal_id=req.terminal_id))
        log.info("acquirer: 0200 tid=%s stan=%06d pan=%s amount=%d -> %s (%s)%s", req.terminal_id, req.stan,
                 mask_pan(req.pan), req.amount_minor, code, describe_response(code),
                 "" if magic.delivery == "normal" else f" [{magic.delivery} answer]")
        answer = _answer(fields, "0210", _ECHOED_0210, code)
        answer["37"] = rrn
        if auth_code:
            answer["38"] = auth_code
        card = self._cards.get(req.pan)
        if session is not None and card is not None:  # ARPC (method 1 or 2) and any issuer script: sim.issuer
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
            entered = pin.decrypt_pin_block(self.pin_scheme, self._bdk, req.ksn or b"", req.pin_block or b"",
                                            req.pan)
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

    def _reverse(self, fields: m.Fields) -> m.Fields:
        answer = _answer(fields, "0410", ("3", "4", "7", "11", "41", "42", "49", "90"), "00")
        try:
            original = m.parse_original_data(fields.get("90", ""))
            stan = int(fields["11"])
        except (RemoteProtocolError, KeyError, ValueError) as exc:
            log.warning("acquirer: %s format error: %s", fields["t"], exc)
            answer["39"] = "30"
            return answer
        tid = fields.get("41", "").rstrip()
        with self._lock:
            target = next((e for e in reversed(self._ledger)
                           if e.stan == original.stan and e.terminal_id == tid), None)
            if target is not None:
                target.reversed = True
            amount = int(fields["4"]) if fields.get("4", "").isdigit() else 0
            self._reversals.append(LedgerEntry(stan, fields["t"], target.masked_pan if target else "", amount,
                                               "00", terminal_id=tid, original_stan=original.stan))
        log.info("acquirer: %s tid=%s stan=%06d reverses stan=%06d (%s)", fields["t"], tid, stan,
                 original.stan, "found" if target else "no such original, nothing to undo")
        return answer


def _answer(request: m.Fields, mti: str, echoed: tuple[str, ...], code: str) -> m.Fields:
    fields = {key: request[key] for key in echoed if key in request}
    fields.update({"t": mti, "39": code})
    return fields
