"""Simulated contactless cards and phones for kernel 3 (qVSDC) and kernel 7 (UnionPay qUICS), with real
cryptograms and fDDA signatures (EMV Contactless Book B §3.3, Book C-3 §5).

``ContactlessCard.process`` takes a C-APDU and returns data + SW1 SW2. It answers SELECT of the PPSE
``2PAY.SYS.DDF01`` (directory entry ``61`` with ``4F``, ``50``, ``87``, ``9F2A``), SELECT of its AID (FCI with a
PDOL asking for the TTQ), GET PROCESSING OPTIONS and READ RECORD; a card with ``issuer_update`` also EXTERNAL
AUTHENTICATE (ARPC method 1 over its last ARQC) and secure-messaging PUT DATA on the second presentation after an
online tap (Book C-3 §5.9; CTQ byte 2 b7 when the reader's TTQ byte 3 b8 says it can). At GPO the card decides, as
qVSDC cards do: AAC when personalised to decline, ARQC when the reader asks for an online cryptogram (TTQ byte 2 b8)
or the card is online-only, else TC with the Signed Dynamic Application Data ``9F4B`` (fDDA version 01, over ``9F37
9F02 5F2A 9F69``). The cryptogram is the contact card's (``emv.crypto.arqc``, CCD format A ``9F10``), so
``sim.backends.issuer`` verifies it; certificates come from ``sim.devices.card_oda`` (simulator PKI).

>>> card = ContactlessCard(CONTACTLESS_CATALOGUE["quickpass-debit"])
>>> card.process(bytes.fromhex("00A404000E325041592E5359532E444446303100"))[-2:].hex().upper()
'9000'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from emv import apdu, dol
from emv.crypto import arqc
from emv.crypto.des import xor
from emv.tlv import Tlv
from pos_errors import PosError
from sim.devices.card import CardApplet
from sim.devices.card_oda import CardOda
from sim.devices.cards import CATALOGUE, SimCardProfile

__all__ = ["ContactlessProfile", "ContactlessCard", "EmvModeTapCard", "CONTACTLESS_CATALOGUE", "MASTERCARD_TAP",
           "tap_applet", "TAP_KEYS", "ATS", "RELAY_RESISTANCE_TAP",
           "C3_PDOL", "C3_AFL"]

C3_PDOL = bytes.fromhex("9F6604 9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704")
C3_AFL = bytes.fromhex("08010101" "18010200")  # SFI 1 record 1 (signed), SFI 3 records 1-2 (certificates)
_OK, _NOT_FOUND, _CONDITIONS, _WRONG = b"\x90\x00", b"\x6a\x82", b"\x69\x85", b"\x67\x00"
_RECORD_NOT_FOUND, _NO_INS = b"\x6a\x83", b"\x6d\x00"
_PPSE = b"2PAY.SYS.DDF01"
ATS = bytes.fromhex("0578807002")  # ISO/IEC 14443-4 answer to RATS: FSCI 8, TA/TB/TC present
_FIRST_AC_CVR = {apdu.CryptogramType.AAC: 0x80, apdu.CryptogramType.TC: 0x90, apdu.CryptogramType.ARQC: 0xA0}


@dataclass(frozen=True, kw_only=True)
class ContactlessProfile:
    """One tap-able card or phone on top of a contact ``SimCardProfile`` (PAN, keys, expiry, AID)."""

    card: SimCardProfile
    kernel_id: int = 7
    online_only: bool = True  # no offline approval: every tap gives an ARQC
    decline: bool = False  # AAC at GPO
    ctq: bytes = bytes.fromhex("0000")
    pin_over_cvm_limit: bool = True  # CTQ online PIN when the reader requires a CVM
    phone: bool = False  # consumer device CVM done on the phone (CTQ byte 2 b8), FFI says "mobile phone"
    gpo_sw: bytes = b""  # e.g. 6984 (contactless refused), 6986 (see phone)
    fdda_fault: bool = False  # one byte of 9F4B flipped after signing
    issuer_update: bool = False  # takes the host's 91 and scripts on a second tap (CTQ byte 2 b7)
    label: str = ""


class ContactlessCard:
    """The card's side of a tap: one instance per card, the ATC counts up at each GPO."""

    atr = ATS  # the reader simulator hands it out as the card's ATS

    def __init__(self, profile: ContactlessProfile, *, atc: int = 0x0010) -> None:
        self.profile = profile
        self.atc = atc
        card = profile.card
        self._icc_mk = arqc.derive_icc_master_key(card.issuer_master_key, card.pan, card.psn)
        self._aip = bytes([0x20, 0x40])  # DDA (fDDA) supported; byte 2 b7 contactless EMV mode
        pan = card.pan + ("F" if len(card.pan) % 2 else "")
        self._record1 = [Tlv(0x5A, bytes.fromhex(pan)), Tlv(0x5F24, bytes.fromhex(card.expiry)),
                         Tlv(0x5F28, card.issuer_country), Tlv(0x9F4A, b"\x82")]
        static = b"".join(bytes(t) for t in self._record1)
        self._oda = CardOda(replace(card, oda="dda"), aip=self._aip, static_data=static)
        self._selected: bytes | None = None
        self._last_arqc: tuple[bytes, bytes] | None = None  # (ATC, ARQC) of the last online tap, for the update
        self.issuer_authenticated: bool | None = None  # the last EXTERNAL AUTHENTICATE's verdict
        self.stored: dict[int, bytes] = {}  # data written by issuer scripts (PUT DATA)

    def process(self, command_apdu: bytes) -> bytes:
        """The R-APDU (data + SW) for ``command_apdu``."""
        try:
            command = apdu.parse_command(command_apdu)
        except PosError:
            return _WRONG
        if (command.cla, command.ins) == (0x00, 0xA4):
            return self._select(command.data)
        if (command.cla, command.ins) == (0x80, 0xA8):
            return self._gpo(command.data)
        if (command.cla, command.ins) == (0x00, 0xB2):
            return self._read_record(command.p2 >> 3, command.p1)
        if self.profile.issuer_update and (command.cla, command.ins) == (0x00, 0x82):
            return self._external_authenticate(command.data)
        if self.profile.issuer_update and (command.cla, command.ins) == (0x84, 0xDA):
            return self._put_data(command)
        return _NO_INS

    def _select(self, name: bytes) -> bytes:
        card = self.profile.card
        if name == _PPSE:
            entry = Tlv.template(0x61, Tlv(0x4F, card.aid), Tlv(0x50, card.app_label.encode()),
                                 Tlv(0x87, bytes([card.priority])), Tlv(0x9F2A, bytes([self.profile.kernel_id])))
            fci = Tlv.template(0x6F, Tlv(0x84, _PPSE), Tlv.template(0xA5, Tlv.template(0xBF0C, entry)))
            self._selected = None
            return bytes(fci) + _OK
        if name.startswith(card.aid):
            self._selected = card.aid
            fci = Tlv.template(0x6F, Tlv(0x84, card.aid), Tlv.template(
                0xA5, Tlv(0x50, card.app_label.encode()), Tlv(0x87, bytes([card.priority])), Tlv(0x9F38, C3_PDOL)))
            return bytes(fci) + _OK
        return _NOT_FOUND

    def _gpo(self, data: bytes) -> bytes:
        if self._selected is None:
            return _CONDITIONS
        if self.profile.gpo_sw:
            return self.profile.gpo_sw
        entries = dol.parse(C3_PDOL)
        if data[:1] != b"\x83" or data[1:2] != bytes([len(data) - 2]):
            return _WRONG
        try:
            values = dol.split(entries, data[2:])
        except PosError:
            return _WRONG
        self.atc += 1
        ttq = values[0x9F66]
        online_required, cvm_required = bool(ttq[1] & 0x80), bool(ttq[1] & 0x40)
        kind = apdu.CryptogramType.AAC if self.profile.decline else apdu.CryptogramType.ARQC \
            if online_required or self.profile.online_only else apdu.CryptogramType.TC
        ctq = bytearray(self.profile.ctq)
        if cvm_required and self.profile.pin_over_cvm_limit and not self.profile.phone \
                and kind is apdu.CryptogramType.ARQC:
            ctq[0] |= 0x80
        if self.profile.phone:
            ctq[1] |= 0x80
        if self.profile.issuer_update and ttq[2] & 0x80:
            ctq[1] |= 0x40
        atc = self.atc.to_bytes(2, "big")
        iad = arqc.issuer_application_data(bytes([_FIRST_AC_CVR[kind], 0, 0, 0, 0]))
        session = arqc.derive_session_key(self._icc_mk, atc)
        cryptogram = arqc.generate_ac(session, arqc.ac_input({**values, 0x82: self._aip, 0x9F36: atc,
                                                              0x9F10: iad}))
        card = self.profile.card
        ffi = bytes.fromhex("22800000" if self.profile.phone else "20800000")
        cad = b"\x01" + values[0x9F37] + bytes(ctq) + ffi  # 9F69 fDDA v01
        track2 = _track2(card)
        objects = [Tlv(0x82, self._aip), Tlv(0x94, C3_AFL), Tlv(0x9F36, atc), Tlv(0x9F26, cryptogram),
                   Tlv(0x9F27, bytes([kind])), Tlv(0x9F10, iad), Tlv(0x57, track2),
                   Tlv(0x5F34, bytes.fromhex(card.psn)), Tlv(0x9F6C, bytes(ctq)), Tlv(0x9F6E, ffi),
                   Tlv(0x9F69, cad)]
        self._last_arqc = (atc, cryptogram) if kind is apdu.CryptogramType.ARQC else None
        self.issuer_authenticated = None
        if kind is apdu.CryptogramType.TC:
            terminal_dynamic = values[0x9F37] + values[0x9F02] + values[0x5F2A] + cad
            sdad = self._oda.internal_authenticate(terminal_dynamic, atc + cryptogram[:6])
            if self.profile.fdda_fault:
                sdad = sdad[:10] + bytes([sdad[10] ^ 0x01]) + sdad[11:]
            objects.append(Tlv(0x9F4B, sdad))
        return bytes(Tlv.template(0x77, *objects)) + _OK

    def _external_authenticate(self, data: bytes) -> bytes:
        """ARPC method 1 (Book 2 §8.2.1) over the last ARQC: ``91`` = ARPC (8) + ARC (2)."""
        if self._selected is None or self._last_arqc is None or self.issuer_authenticated is not None:
            return _CONDITIONS
        atc, cryptogram = self._last_arqc
        key = arqc.derive_session_key(self._icc_mk, atc)
        self.issuer_authenticated = len(data) == 10 and arqc.generate_arpc(key, cryptogram, data[8:]) == data[:8]
        return _OK if self.issuer_authenticated else b"\x63\x00"

    def _put_data(self, command: apdu.Command) -> bytes:
        """Issuer script PUT DATA with secure messaging (Book 2 §9.2), MAC as ``sim.backends.issuer`` makes it."""
        if self._selected is None or self._last_arqc is None or len(command.data) < 5:
            return _CONDITIONS
        card = self.profile.card
        atc, cryptogram = self._last_arqc
        value, mac = command.data[:-4], command.data[-4:]
        header = bytes([command.cla, command.ins, command.p1, command.p2, len(command.data)])
        icc_mk = arqc.derive_icc_master_key(xor(card.issuer_master_key, b"\xf0" * 16), card.pan, card.psn)
        if arqc.script_mac(arqc.derive_session_key(icc_mk, atc), header, atc, cryptogram, value) != mac:
            return b"\x69\x88"
        self.stored[(command.p1 << 8) | command.p2] = value
        return _OK

    def _read_record(self, sfi: int, number: int) -> bytes:
        records = {(1, 1): self._record1, **self._oda.records()}
        record = records.get((sfi, number))
        if record is None or self._selected is None:
            return _RECORD_NOT_FOUND
        return bytes(Tlv.template(0x70, *record)) + _OK


def _track2(card: SimCardProfile) -> bytes:
    digits = f"{card.pan}D{card.expiry[:4]}{card.service_code}0000000000"
    return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))


def _c3(key: str, label: str, base: str, **changes: object) -> tuple[str, ContactlessProfile]:
    card = replace(CATALOGUE[base], key=f"cl-{key}")
    return key, ContactlessProfile(card=card, label=label, **changes)  # type: ignore[arg-type]


CONTACTLESS_CATALOGUE: dict[str, ContactlessProfile] = dict((
    _c3("quickpass-debit", "UnionPay QuickPass debit, online / 银联闪付借记卡", "unionpay-debit"),
    _c3("paywave-offline", "Visa payWave, offline under the floor limit / Visa 闪付 脱机", "visa-credit",
        kernel_id=3, online_only=False),
    _c3("quickpass-decline", "QuickPass, declined offline (AAC) / 闪付 脱机拒绝", "unionpay-debit", decline=True),
    _c3("quickpass-phone", "Phone wallet with CDCVM / 手机闪付 (设备验证)", "unionpay-debit", phone=True),
    _c3("paywave-bad-fdda", "Visa payWave, fDDA signature broken / fDDA 失败", "visa-credit", kernel_id=3,
        online_only=False, fdda_fault=True),
    _c3("quickpass-refuses", "Card refuses contactless (6984) / 拒绝非接", "unionpay-debit", gpo_sw=b"\x69\x84"),
    _c3("quickpass-credit", "UnionPay QuickPass credit, offline under the floor limit / 银联闪付信用卡",
        "offline-approve", online_only=False),
    _c3("quickpass-expired", "QuickPass, expired / 闪付 过期卡", "expired", online_only=False),
    _c3("quickpass-update", "QuickPass, issuer update on a second tap (ARPC + script) / 闪付 发卡行更新",
        "issuer-script", issuer_update=True),
    _c3("paywave-signature", "Visa payWave, signature over the CVM limit / Visa 闪付 签名", "visa-credit",
        kernel_id=3, ctq=bytes.fromhex("4000"), pin_over_cvm_limit=False),
))
CONTACTLESS_CATALOGUE["quickpass-credit"] = replace(
    CONTACTLESS_CATALOGUE["quickpass-credit"],
    card=replace(CONTACTLESS_CATALOGUE["quickpass-credit"].card, aid=bytes.fromhex("A000000333010102"),
                 app_label="UnionPay Credit"))


class EmvModeTapCard:
    """A kernel 2 (Mastercard EMV mode) tap card: the contact applet with CDA behind a PPSE (``9F2A`` = 02).

    Everything but SELECT PPSE goes to ``sim.devices.card.CardApplet``, so GENERATE AC, the cryptogram and
    the CDA signature are the contact card's own.
    """

    atr = ATS

    def __init__(self, profile: SimCardProfile, *, relay_resistance: bool = False, relay_delay_us: int = 0) -> None:
        self.profile = profile
        self.relay_resistance = relay_resistance
        self.relay_delay_us = relay_delay_us  # a relay between reader and card: the reader's timer sees it
        self.processing_us = 1000  # this card's own time for EXCHANGE RELAY RESISTANCE DATA
        applet_type = _RrpApplet if relay_resistance else CardApplet
        self.applet = applet_type(profile, random_bytes=lambda n: bytes(range(1, n + 1)))
        self._exchanges = 0
        self._last_generate_ac: tuple[bytes, bytes] | None = None  # (CDOL1 data, the answer) for RECOVER AC

    def process(self, command_apdu: bytes) -> bytes:
        if self.relay_resistance and command_apdu[:2] == b"\x80\xea":
            return self._exchange_relay_resistance_data(command_apdu)
        if command_apdu[:2] == b"\x80\xd0":  # RECOVER AC (Book C-2): the answer of a torn GENERATE AC
            data = command_apdu[5:5 + command_apdu[4]] if len(command_apdu) > 5 else b""
            if self._last_generate_ac is None or self._last_generate_ac[0] != data:
                return b"\x6a\x88"  # referenced data not found
            return self._last_generate_ac[1]
        if command_apdu[:2] == b"\x80\xae":
            answer = self.applet.process(command_apdu)
            self._last_generate_ac = (command_apdu[5:5 + command_apdu[4]], answer)
            return answer
        if command_apdu[:4] == b"\x00\xa4\x04\x00" and command_apdu[5:5 + command_apdu[4]] == _PPSE:
            entry = Tlv.template(0x61, Tlv(0x4F, self.profile.aid), Tlv(0x87, bytes([self.profile.priority])),
                                 Tlv(0x9F2A, b"\x02"))
            fci = Tlv.template(0x6F, Tlv(0x84, _PPSE), Tlv.template(0xA5, Tlv.template(0xBF0C, entry)))
            return bytes(fci) + _OK
        return self.applet.process(command_apdu)


    def _exchange_relay_resistance_data(self, command_apdu: bytes) -> bytes:
        """Book C-2: 80 EA 00 00 04 <terminal entropy> 00 → template 80: device entropy, min / max processing
        time (1 ms / 5 ms) and the R-APDU's estimated time on the air (1.6 ms), in units of 100 µs."""
        if len(command_apdu) not in (9, 10) or command_apdu[4] != 4:
            return _WRONG
        self._exchanges += 1
        entropy = bytes([0xD0, 0x0D, 0x00, self._exchanges & 0xFF])
        return bytes(Tlv(0x80, entropy + bytes.fromhex("000A" "0032" "0010"))) + _OK


class _RrpApplet(CardApplet):
    """The contact applet with AIP byte 2 b1 set: the card supports the relay resistance protocol (signed in its
    static data like the rest of the AIP)."""

    def _aip(self) -> bytes:
        aip = super()._aip()
        return bytes([aip[0], aip[1] | 0x01])


# Kernel 2 tap cards that support relay resistance: key -> the relay's delay in µs (0: no relay).
RELAY_RESISTANCE_TAP: dict[str, int] = {"mastercard-rrp": 0, "mastercard-relay": 60_000}

MASTERCARD_TAP: dict[str, SimCardProfile] = {
    "mastercard-cda": replace(CATALOGUE["mastercard-debit"], key="cl-mastercard-cda", t0=False, response_format=2,
                              oda="cda", offline_capable=True),
    "mastercard-cda-broken": replace(CATALOGUE["mastercard-debit"], key="cl-mastercard-cda-broken", t0=False,
                                     response_format=2, oda="cda", offline_capable=True,
                                     oda_fault="bad-issuer-cert"),
}


def tap_applet(key: str) -> ContactlessCard | EmvModeTapCard:
    """A fresh card or phone to tap: a key of ``CONTACTLESS_CATALOGUE`` or of ``MASTERCARD_TAP``."""
    if key in RELAY_RESISTANCE_TAP:
        return EmvModeTapCard(MASTERCARD_TAP["mastercard-cda"], relay_resistance=True,
                              relay_delay_us=RELAY_RESISTANCE_TAP[key])
    if key in MASTERCARD_TAP:
        return EmvModeTapCard(MASTERCARD_TAP[key])
    return ContactlessCard(CONTACTLESS_CATALOGUE[key])


TAP_KEYS = (*CONTACTLESS_CATALOGUE, *MASTERCARD_TAP, *RELAY_RESISTANCE_TAP)
