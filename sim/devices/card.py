"""A simulated EMV contact card applet with real cryptograms, driven by a ``SimCardProfile``.

``CardApplet.process`` takes a C-APDU and returns data + SW1 SW2, like a card behind a reader. It answers
SELECT of the PSE and of its applications (FCI ``6F``: ``84``, ``A5``: ``50``, ``87``, ``9F38``, ``BF0C``),
READ RECORD (PSE directory and application records), GET PROCESSING OPTIONS (AIP + AFL, format 1 or 2),
GENERATE AC, EXTERNAL AUTHENTICATE, GET DATA (``9F36``, ``9F17``, ``9F13``), VERIFY (plaintext offline PIN)
and GET CHALLENGE, with the usual error status words. Cryptograms are CCD style (``emv.crypto.arqc``): ICC
master key by option A, session key per ATC, AC over ``ac_input`` with the CVR in a format A ``9F10``; the
ARPC in ``91`` is checked at the second GENERATE AC (or by EXTERNAL AUTHENTICATE). The ATC lives in the
instance and counts up at each first GENERATE AC. With ``profile.t0`` the card speaks like a T=0 card:
``61xx`` for case-4 answers (fetch with GET RESPONSE) and ``6Cxx`` when a case-2 command's Le is not the exact
length.

>>> from sim.devices.cards import CATALOGUE
>>> card = CardApplet(CATALOGUE["unionpay-debit"])
>>> card.process(bytes.fromhex("00A404000E315041592E5359532E444446303100"))[-2:].hex().upper()
'9000'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from emv import apdu, dol
from emv.crypto import arqc
from emv.crypto.des import xor
from emv.tlv import Tlv
from pos_errors import PosError
from sim.devices.card_oda import ODA_AFL_ENTRY, CardOda
from sim.devices.cards import SimCardProfile

__all__ = ["CardApplet", "CDOL1", "CDOL2_WITH_91", "CDOL2_WITHOUT_91", "AFL"]

CDOL1 = bytes.fromhex("9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704 9F3501 9F3403")
CDOL2_WITH_91 = bytes.fromhex("8A02 910A 9505 9F3704")
CDOL2_WITHOUT_91 = bytes.fromhex("8A02 9505 9F3704")
AFL = bytes.fromhex("08010201" "10010100")  # SFI 1 records 1-2 (one for ODA), SFI 2 record 1
_PSE_SFI = 1
_CVM_LIST = bytes.fromhex("00000000" "00000000" "4203" "5E03" "1F03")  # online PIN, signature, no CVM
_IAC_DEFAULT = bytes.fromhex("FC70BC9800")
_IAC_DENIAL = bytes.fromhex("0060000000")  # expired or not yet effective: decline offline
_IAC_ONLINE = bytes.fromhex("FC70BC9800")
_PIN_TRIES = 3

OK, NOT_FOUND, RECORD_NOT_FOUND = b"\x90\x00", b"\x6a\x82", b"\x6a\x83"
CONDITIONS, WRONG_LENGTH, BAD_P1P2 = b"\x69\x85", b"\x67\x00", b"\x6a\x86"
NO_INS, NO_CLASS, NO_DATA, AUTH_FAILED = b"\x6d\x00", b"\x6e\x00", b"\x6a\x88", b"\x63\x00"

# CVR byte 1 (CCD, Book 3 Annex C7.3): bits 8-7 second AC, bits 6-5 first AC, bits 2-1 issuer authentication.
_SECOND_AC = {apdu.CryptogramType.AAC: 0x00, apdu.CryptogramType.TC: 0x40, None: 0x80}
_FIRST_AC = {apdu.CryptogramType.AAC: 0x00, apdu.CryptogramType.TC: 0x10, apdu.CryptogramType.ARQC: 0x20}
_ISSUER_AUTH_NOT_PERFORMED, _ISSUER_AUTH_FAILED = 0x02, 0x01


@dataclass
class _App:
    aid: bytes
    label: str
    priority: int
    restricted: bool


class CardApplet:
    """The card. ``random_bytes`` feeds GET CHALLENGE; ``atc`` is the counter before the first transaction."""

    def __init__(self, profile: SimCardProfile, *, random_bytes: Callable[[int], bytes] = os.urandom,
                 atc: int = 0) -> None:
        self.profile = profile
        self.atc = atc
        self.pin_tries = profile.pin_tries
        self.last_online_atc = 0
        self._challenge = b""
        self.stored: dict[int, bytes] = {}  # data written by issuer scripts (PUT DATA)
        self._random = random_bytes
        self._icc_mk = arqc.derive_icc_master_key(profile.issuer_master_key, profile.pan, profile.psn)
        self._apps = [_App(profile.aid, profile.app_label, profile.priority, False)]
        if profile.restricted_aid is not None:
            self._apps.insert(0, _App(profile.restricted_aid, "UnionPay Credit", 1, True))
        if profile.other_aid is not None:
            self._apps.append(_App(profile.other_aid, "UnionPay Credit", profile.other_priority, False))
        self._selected: _App | str | None = None  # an application, "PSE", or nothing
        self._reset()
        self._pending = b""  # T=0: answer waiting for GET RESPONSE
        self._oda: CardOda | None = None
        if profile.oda:
            signed = b"".join(b"".join(bytes(t) for t in self._records(personalised=True)[(1, n)]) for n in (1, 2))
            self._oda = CardOda(profile, aip=self._aip(), static_data=signed)

    @property
    def atr(self) -> bytes:
        """Answer To Reset: direct convention, T=0 or T=1, historical bytes ``SIMCARD``."""
        history = b"SIMCARD"
        if self.profile.t0:
            return bytes([0x3B, 0x60 | len(history), 0x00, 0x00]) + history
        body = bytes([0x80 | len(history), 0x80, 0x01]) + history  # TD1 → TD2 says T=1
        tck = 0
        for b in body:
            tck ^= b
        return b"\x3b" + body + bytes([tck])

    def _reset(self) -> None:
        self._gpo_done = False
        self._first_ac: apdu.CryptogramType | None = None
        self._first_values: dict[int, bytes] = {}
        self._arqc = b""
        self._finished = False
        self._external_auth: bool | None = None
        self._pdol_data = b""
        self._cdol1_data = b""

    # --- transport ------------------------------------------------------------------------------------------

    def process(self, command_apdu: bytes) -> bytes:
        """One C-APDU in, data + SW1 SW2 out."""
        try:
            command = apdu.parse_command(command_apdu)
        except PosError:
            return WRONG_LENGTH
        if self.profile.t0 and command.ins == 0xC0 and command.cla == 0x00:
            return self._get_response(command.le or 0)
        answer = self._dispatch(command)
        if not self.profile.t0 or len(answer) <= 2:
            return answer
        data = answer[:-2]
        if command.data:  # case 4: the answer waits for GET RESPONSE
            self._pending = answer
            return bytes([0x61, len(data) & 0xFF])
        wanted = 256 if not command.le else command.le
        return answer if wanted == len(data) else bytes([0x6C, len(data) & 0xFF])

    def _get_response(self, le: int) -> bytes:
        if not self._pending:
            return CONDITIONS
        data, sw = self._pending[:-2], self._pending[-2:]
        wanted = 256 if le == 0 else le
        if wanted > len(data):
            return bytes([0x6C, len(data)])
        self._pending = data[wanted:] + sw if wanted < len(data) else b""
        return data[:wanted] + (sw if wanted == len(data) else bytes([0x61, len(data) - wanted]))

    def _dispatch(self, command: apdu.Command) -> bytes:
        handlers: dict[tuple[int, int], Callable[[apdu.Command], bytes]] = {
            (0x00, 0xA4): self._select, (0x00, 0xB2): self._read_record,
            (0x80, 0xA8): self._gpo, (0x80, 0xAE): self._generate_ac,
            (0x00, 0x82): self._external_authenticate, (0x80, 0xCA): self._get_data,
            (0x00, 0x20): self._verify, (0x00, 0x84): self._get_challenge,
            (0x00, 0x88): self._internal_authenticate, (0x84, 0xDA): self._put_data,
        }
        handler = handlers.get((command.cla, command.ins))
        if handler is not None:
            return handler(command)
        if any(ins == command.ins for _, ins in handlers):
            return NO_CLASS  # a known instruction under the wrong class byte
        return NO_INS

    # --- selection and records ------------------------------------------------------------------------------

    def _select(self, command: apdu.Command) -> bytes:
        if command.p1 != 0x04 or command.p2 not in (0x00, 0x02):
            return BAD_P1P2
        self._reset()
        if command.data == apdu.PSE:
            if self.profile.no_pse or command.p2 == 0x02:
                self._selected = None
                return NOT_FOUND
            self._selected = "PSE"
            proprietary = Tlv.template(0xA5, Tlv(0x88, bytes([_PSE_SFI])), Tlv(0x5F2D, b"zhen"))
            return bytes(Tlv.template(0x6F, Tlv(0x84, apdu.PSE), proprietary)) + OK
        start = 0
        if command.p2 == 0x02 and isinstance(self._selected, _App):
            start = self._apps.index(self._selected) + 1
        for app in self._apps[start:]:
            if app.aid.startswith(command.data):
                self._selected = app
                return self._fci(app) + OK
        self._selected = None
        return NOT_FOUND

    def _fci(self, app: _App) -> bytes:
        parts = [Tlv(0x50, app.label.encode("ascii")), Tlv(0x87, bytes([app.priority]))]
        if self.profile.pdol:
            parts.append(Tlv(0x9F38, self.profile.pdol))
        parts += [Tlv(0x5F2D, b"zhen"), Tlv(0x9F11, b"\x01"),
                  Tlv.template(0xBF0C, Tlv(0x9F4D, bytes.fromhex("0B0A")))]
        return bytes(Tlv.template(0x6F, Tlv(0x84, app.aid), Tlv.template(0xA5, *parts)))

    def _read_record(self, command: apdu.Command) -> bytes:
        if command.p2 & 0x07 != 0x04 or command.p1 == 0:
            return BAD_P1P2
        sfi, number = command.p2 >> 3, command.p1
        if self._selected == "PSE":
            directory = [Tlv.template(0x61, Tlv(0x4F, a.aid), Tlv(0x50, a.label.encode("ascii")),
                                      Tlv(0x87, bytes([a.priority]))) for a in self._apps]
            if sfi != _PSE_SFI or number > len(directory):
                return RECORD_NOT_FOUND
            return bytes(Tlv.template(0x70, directory[number - 1])) + OK
        if not isinstance(self._selected, _App):
            return CONDITIONS
        record = self._records().get((sfi, number))
        if record is None:
            return RECORD_NOT_FOUND
        data = bytes(Tlv.template(0x70, *record))
        if self.profile.corrupt_record and (sfi, number) == (1, 2):
            data = data[:-3]  # the template's length now promises bytes that never come
        return data + OK

    @property
    def afl(self) -> bytes:
        return AFL[:3] + b"\x02" + AFL[4:] + ODA_AFL_ENTRY if self.profile.oda else AFL

    def _records(self, personalised: bool = False) -> dict[tuple[int, int], list[Tlv]]:
        """The records as served; ``personalised`` gives them as the issuer signed them (before tampering)."""
        p = self.profile
        name = p.cardholder_name
        if p.oda_fault == "tampered-static" and not personalised:
            name = "TAMPERED/" + name
        track2 = f"{p.pan}D{p.expiry[:4]}{p.service_code}0000000000"
        track2 += "F" * (len(track2) % 2)
        pan = p.pan + "F" * (len(p.pan) % 2)
        cdol2 = CDOL2_WITHOUT_91 if p.issuer_auth_by_external_authenticate else CDOL2_WITH_91
        return {
            (1, 1): [Tlv(0x57, bytes.fromhex(track2)), Tlv(0x5F20, name.encode("ascii")),
                     Tlv(0x9F1F, b"0000000000")],
            (1, 2): [Tlv(0x5A, bytes.fromhex(pan)), Tlv(0x5F24, bytes.fromhex(p.expiry)),
                     Tlv(0x5F25, bytes.fromhex(p.effective)), Tlv(0x5F34, bytes.fromhex(p.psn)),
                     Tlv(0x5F28, p.issuer_country), Tlv(0x9F07, b"\xff\x00"), Tlv(0x9F08, p.app_version),
                     Tlv(0x9F42, p.currency), Tlv(0x9F44, b"\x02"), Tlv(0x9F4A, b"\x82")],
            (2, 1): [Tlv(0x8C, CDOL1), Tlv(0x8D, cdol2), Tlv(0x8E, p.cvm_list or _CVM_LIST),
                     Tlv(0x9F0D, _IAC_DEFAULT), Tlv(0x9F0E, p.iac_denial or _IAC_DENIAL), Tlv(0x9F0F, _IAC_ONLINE),
                     Tlv(0x5F30, bytes.fromhex("0" + p.service_code))],
            **(self._oda.records() if self._oda else {}),
        }

    # --- transaction ----------------------------------------------------------------------------------------

    def _aip(self) -> bytes:
        # cardholder verification + terminal risk management; issuer authentication when done by EXT AUTH
        oda = {"sda": 0x40, "dda": 0x20, "cda": 0x21}.get(self.profile.oda, 0)
        return bytes([0x18 | oda | (0x04 if self.profile.issuer_auth_by_external_authenticate else 0), 0x00])

    def _respond(self, values: list[Tlv], format1: bytes) -> bytes:
        if self.profile.response_format == 1:
            return bytes(Tlv(0x80, format1)) + OK
        return bytes(Tlv.template(0x77, *values)) + OK

    def _gpo(self, command: apdu.Command) -> bytes:
        if not isinstance(self._selected, _App) or self._gpo_done:
            return CONDITIONS
        expected = len(dol.build(dol.parse(self.profile.pdol), {}))
        if command.data[:1] != b"\x83" or command.data[1:2] != bytes([expected]) or \
                len(command.data) != 2 + expected:
            return WRONG_LENGTH
        if self._selected.restricted:
            return CONDITIONS  # e.g. not usable for this transaction type or currency
        self._gpo_done = True
        self._pdol_data = command.data[2:]
        aip = self._aip()
        return self._respond([Tlv(0x82, aip), Tlv(0x94, self.afl)], aip + self.afl)

    def _session_key(self) -> bytes:
        return arqc.derive_session_key(self._icc_mk, self.atc.to_bytes(2, "big"))

    def _cryptogram(self, values: dict[int, bytes], cvr: bytes) -> tuple[bytes, bytes]:
        iad = arqc.issuer_application_data(cvr)
        inputs = {**values, 0x82: self._aip(), 0x9F36: self.atc.to_bytes(2, "big"), 0x9F10: iad}
        return arqc.generate_ac(self._session_key(), arqc.ac_input(inputs)), iad

    def _generate_ac(self, command: apdu.Command) -> bytes:
        if not self._gpo_done or self._finished:
            return CONDITIONS
        requested = apdu.CryptogramType(command.p1 & 0xC0) if command.p1 & 0xC0 != 0xC0 else None
        if requested is None:
            return BAD_P1P2
        cda = bool(command.p1 & 0x10) and self._oda is not None and self.profile.oda == "cda"
        if self._first_ac is None:
            return self._first_generate_ac(requested, command.data, cda)
        return self._second_generate_ac(requested, command.data, cda)

    def _first_generate_ac(self, requested: apdu.CryptogramType, data: bytes, cda: bool) -> bytes:
        try:
            values = dol.split(dol.parse(CDOL1), data)
        except PosError:
            return WRONG_LENGTH
        if self.atc >= 0xFFFF:
            return CONDITIONS  # ATC exhausted: the card is dead
        self.atc += 1
        # Card risk management: this card wants to go online (unless offline_capable), or always declines.
        declines = requested is apdu.CryptogramType.AAC or self.profile.decline_first_ac
        offline = requested is apdu.CryptogramType.TC and self.profile.offline_capable
        kind = apdu.CryptogramType.AAC if declines else apdu.CryptogramType.TC if offline \
            else apdu.CryptogramType.ARQC
        cvr = bytes([_SECOND_AC[None] | _FIRST_AC[kind], 0x00, 0x00, 0x00, 0x00])
        cryptogram, iad = self._cryptogram(values, cvr)
        self._first_ac, self._first_values, self._arqc = kind, values, cryptogram
        self._cdol1_data = data
        self._finished = kind is not apdu.CryptogramType.ARQC
        return self._answer_ac(kind, cryptogram, iad, cda, values.get(0x9F37, b""), data)

    def _second_generate_ac(self, requested: apdu.CryptogramType, data: bytes, cda: bool) -> bytes:
        cdol2 = CDOL2_WITHOUT_91 if self.profile.issuer_auth_by_external_authenticate else CDOL2_WITH_91
        try:
            values = dol.split(dol.parse(cdol2), data)
        except PosError:
            return WRONG_LENGTH
        if requested is apdu.CryptogramType.ARQC:
            return CONDITIONS
        issuer_ok = self._external_auth
        if 0x91 in values and any(values[0x91]):
            issuer_ok = self._arpc_ok(values[0x91])
        flags = _ISSUER_AUTH_NOT_PERFORMED if issuer_ok is None else (0 if issuer_ok else _ISSUER_AUTH_FAILED)
        approve = requested is apdu.CryptogramType.TC and issuer_ok is not False \
            and not self.profile.decline_second_ac
        kind = apdu.CryptogramType.TC if approve else apdu.CryptogramType.AAC
        if values.get(0x8A) not in (b"Z3", b"Y3"):  # offline decisions are not online transactions
            self.last_online_atc = self.atc
        cvr = bytes([_SECOND_AC[kind] | _FIRST_AC[apdu.CryptogramType.ARQC] | flags, 0x00, 0x00, 0x00, 0x00])
        merged = {**self._first_values, **{t: v for t, v in values.items() if t in (0x95, 0x9F37)}}
        cryptogram, iad = self._cryptogram(merged, cvr)
        self._finished = True
        return self._answer_ac(kind, cryptogram, iad, cda, values.get(0x9F37, b""), self._cdol1_data + data)

    def _answer_ac(self, kind: apdu.CryptogramType, cryptogram: bytes, iad: bytes, cda: bool = False,
                   unpredictable_number: bytes = b"", cdol_data: bytes = b"") -> bytes:
        cid, atc = bytes([int(kind)]), self.atc.to_bytes(2, "big")
        if cda and self._oda is not None and kind is not apdu.CryptogramType.AAC:  # Book 2 §6.6.1
            hashed = self._pdol_data + cdol_data + bytes(Tlv(0x9F27, cid)) + bytes(Tlv(0x9F36, atc)) \
                + bytes(Tlv(0x9F10, iad))
            signature = self._oda.cda_signature(self._random(8), int(kind), cryptogram, hashed,
                                                unpredictable_number)
            return bytes(Tlv.template(0x77, Tlv(0x9F27, cid), Tlv(0x9F36, atc), Tlv(0x9F4B, signature),
                                      Tlv(0x9F10, iad))) + OK
        values = [Tlv(0x9F27, cid), Tlv(0x9F36, atc), Tlv(0x9F26, cryptogram), Tlv(0x9F10, iad)]
        return self._respond(values, cid + atc + cryptogram + iad)

    def _arpc_ok(self, issuer_authentication_data: bytes) -> bool:
        if not self._arqc:
            return False
        if self.profile.arpc_method == 2:  # Book 2 §8.2.2: ARPC(4) || CSU(4) || proprietary data
            if not 8 <= len(issuer_authentication_data) <= 16:
                return False
            arpc, csu, extra = (issuer_authentication_data[:4], issuer_authentication_data[4:8],
                                issuer_authentication_data[8:])
            return arqc.generate_arpc_method2(self._session_key(), self._arqc, csu, extra) == arpc
        if len(issuer_authentication_data) != 10:
            return False
        arpc, arc = issuer_authentication_data[:8], issuer_authentication_data[8:]
        return arqc.generate_arpc(self._session_key(), self._arqc, arc) == arpc

    def _external_authenticate(self, command: apdu.Command) -> bytes:
        waiting = self._first_ac is apdu.CryptogramType.ARQC and not self._finished
        if not waiting or self._external_auth is not None:
            return CONDITIONS
        self._external_auth = self._arpc_ok(command.data)
        return OK if self._external_auth else AUTH_FAILED

    # --- odds and ends --------------------------------------------------------------------------------------

    def _get_data(self, command: apdu.Command) -> bytes:
        tag = (command.p1 << 8) | command.p2
        values = {0x9F36: self.atc.to_bytes(2, "big"), 0x9F17: bytes([self.pin_tries]),
                  0x9F13: self.last_online_atc.to_bytes(2, "big")}
        if tag not in values:
            return NO_DATA
        return bytes(Tlv(tag, values[tag])) + OK

    def _verify(self, command: apdu.Command) -> bytes:
        if command.p1 != 0x00 or command.p2 not in (0x80, 0x88):
            return BAD_P1P2
        if self.pin_tries == 0:
            return b"\x69\x83"
        data = command.data
        if command.p2 == 0x88:  # Book 2 §7.2: 7F || PIN block || challenge || random, under the ICC key
            if self._oda is None or self.profile.oda == "sda" or not self._challenge:
                return b"\x6a\x81"
            plain = self._oda.decipher(data)
            challenge, self._challenge = self._challenge, b""
            if plain is None or plain[0] != 0x7F or plain[9:17] != challenge:
                return b"\x69\x88"
            data = plain[1:9]
        block = data.hex().upper()
        if len(data) != 8 or block[0] != "2":
            return b"\x6a\x80"
        length = int(block[1], 16)
        if block[2:2 + length] == self.profile.pin:
            self.pin_tries = _PIN_TRIES
            return OK
        self.pin_tries -= 1
        return bytes([0x63, 0xC0 | self.pin_tries])

    def _get_challenge(self, command: apdu.Command) -> bytes:
        self._challenge = self._random(8)
        return self._challenge + OK

    def _put_data(self, command: apdu.Command) -> bytes:
        """Issuer script PUT DATA with secure messaging (Book 2 §9.2): the last 4 data bytes are the MAC."""
        if not self._arqc or len(command.data) < 5:
            return CONDITIONS
        value, mac = command.data[:-4], command.data[-4:]
        header = bytes([command.cla, command.ins, command.p1, command.p2, len(command.data)])
        atc = self.atc.to_bytes(2, "big")
        icc_mk = arqc.derive_icc_master_key(xor(self.profile.issuer_master_key, b"\xf0" * 16), self.profile.pan,
                                            self.profile.psn)
        if arqc.script_mac(arqc.derive_session_key(icc_mk, atc), header, atc, self._arqc, value) != mac:
            return b"\x69\x88"  # incorrect secure messaging data objects
        self.stored[(command.p1 << 8) | command.p2] = value
        return OK

    def _internal_authenticate(self, command: apdu.Command) -> bytes:
        if self._oda is None or self.profile.oda == "sda":
            return NO_INS
        if not self._gpo_done or len(command.data) != 4:
            return CONDITIONS if not self._gpo_done else WRONG_LENGTH
        return bytes(Tlv(0x80, self._oda.internal_authenticate(command.data, self._random(8)))) + OK
