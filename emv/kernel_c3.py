"""Kernel 3 (qVSDC, EMV Contactless Book C-3 v2.x) and its UnionPay qUICS counterpart (kernel 7), as one
generator that Entry Point runs (``emv.entry_point.Kernel``).

Steps:

1. GET PROCESSING OPTIONS with the PDOL data (Book C-3 §5.2): the TTQ ``9F66`` Entry Point built for this
   combination, amount, currency, date, unpredictable number. A PDOL without ``9F66`` is not a qVSDC
   application: Select Next. ``6984`` → Try Another Interface, ``6986`` → Try Again with "see phone" (a phone
   waiting for its CDCVM, Book C-3 §5.2.2), ``6985`` → Select Next, anything else → End Application.
2. READ RECORD over the AFL (Book C-3 §5.3), keeping the records marked for offline data authentication.
3. The card's decision by the Cryptogram Information Data ``9F27`` (Book C-3 §5.4): AAC → Declined,
   ARQC → Online Request, TC → offline approval if the reader did not ask for a cryptogram online
   (amount over the floor limit, status check, zero amount), the application has not expired (else CTQ
   "go online if expired") and fDDA verifies.
4. fDDA (Book C-3 Annex fDDA, Book 2 §6.5): the Signed Dynamic Application Data ``9F4B`` of the GPO answer,
   verified with the ICC key recovered through ``emv.oda``; terminal dynamic data ``9F37`` for fDDA version
   ``00``, ``9F37 9F02 5F2A 9F69`` for version ``01``. A failure follows the CTQ (byte 1 b6 go online,
   b5 switch interface) or declines.
5. CVM (Book C-3 §5.7) from the CTQ ``9F6C`` and TTQ: online PIN, consumer device CVM (checked against the
   CTQ copy in ``9F69``), signature; when the reader requires a CVM and the card names none: online PIN if
   going online, else signature, else Try Another Interface.

6. Issuer update (Book C-3 §5.9, ``emv.issuer_update``): an Online Request says ``Start: B`` when card (CTQ byte 2
   b7) and reader (TTQ byte 3 b8) support it; Entry Point asks for the card again after the host's answer.

Not done: MSD, the qVSDC "offline spending amount"
display. ``9F5D`` is passed to the host.

>>> from emv.selection import Fci
>>> outcome_for_pdol(Fci(df_name=b"\\xa0\\x00\\x00\\x00\\x03\\x10\\x10", pdol=bytes.fromhex("9F0206"))).status.value
'select_next'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from emv import apdu, dol, issuer_update, oda, records, tlv
from emv.actions import Step, transmit
from emv.authentication import StaticData
from emv.contactless import (
    TTQ_CVM_REQUIRED,
    TTQ_ONLINE_CRYPTOGRAM,
    Cvm,
    Message,
    Outcome,
    Start,
    Status,
    UiRequest,
    UiStatus,
)
from emv.entry_point import KernelContext
from emv.selection import Fci
from pos_errors import OdaError, RemoteProtocolError

__all__ = ["run", "outcome_for_pdol", "terminal_data", "FIELD_55_TAGS", "CVM_RESULTS"]

# Field 55 for a C-3 online request: the contact set plus the contactless qualifiers (Book C-3 Annex A).
FIELD_55_TAGS: tuple[int, ...] = (0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A,
                                  0x82, 0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x84, 0x9F66, 0x9F6C, 0x9F6E,
                                  0x9F7C, 0x9F5D, 0x9F09, 0x9F1E)
_HOST_HEADER_TAGS = (0x5A, 0x57, 0x5F24, 0x5F34)  # travel in the ISO 8583 fields, not in field 55
# CVM Results 9F34 (Book 4 Annex A4) for the outcome's CVM.
CVM_RESULTS: dict[Cvm, bytes] = {
    Cvm.ONLINE_PIN: bytes.fromhex("020002"), Cvm.SIGNATURE: bytes.fromhex("1E0000"),
    Cvm.NO_CVM: bytes.fromhex("1F0002"), Cvm.CONFIRMATION_CODE_VERIFIED: bytes.fromhex("010002"),
    Cvm.NA: bytes.fromhex("3F0000"),
}
_CTQ_ONLINE_PIN, _CTQ_SIGNATURE, _CTQ_ONLINE_IF_ODA_FAILS, _CTQ_SWITCH_IF_ODA_FAILS = 0x80, 0x40, 0x20, 0x10
_CTQ_ONLINE_IF_EXPIRED = 0x08
_CTQ_CDCVM = 0x80  # byte 2
_TTQ_OFFLINE_ONLY, _TTQ_ONLINE_PIN, _TTQ_SIGNATURE = 0x08, 0x04, 0x02  # byte 1
_MANDATORY = (0x9F26, 0x9F36, 0x9F10, 0x82)
_DECLINED = UiRequest(Message.NOT_AUTHORISED, UiStatus.NOT_READY)
_TAI = UiRequest(Message.INSERT_OR_SWIPE, UiStatus.PROCESSING_ERROR)
_END = UiRequest(Message.TRY_ANOTHER_CARD, UiStatus.PROCESSING_ERROR)
_READ_OK = UiRequest(Message.CARD_READ_OK, UiStatus.CARD_READ_SUCCESSFULLY)


def terminal_data(*, amount_minor: int, unpredictable_number: bytes, today: dt.date, country: bytes = b"\x01\x56",
                  currency: bytes = b"\x01\x56", transaction_type: int = 0x00, terminal_type: int = 0x22,
                  capabilities: bytes = bytes.fromhex("E068C8"), ifd_serial: bytes = b"POS00001",
                  other_minor: int = 0) -> dict[int, bytes]:
    """The terminal's data elements a C-3 PDOL asks for, in their Annex A formats."""
    return {0x9F02: _n(amount_minor, 6), 0x9F03: _n(other_minor, 6), 0x9F1A: country, 0x5F2A: currency,
            0x9A: bytes.fromhex(today.strftime("%y%m%d")), 0x9C: bytes([transaction_type]), 0x95: bytes(5),
            0x9F37: unpredictable_number, 0x9F35: bytes([terminal_type]), 0x9F33: capabilities,
            0x9F1E: ifd_serial}


def outcome_for_pdol(fci: Fci) -> Outcome | None:
    """Book C-3 §5.2.1: a PDOL that does not ask for the TTQ is not ours (Select Next); else None."""
    entries = dol.parse(fci.pdol or b"")
    if all(e.tag != 0x9F66 for e in entries):
        return Outcome(Status.SELECT_NEXT, "the PDOL does not ask for the TTQ 9F66: not a qVSDC application")
    return None


def run(ctx: KernelContext) -> Step[Outcome]:
    """One C-3 transaction from the SELECT AID answer to its Outcome (Book C-3 §5)."""
    early = outcome_for_pdol(ctx.fci)
    if early is not None:
        return early
    terminal = dict(ctx.terminal)
    ttq = terminal[0x9F66]
    pdol_data = dol.build(dol.parse(ctx.fci.pdol or b""), terminal)
    response = yield from transmit(apdu.get_processing_options(pdol_data), "GET PROCESSING OPTIONS")
    refused = _gpo_refused(response.sw)
    if refused is not None:
        return refused
    card = _parse_gpo(response.data)
    static = StaticData()
    if 0x94 in card:
        for entry in records.parse_afl(card[0x94]):
            for number in range(entry.first, entry.last + 1):
                rec = yield from transmit(apdu.read_record(entry.sfi, number), "READ RECORD")
                if not rec.ok:
                    return Outcome(Status.END_APPLICATION, f"READ RECORD answered {rec.sw:04X}", ui=_END)
                for tag, value in records.parse_record(rec.data, entry.sfi).items():
                    card.setdefault(tag, value)
                if number - entry.first < entry.oda_records:
                    static.add_record(entry.sfi, rec.data)
    missing = [f"{t:X}" for t in _MANDATORY if t not in card] + ([] if 0x57 in card or 0x5A in card else ["57"])
    if missing:
        return Outcome(Status.END_APPLICATION, f"card data missing: {', '.join(missing)}", ui=_END)
    if 0x5A not in card:
        card[0x5A] = bytes.fromhex(_pan_from_track2(card[0x57]))
    return _decide(ctx, terminal, card, static, ttq)


def _decide(ctx: KernelContext, terminal: dict[int, bytes], card: dict[int, bytes], static: StaticData,
            ttq: bytes) -> Outcome:
    """Book C-3 §5.4–5.7: the card's cryptogram, then fDDA and CVM, into an Outcome with its data record."""
    cid = card.get(0x9F27, b"\x80")[0] & 0xC0
    if cid == apdu.CryptogramType.AAC:
        return Outcome(Status.DECLINED, "the card declined offline (AAC)", ui=_DECLINED, field_off_ms=0,
                       data_record=_record(terminal, card, Cvm.NA))
    online = cid == apdu.CryptogramType.ARQC
    if not online:
        if ttq[TTQ_ONLINE_CRYPTOGRAM[0]] & TTQ_ONLINE_CRYPTOGRAM[1]:
            return Outcome(Status.DECLINED, "the card approved offline although the reader asked for an online "
                           "cryptogram", ui=_DECLINED, data_record=_record(terminal, card, Cvm.NA))
        if _expired(card, ctx.today):
            _tvr(terminal, 1, 0x40)  # Book 3 Annex C5: byte 2 b7 expired application
            if not _ctq(card, 0) & _CTQ_ONLINE_IF_EXPIRED or ttq[0] & _TTQ_OFFLINE_ONLY:
                return Outcome(Status.DECLINED, "the application has expired", ui=_DECLINED,
                               data_record=_record(terminal, card, Cvm.NA))
            online = True
        else:
            failure = _fdda(ctx, terminal, card, static)
            if failure is not None:
                _tvr(terminal, 0, 0x08)  # byte 1 b4: DDA failed (fDDA is DDA's contactless form)
                if _ctq(card, 0) & _CTQ_ONLINE_IF_ODA_FAILS and not ttq[0] & _TTQ_OFFLINE_ONLY:
                    online = True
                elif _ctq(card, 0) & _CTQ_SWITCH_IF_ODA_FAILS:
                    return Outcome(Status.TRY_ANOTHER_INTERFACE, f"fDDA failed: {failure}", ui=_TAI)
                else:
                    return Outcome(Status.DECLINED, f"fDDA failed: {failure}", ui=_DECLINED,
                                   data_record=_record(terminal, card, Cvm.NA))
    cvm = _cvm(card, ttq, online)
    if cvm is None:
        return Outcome(Status.TRY_ANOTHER_INTERFACE, "a CVM is required and the card and reader share none",
                       ui=_TAI)
    if isinstance(cvm, Outcome):
        return cvm
    record = _record(terminal, card, cvm)
    if online:
        return Outcome(Status.ONLINE_REQUEST, f"the card asks to go online (CVM {cvm.value})", cvm=cvm,
                       ui=UiRequest(Message.AUTHORISING, UiStatus.NOT_READY), field_off_ms=0,
                       data_record=record,
                       start=Start.B if issuer_update.supported(ttq, card.get(0x9F6C, b"")) else Start.NA)
    if cvm is Cvm.ONLINE_PIN:
        return Outcome(Status.DECLINED, "online PIN required but the card approved offline", ui=_DECLINED,
                       data_record=record)
    message = Message.APPROVED_PLEASE_SIGN if cvm is Cvm.SIGNATURE else Message.APPROVED
    return Outcome(Status.APPROVED, "approved offline by the card (TC, fDDA verified)", cvm=cvm, receipt=True,
                   ui=UiRequest(message, UiStatus.CARD_READ_SUCCESSFULLY), field_off_ms=0, data_record=record)


def _gpo_refused(sw: int) -> Outcome | None:
    """Book C-3 §5.2.2: what a GPO status word other than 9000 means."""
    if sw == 0x9000:
        return None
    if sw == 0x6984:
        return Outcome(Status.TRY_ANOTHER_INTERFACE, "the card refuses contactless (6984)", ui=_TAI)
    if sw == 0x6986:
        return Outcome(Status.TRY_AGAIN, "the phone asks for its own CVM first (6986)", start=Start.B,
                       ui_on_restart=UiRequest(Message.SEE_PHONE, UiStatus.PROCESSING_ERROR, 1300))
    if sw == 0x6985:
        return Outcome(Status.SELECT_NEXT, "the card refuses this transaction (6985)", start=Start.C)
    return Outcome(Status.END_APPLICATION, f"GET PROCESSING OPTIONS answered {sw:04X}", ui=_END)


def _parse_gpo(data: bytes) -> dict[int, bytes]:
    objects = tlv.decode(data)
    if len(objects) != 1 or objects[0].tag != 0x77:
        raise RemoteProtocolError("a qVSDC GPO answer must be one format 2 template 77", offset=0, tag="77")
    values: dict[int, bytes] = {}
    for obj in objects[0].children:
        if not obj.constructed:
            values.setdefault(obj.tag, obj.value)
    if len(values.get(0x82, b"")) != 2:
        raise RemoteProtocolError("GPO answer lacks a 2-byte AIP 82", tag="82")
    if 0x9F27 in values and len(values[0x9F27]) != 1:
        raise RemoteProtocolError("CID 9F27 is not 1 byte", tag="9F27")
    return values


def _ctq(card: Mapping[int, bytes], index: int) -> int:
    ctq = card.get(0x9F6C, b"")
    return ctq[index] if len(ctq) == 2 else 0


def _cvm(card: Mapping[int, bytes], ttq: bytes, online: bool) -> Cvm | Outcome | None:
    """Book C-3 §5.7: the CVM the card asks for, or the reader's fallback when it requires one."""
    if _ctq(card, 0) & _CTQ_ONLINE_PIN and ttq[0] & _TTQ_ONLINE_PIN:
        return Cvm.ONLINE_PIN
    if _ctq(card, 1) & _CTQ_CDCVM:
        cad = card.get(0x9F69, b"")
        if len(cad) >= 7 and cad[5:7] != card[0x9F6C]:  # 9F69 v01: version, UN, CTQ as signed by the card
            return Outcome(Status.DECLINED, "consumer device CVM not confirmed by 9F69", ui=_DECLINED)
        return Cvm.CONFIRMATION_CODE_VERIFIED
    if _ctq(card, 0) & _CTQ_SIGNATURE and ttq[0] & _TTQ_SIGNATURE:
        return Cvm.SIGNATURE
    if not ttq[TTQ_CVM_REQUIRED[0]] & TTQ_CVM_REQUIRED[1]:
        return Cvm.NO_CVM
    if online and ttq[0] & _TTQ_ONLINE_PIN:
        return Cvm.ONLINE_PIN
    if ttq[0] & _TTQ_SIGNATURE:
        return Cvm.SIGNATURE
    return None


def _fdda(ctx: KernelContext, terminal: Mapping[int, bytes], card: dict[int, bytes],
          static: StaticData) -> str | None:
    """fDDA (Book C-3 Annex, Book 2 §6.5): None when verified, else why it failed."""
    if not card[0x82][0] & 0x20:
        return "the card does not support DDA (AIP)"
    needed = (0x8F, 0x90, 0x9F32, 0x9F46, 0x9F47, 0x9F4B)
    absent = [f"{t:X}" for t in needed if t not in card]
    if absent:
        return f"missing {', '.join(absent)}"
    if len(card[0x8F]) != 1:
        return "CA public key index 8F is not 1 byte"
    capk = ctx.capks.get((ctx.fci.df_name[:5], card[0x8F][0]))
    if capk is None:
        return f"no CA key {card[0x8F].hex().upper()}"
    if ctx.today is not None and capk.expired(ctx.today):  # Book 2 §5.1: withdrawn at its expiry date
        return f"CA key {card[0x8F].hex().upper()} expired {capk.expiry}"
    static_data = static.with_tag_list(card)
    if static.broken or static_data is None:
        return "static data to be authenticated are malformed"
    pan = card[0x5A].hex().upper().rstrip("F")
    today = ctx.today
    cad = card.get(0x9F69, b"")
    dynamic = terminal[0x9F37]
    if cad[:1] == b"\x01":  # fDDA version 01
        dynamic += terminal[0x9F02] + terminal[0x5F2A] + cad
    try:
        issuer = oda.recover_issuer_public_key(capk, card[0x90], card.get(0x92, b""), card[0x9F32], pan=pan,
                                               today=today)
        icc = oda.recover_icc_public_key(issuer, card[0x9F46], card.get(0x9F48, b""), card[0x9F47],
                                         static_data, pan=pan, today=today)
        card[0x9F4C] = oda.verify_signed_dynamic_data(icc, card[0x9F4B], dynamic)
    except OdaError as exc:
        return str(exc)
    return None


def _tvr(terminal: dict[int, bytes], index: int, mask: int) -> None:
    tvr = bytearray(terminal.get(0x95, bytes(5)).ljust(5, b"\x00"))
    tvr[index] |= mask
    terminal[0x95] = bytes(tvr)


def _expired(card: Mapping[int, bytes], today: dt.date | None) -> bool:
    expiry = card.get(0x5F24)
    if expiry is None or today is None:
        return False
    return expiry.hex() < today.strftime("%y%m%d")


def _record(terminal: Mapping[int, bytes], card: Mapping[int, bytes], cvm: Cvm) -> dict[int, bytes]:
    values = {**terminal, **card, 0x9F34: CVM_RESULTS[cvm]}
    out = {t: values[t] for t in _HOST_HEADER_TAGS if t in values}
    out.update({t: values[t] for t in FIELD_55_TAGS if t in values})
    return out


def _pan_from_track2(track2: bytes) -> str:
    digits = track2.hex().upper().split("D", 1)[0]
    return digits + ("F" if len(digits) % 2 else "")


def _n(value: int, length: int) -> bytes:
    return bytes.fromhex(f"{value:0{length * 2}d}")
