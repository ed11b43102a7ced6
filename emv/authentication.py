"""Offline data authentication inside the kernel: which method, the static data, SDA, DDA and CDA
(EMV 4.4 Book 3 §10.3, Book 2 §5–6). The RSA and certificate checks themselves are in ``emv.oda``.

``StaticData`` collects the records the AFL marks for ODA exactly as Book 3 §10.3 says: from SFI 1–10 the
contents of template ``70`` (without tag and length); from SFI 11–30 the whole record, tag and length
included; a record of SFI 1–10 that is not template ``70`` makes ODA fail. If ``9F4A`` (SDA Tag List) is
present it may only name ``82``, whose value is appended.

The method is the best one both sides support (Book 3 §10.3): CDA, then DDA, then SDA; none sets "ODA was
not performed" (TVR B1b8). SDA also sets "SDA selected" (B1b2). A failure sets the method's TVR bit (SDA
B1b7, DDA B1b4, CDA B1b3), plus "ICC data missing" (B1b6) when a needed object is absent; TSI "ODA performed"
(B1b8) is set whenever one is attempted.
Failures are outcomes, not errors: terminal action analysis decides what they mean.

>>> choose_method(bytes.fromhex("7900"), bytes.fromhex("E0F8C8")), choose_method(b"\\x40\\x00", bytes(3))
(<OdaMethod.CDA: 'CDA'>, <OdaMethod.NONE: 'none'>)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum

from emv import apdu, dol, oda, tlv
from emv.actions import Step, transmit
from emv.capk import Capk
from emv.tvr import AipBit, BitField, TsiBit, TvrBit
from pos_errors import OdaError, RemoteProtocolError

__all__ = ["OdaMethod", "OdaContext", "OdaResult", "StaticData", "choose_method", "authenticate", "pin_key",
           "FAILED_BIT"]


class OdaMethod(Enum):
    NONE = "none"
    SDA = "SDA"
    DDA = "DDA"
    CDA = "CDA"


FAILED_BIT = {OdaMethod.SDA: TvrBit.SDA_FAILED, OdaMethod.DDA: TvrBit.DDA_FAILED, OdaMethod.CDA: TvrBit.CDA_FAILED}
_TERMINAL_BIT = {OdaMethod.CDA: 0x08, OdaMethod.DDA: 0x40, OdaMethod.SDA: 0x80}  # 9F33 byte 3 (Book 4 A2)
_CARD_BIT = {OdaMethod.CDA: AipBit.CDA_SUPPORTED, OdaMethod.DDA: AipBit.DDA_SUPPORTED,
             OdaMethod.SDA: AipBit.SDA_SUPPORTED}
_ISSUER_TAGS = (0x8F, 0x90, 0x9F32)
_ICC_TAGS = (0x9F46, 0x9F47)


def choose_method(aip: bytes, capabilities: bytes) -> OdaMethod:
    """The method to perform: the first of CDA, DDA, SDA that the AIP and 9F33 both claim."""
    card = BitField(AipBit, 2, aip)
    for method in (OdaMethod.CDA, OdaMethod.DDA, OdaMethod.SDA):
        if _CARD_BIT[method] in card and capabilities[2] & _TERMINAL_BIT[method]:
            return method
    return OdaMethod.NONE


@dataclass
class StaticData:
    """The static data to be authenticated, gathered while reading records."""

    data: bytearray = field(default_factory=bytearray)
    broken: bool = False  # a record for ODA of SFI 1-10 was not template 70

    def add_record(self, sfi: int, record: bytes) -> None:
        if sfi > 10:
            self.data += record
            return
        try:
            objects = tlv.decode(record)
        except RemoteProtocolError:
            self.broken = True
            return
        if len(objects) != 1 or objects[0].tag != 0x70:
            self.broken = True
            return
        self.data += objects[0].value

    def with_tag_list(self, card: Mapping[int, bytes]) -> bytes | None:
        """The final static data; None when ``9F4A`` names anything but the AIP (Book 3 §10.3)."""
        tag_list = card.get(0x9F4A)
        if tag_list is None:
            return bytes(self.data)
        if tag_list != b"\x82":
            return None
        return bytes(self.data) + card.get(0x82, b"")


@dataclass(frozen=True)
class OdaContext:
    capks: Mapping[tuple[bytes, int], Capk]
    revoked: Collection[tuple[bytes, int, bytes]]
    today: dt.date
    default_ddol: bytes


@dataclass
class OdaResult:
    method: OdaMethod
    icc_key: oda.RecoveredKey | None = None  # kept for CDA at GENERATE AC
    failed: bool = False
    issuer_key: oda.RecoveredKey | None = None  # kept for the ICC PIN encipherment key (9F2D)


def authenticate(method: OdaMethod, ctx: OdaContext, card: dict[int, bytes], terminal: Mapping[int, bytes],
                 static: StaticData, rid: bytes, pan: str, tvr: BitField[TvrBit],
                 tsi: BitField[TsiBit]) -> Step[OdaResult]:
    """Perform ``method`` up to (for CDA) the recovery of the ICC key; sets TVR/TSI; never raises for a card
    whose data do not verify."""
    if method is OdaMethod.NONE:
        tvr.set(TvrBit.ODA_NOT_PERFORMED)
        return OdaResult(method)
    tsi.set(TsiBit.ODA_PERFORMED)
    if method is OdaMethod.SDA:
        tvr.set(TvrBit.SDA_SELECTED)  # Book 3 Annex C5 B1b2
    result = OdaResult(method)
    try:
        result.icc_key = yield from _perform(method, ctx, card, terminal, static, rid, pan, tvr, result)
    except OdaError:
        result.failed = True
        tvr.set(FAILED_BIT[method])
    return result


def _perform(method: OdaMethod, ctx: OdaContext, card: dict[int, bytes], terminal: Mapping[int, bytes],
             static: StaticData, rid: bytes, pan: str, tvr: BitField[TvrBit],
             result: OdaResult) -> Step[oda.RecoveredKey | None]:
    needed = _ISSUER_TAGS + ((0x93,) if method is OdaMethod.SDA else _ICC_TAGS)
    if any(tag not in card for tag in needed):
        tvr.set(TvrBit.ICC_DATA_MISSING)
        raise OdaError("data needed for offline data authentication are missing")
    static_data = static.with_tag_list(card)
    if static.broken or static_data is None:
        raise OdaError("the static data to be authenticated are malformed")
    capk = ctx.capks.get((rid, card[0x8F][0])) if len(card[0x8F]) == 1 else None
    if capk is None or capk.expired(ctx.today):  # Book 2 §5.1: a CA key is withdrawn at its expiry date
        raise OdaError("no usable CA public key for this RID and index")
    issuer = oda.recover_issuer_public_key(capk, card[0x90], card.get(0x92, b""), card[0x9F32], pan=pan,
                                           today=ctx.today, revoked=ctx.revoked)
    result.issuer_key = issuer
    if method is OdaMethod.SDA:
        card[0x9F45] = oda.verify_signed_static_data(issuer, card[0x93], static_data)
        return None
    icc = oda.recover_icc_public_key(issuer, card[0x9F46], card.get(0x9F48, b""), card[0x9F47], static_data,
                                     pan=pan, today=ctx.today)
    if method is OdaMethod.CDA:
        return icc
    ddol = card.get(0x9F49) or ctx.default_ddol  # Book 3 §10.3: the default DDOL when the card has none
    entries = dol.parse(ddol)
    if not any(e.tag == 0x9F37 for e in entries):
        raise OdaError("the DDOL does not ask for the unpredictable number")
    ddol_data = dol.build(entries, {**card, **terminal})
    response = yield from transmit(apdu.internal_authenticate(ddol_data), "INTERNAL AUTHENTICATE")
    if not response.ok:
        raise OdaError(f"INTERNAL AUTHENTICATE failed: {response.sw:04X}")
    try:
        answer = tlv.decode(response.data)
    except RemoteProtocolError as exc:
        raise OdaError("INTERNAL AUTHENTICATE answer is not TLV") from exc
    signed = answer[0].value if len(answer) == 1 and answer[0].tag == 0x80 else tlv.first(
        answer[0].children if answer and answer[0].tag == 0x77 else (), 0x9F4B)
    if not signed:
        raise OdaError("INTERNAL AUTHENTICATE answer has no signed dynamic application data")
    card[0x9F4B] = signed
    card[0x9F4C] = oda.verify_signed_dynamic_data(icc, signed, ddol_data)
    return icc


def pin_key(result: OdaResult, card: Mapping[int, bytes], pan: str, today: dt.date) -> tuple[bytes, bytes] | None:
    """The key for offline enciphered PIN (Book 2 §7.1): the ICC PIN Encipherment Public Key from ``9F2D``
    (with ``9F2E``, ``9F2F``; format 04, hash without static data) when the card has one, else the ICC key.
    None when neither can be recovered."""
    if 0x9F2D in card and 0x9F2E in card and result.issuer_key is not None:
        try:
            key = oda.recover_icc_public_key(result.issuer_key, card[0x9F2D], card.get(0x9F2F, b""), card[0x9F2E],
                                             b"", pan=pan, today=today)
        except OdaError:
            return None
        return key.modulus, key.exponent
    if result.icc_key is None or result.failed:
        return None
    return result.icc_key.modulus, result.icc_key.exponent

