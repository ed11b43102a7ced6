"""The simulated acquirer's security, as strict as a real host's: mutual TLS, sign-on, MACs, STAN replay.

Per world it makes (in the world's directory, TEST material only): a TLS CA (``sim.backends.http_tls``, the
same loopback CA code the carrier uses), the host's server certificate for ``127.0.0.1``/``localhost``, a
client certificate whose common name is the terminal id, and the terminal master key (TMK) as the technician
loads it: a TR-31 key block (version D, usage K0) in one 0600 file and, in another directory, the AES-256 key
block protection key it is wrapped under (0600, hex).

What every request meets, in order (``screen``):

=====================================  ===========================================================
 TLS client certificate                 required and signed by the world's CA (handshake refused
                                        otherwise); its common name must be the field 41 of every
                                        message on the connection, else the connection is dropped
 0800 sign-on (70 = 001)                new PIK and MAK (random, odd parity) under the terminal's TMK
                                        with 4-byte check values in field 62; the 0810 is MACed
                                        under the new MAK
 MAC (field 64 / 128)                   missing, wrong or no keys for the terminal: answered A0
                                        ("key error, sign on again"), never processed or approved
 STAN of a purchase 0200                once per terminal and day: a replay is answered 94
                                        (duplicate transmission), never approved a second time
 STAN of a 0320 / 0500                  the same: each batch upload and settlement is a new message
                                        with its own trace number (ISO 8583: the STAN stays only
                                        within one exchange — request, its repeats, its answer); a
                                        second one under a STAN taken is answered 94, not processed
 the host's view (``view_of``)          per terminal, the newest STAN, batch (field 60) and purchase
                                        invoice (field 62) of every request that passed the checks;
                                        sent in field 61 of the 0810 to a sign-on (and to an echo,
                                        ``acquirer.py``), MACed with the rest of the answer
=====================================  ===========================================================

Fault switches (scenarios): ``bad_mac_answers`` (every 0210 — approvals included — carries a wrong MAC, as a
forger's would; other answers stay good, so the reversal that follows gets through), ``expire_keys`` (the host forgets
the terminal's keys: its next request gets A0), ``bad_kcv`` (sign-on answers with a wrong MAK check value),
``same_keys`` (sign-on delivers one key as both PIK and MAK, check values and all: the terminal must refuse it),
``a0_reversals`` (the next N reversals are answered A0 and not processed, as if their MAC failed),
``forged_a0_purchases`` (the next N purchases are decided and kept on the books, approvals included, but their
0210 is replaced by an A0 without a MAC, as a forger on the path would send; ``forged_a0_echoes`` and
``forged_a0_uploads`` the same for the 0810 of an echo and the 0330 of a batch upload, the upload kept),
``tls_fault`` = ``expired`` / ``wrong_host`` / ``unknown_ca`` (the host presents a broken certificate). Magic
amounts: fen ``.81`` answers with a bad MAC (after deciding), ``.82`` demands a re-sign-on once per STAN (A0).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     sec = AcquirerSecurity.create(d, "SIM00001")
...     open(sec.tmk_file).read()[:16], sec.client_cert.endswith("-cert.pem")
('D0112K0TB00N0000', True)
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from drivers.host import messages as m
from drivers.host.counters import VIEW_FIELD, HostView, encode_view, newer
from drivers.host.signon import (
    KEY_ERROR_CODE,
    MAC_LEN,
    NMI_SIGN_OFF,
    NMI_SIGN_ON,
    SessionKeys,
    mac_field,
    pack_with_mac,
    verify_mac,
    wrap_keys,
)
from drivers.host.spec import PROCESSING_PURCHASE
from emv.crypto import dukpt_mac
from emv.crypto.des import odd_parity
from emv.crypto.mac import mac_matches
from emv.crypto.tr31 import wrap
from pos_errors import CryptoError, PosError, RemoteProtocolError
from sim.backends.http_tls import LoopbackCa

__all__ = ["AcquirerSecurity", "TLS_FAULTS", "IdentityMismatch"]

TLS_FAULTS = ("expired", "wrong_host", "unknown_ca")
_ONCE_PER_STAN = frozenset({"0320", "0500"})  # batch upload and settlement: each message its own STAN
MAGIC_BAD_MAC = 81
MAGIC_RESIGN = 82


class IdentityMismatch(PosError):
    """The TLS client certificate names another terminal than the message: drop the connection."""


_DUKPT_KEYS = SessionKeys(pik=b"", mak=b"")  # "verified" marker of the dukpt scheme: its keys come per KSN


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")


def _new_key() -> bytes:
    while True:
        key = odd_parity(secrets.token_bytes(16))
        if key[:8] != key[8:]:
            return key


@dataclass
class AcquirerSecurity:
    """Test CA, certificates, TMKs and the host's key and STAN state. Build with ``create``."""

    ca: LoopbackCa
    client_cert: str
    client_key: str
    tmk_file: str
    tmks: dict[str, bytes]
    tmk_kbpk_file: str = ""
    dukpt: tuple[str, bytes] | None = None  # key scheme "dukpt": (DUKPT scheme, BDK); MACs from field 53's KSN
    bad_mac_answers: bool = False
    bad_kcv: bool = False
    same_keys: bool = False  # sign-on delivers one key as both PIK and MAK (no key separation)
    a0_reversals: int = 0  # the next N reversals (0400/0401) are answered A0, as if their MAC failed
    forged_a0_purchases: int = 0  # the next N decided purchases: their 0210 replaced by an unMACed A0 (a forger's)
    forged_a0_echoes: int = 0  # the next N echoes answered: their 0810 replaced by an unMACed A0 (a forger's)
    forged_a0_uploads: int = 0  # the next N batch uploads taken: their 0330 replaced by an unMACed A0 (a forger's)
    tls_fault: str | None = None
    _keys: dict[str, SessionKeys] = field(default_factory=dict)
    _stans: set[tuple[str, dt.date, str]] = field(default_factory=set)
    _views: dict[str, HostView] = field(default_factory=dict)
    _resign_demanded: set[tuple[str, str]] = field(default_factory=set)
    _batch_stans: set[tuple[str, dt.date, str]] = field(default_factory=set)  # STANs of 0320 / 0500 taken
    _contexts: dict[str | None, ssl.SSLContext] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, directory: str | Path, terminal_id: str) -> AcquirerSecurity:
        folder = Path(directory)
        ca = LoopbackCa.create(folder, "acquirer")
        cert, key = ca.issue(f"terminal-{terminal_id}", terminal_id, client=True)
        tmk, kbpk = _new_key(), secrets.token_bytes(32)
        blocks = folder / "key-blocks"  # the block and its KBPK in sibling folders: neither inside the other's
        blocks.mkdir(mode=0o700, exist_ok=True)
        tmk_file = blocks / f"tmk-{terminal_id}.tr31"
        _private(tmk_file, wrap(kbpk, "D0000K0TB00N0000", tmk))
        key_loading = folder / "key-loading"  # the KBPK never beside the block it protects
        key_loading.mkdir(mode=0o700, exist_ok=True)
        kbpk_file = key_loading / "tmk-kbpk.hex"
        _private(kbpk_file, kbpk.hex().upper())
        return cls(ca, cert, key, str(tmk_file), {terminal_id: tmk}, tmk_kbpk_file=str(kbpk_file))

    # --- TLS ------------------------------------------------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """The context for the next connection: the good certificate, or the broken one ``tls_fault`` names."""
        fault = self.tls_fault
        with self._lock:
            if fault not in self._contexts:
                self._contexts[fault] = self._make_context(fault)
            return self._contexts[fault]

    def _make_context(self, fault: str | None) -> ssl.SSLContext:
        if fault is None:
            return self.ca.mutual_server_context()
        if fault == "expired":
            cert, key = self.ca.issue("acquirer-expired", "127.0.0.1", expired=True)
        elif fault == "wrong_host":
            cert, key = self.ca.issue("acquirer-wrong-host", "acquirer.example", hosts=("acquirer.example",))
        elif fault == "unknown_ca":
            rogue = LoopbackCa.create(Path(self.ca.ca_file).parent / "rogue", "rogue")
            cert, key = rogue.cert_file, rogue.key_file
        else:
            raise ValueError(f"tls_fault is one of {', '.join(TLS_FAULTS)}, not {fault!r}")
        return self.ca.mutual_server_context(cert, key)

    @staticmethod
    def peer_name(conn: ssl.SSLSocket) -> str:
        cert = conn.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return ""

    # --- keys -------------------------------------------------------------------------------------------

    def expire_keys(self, terminal_id: str | None = None) -> None:
        """The host forgets the working keys of one terminal (all when None): its next MAC fails (A0)."""
        with self._lock:
            if terminal_id is None:
                self._keys.clear()
            else:
                self._keys.pop(terminal_id, None)

    def keys_of(self, terminal_id: str) -> SessionKeys | None:
        with self._lock:
            return self._keys.get(terminal_id)

    # --- every request ----------------------------------------------------------------------------------

    def screen(self, fields: m.Fields, raw: bytes, peer: str,
               today: dt.date) -> tuple[bytes | None, SessionKeys | None]:
        """Check one request. Returns (the whole answer, already packed, None) when the host answers here
        (sign-on, key error, duplicate), or (None, the keys its MAC verified under) when the request is good and
        goes on to be decided — its answer is MACed under the same keys (``seal``), even if the terminal signs
        on again meanwhile. Raises IdentityMismatch when the certificate names another terminal."""
        tid = fields.get("41", "").rstrip()
        if peer != tid:
            raise IdentityMismatch(f"client certificate of {peer!r} sent a message of terminal {tid!r}")
        if self.dukpt is None and fields["t"] == "0800" and fields.get("70") == NMI_SIGN_ON:
            if tid in self.tmks:  # the client certificate authenticates a sign-on
                self._note(tid, fields)
            return self._sign_on(fields, tid), None
        keys = self.keys_of(tid) if self.dukpt is None else _DUKPT_KEYS
        try:
            if keys is None:
                raise RemoteProtocolError("not signed on")
            if self.dukpt is None:
                verify_mac(raw, keys.mak)
            else:
                self._verify_dukpt(fields, raw)
            if fields["t"] in ("0400", "0401") and self._a0_reversal():
                raise RemoteProtocolError("scenario: this reversal's MAC is taken as failed")
        except (RemoteProtocolError, CryptoError):
            return m.pack(self._key_error(fields)), None
        self._note(tid, fields)
        if self.dukpt is None and fields["t"] == "0800" and fields.get("70") == NMI_SIGN_OFF:
            self.expire_keys(tid)
            return pack_with_mac(_echo(fields, "0810", "00"), keys.mak), None
        if fields["t"] == "0200" and fields.get("3") == PROCESSING_PURCHASE:
            stan = fields.get("11", "")
            amount = int(fields["4"]) if fields.get("4", "").isdigit() else 0
            with self._lock:
                if amount % 100 == MAGIC_RESIGN and (tid, stan) not in self._resign_demanded and self.dukpt is None:
                    self._resign_demanded.add((tid, stan))
                    self._keys.pop(tid, None)
                    return m.pack(self._key_error(fields)), None
                if (tid, today, stan) in self._stans:  # MACed as any answer (dukpt: under the request's KSN)
                    duplicate = _echo(fields, "0210", "94")
                    return (pack_with_mac(duplicate, keys.mak) if self.dukpt is None
                            else self._dukpt_seal(duplicate, fields)), None
                self._stans.add((tid, today, stan))
        if fields["t"] in _ONCE_PER_STAN:  # a new message under a STAN already taken is a replay: 94, not processed
            with self._lock:
                replay = (tid, today, fields.get("11", "")) in self._batch_stans
                self._batch_stans.add((tid, today, fields.get("11", "")))
            if replay:
                duplicate = _echo(fields, m.response_mti(fields["t"]), "94")
                return (pack_with_mac(duplicate, keys.mak) if self.dukpt is None
                        else self._dukpt_seal(duplicate, fields)), None
        return None, keys

    def _a0_reversal(self) -> bool:
        with self._lock:
            if self.a0_reversals <= 0:
                return False
            self.a0_reversals -= 1
            return True

    def _forged_a0(self, answer: m.Fields, request: m.Fields) -> bool:
        """Whether a forger replaces this decided answer (a purchase's 0210, an echo's 0810, an upload's 0330)."""
        counter = ("forged_a0_purchases" if answer["t"] == "0210" and request.get("3") == PROCESSING_PURCHASE
                   else "forged_a0_echoes" if answer["t"] == "0810" and request.get("70") == "301"
                   else "forged_a0_uploads" if answer["t"] == "0330" else "")
        with self._lock:
            if not counter or getattr(self, counter) <= 0:
                return False
            setattr(self, counter, getattr(self, counter) - 1)
            return True

    def view_of(self, terminal_id: str) -> HostView | None:
        """What the host last received from this terminal (None before its first authenticated request)."""
        with self._lock:
            return self._views.get(terminal_id)

    def already_seen(self, terminal_id: str, last_stan: int, today: dt.date) -> None:
        """Scenarios: the host already has this terminal's purchases 1..``last_stan`` of ``today`` (as after the
        terminal's journal came back from an old backup): those STANs are answered 94, its view says so."""
        if not 0 < last_stan < 999999:
            raise ValueError(f"last_stan is 1..999998, not {last_stan!r}")
        with self._lock:
            self._stans.update((terminal_id, today, f"{n:06d}") for n in range(1, last_stan + 1))
            old = self._views.get(terminal_id, HostView())
            self._views[terminal_id] = HostView(stan=newer(old.stan, last_stan), batch=old.batch,
                                                invoice=newer(old.invoice, last_stan))

    def stan_seen(self, terminal_id: str, today: dt.date, stan: int) -> bool:
        """True when this terminal's purchase of ``today`` under ``stan`` reached the host (or ``already_seen``)."""
        with self._lock:
            return (terminal_id, today, f"{stan:06d}") in self._stans

    def _note(self, tid: str, fields: m.Fields) -> None:
        """Advance the terminal's view with an authenticated request; an older number (a replay) changes nothing."""
        def number(key: str) -> int:
            value = fields.get(key, "")
            return int(value) if len(value) == 6 and value.isascii() and value.isdigit() else 0

        purchase = fields["t"] == "0200" and fields.get("3") == PROCESSING_PURCHASE
        with self._lock:
            old = self._views.get(tid, HostView())
            self._views[tid] = HostView(stan=newer(old.stan, number("11")), batch=newer(old.batch, number("60")),
                                        invoice=newer(old.invoice, number("62")) if purchase else old.invoice)

    def seal(self, answer: m.Fields, request: m.Fields, keys: SessionKeys) -> bytes:
        """Pack a decided answer with its MAC under the MAK its request was verified with (a wrong MAC under
        ``bad_mac_answers`` or the magic amount .81)."""
        if self._forged_a0(answer, request):
            return m.pack(self._key_error(request))  # decided and booked; the terminal is told "key error"
        packed = bytearray(pack_with_mac(answer, keys.mak) if self.dukpt is None else self._dukpt_seal(answer, request))
        amount = int(request["4"]) if request.get("4", "").isdigit() else 0
        if answer["t"] == "0210" and (self.bad_mac_answers or amount % 100 == MAGIC_BAD_MAC):
            packed[-1] ^= 0x01
        return bytes(packed)

    def _verify_dukpt(self, fields: m.Fields, raw: bytes) -> None:
        """Key scheme "dukpt": the request MAC under the MAC request key of the KSN in field 53."""
        assert self.dukpt is not None  # noqa: S101 - only called in the dukpt scheme
        key = mac_field(fields)
        numbered = [int(k) for k in fields if k.isdigit()]
        if key not in fields or max(numbered) != int(key) or "53" not in fields:
            raise RemoteProtocolError("no KSN in field 53 or no MAC last", tag=key)
        scheme, bdk = self.dukpt
        expected = dukpt_mac.host_mac(scheme, bdk, bytes.fromhex(fields["53"]), raw[:-MAC_LEN], "request")
        if not mac_matches(expected, raw[-MAC_LEN:]):
            raise RemoteProtocolError("wrong DUKPT MAC", tag=key)

    def _dukpt_seal(self, answer: m.Fields, request: m.Fields) -> bytes:
        """The answer with its MAC under the response key of the request's transaction (field 53's KSN)."""
        assert self.dukpt is not None  # noqa: S101 - only called in the dukpt scheme
        body = {k: v for k, v in answer.items() if k not in ("64", "128")}
        body[mac_field(body)] = "00" * MAC_LEN
        raw = m.pack(body)
        scheme, bdk = self.dukpt
        return raw[:-MAC_LEN] + dukpt_mac.host_mac(scheme, bdk, bytes.fromhex(request["53"]), raw[:-MAC_LEN],
                                                   "response")

    def _sign_on(self, fields: m.Fields, tid: str) -> bytes:
        tmk = self.tmks.get(tid)
        if tmk is None:
            return m.pack(_echo(fields, "0810", "03"))  # unknown terminal: invalid merchant
        keys = SessionKeys(pik=_new_key(), mak=_new_key())
        if self.same_keys:
            keys = SessionKeys(pik=keys.mak, mak=keys.mak)
        with self._lock:
            self._keys[tid] = keys
        answer = _echo(fields, "0810", "00")
        if (view := self.view_of(tid)) is not None:
            answer[VIEW_FIELD] = encode_view(view)
        answer["62"] = wrap_keys(tmk, keys, corrupt_kcv=self.bad_kcv)
        return pack_with_mac(answer, keys.mak)

    @staticmethod
    def _key_error(fields: m.Fields) -> m.Fields:
        return _echo(fields, m.response_mti(fields["t"]), KEY_ERROR_CODE)


def _echo(request: m.Fields, mti: str, code: str) -> m.Fields:
    kept = ("3", "4", "7", "11", "12", "13", "41", "42", "49", "60", "70", "90")
    answer = {k: request[k] for k in kept if k in request}
    answer.update({"t": mti, "39": code})
    return answer
