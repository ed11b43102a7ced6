"""Kernel 2 (Mastercard, EMV Contactless Book C-2 v2.x), EMV mode only, a SUBSET: enough for a card that does
CDA over GENERATE AC. Run by Entry Point as ``emv.entry_point.Kernel``.

Done (Book C-2 §6, Book 3, Book 2 §6.6):

1. GET PROCESSING OPTIONS with the PDOL data; ``6985`` → Select Next, other errors → End Application.
2. READ RECORD over the AFL, static data for ODA; ICC key recovered up front when the card supports CDA
   (``emv.authentication``, method CDA).
3. CVM (C-2 §7.5, simplified): under the Reader CVM Required Limit "no CVM"; at or over it, on-device CVM if
   the AIP says the card supports it (byte 1 b2), else the first CVM List ``8E`` rule among online PIN,
   signature and no CVM.
4. Terminal action analysis (C-2 §7.6 with Book 3 §10.7, ``emv.tvr.decide``): the TVR gets "ODA not
   performed" (no CDA, or no date to check it) / "CDA failed" (key recovery), "expired application", "not
   yet effective", "exceeds floor limit" and the relay resistance bits of byte 5; IAC-Denial ``9F0E`` or
   ``TAC_DENIAL`` matching → AAC; else IAC-Online ``9F0F`` or ``TAC_ONLINE`` → ARQC; else TC (the reader is
   online capable; ``TAC_DEFAULT`` and IAC-Default ``9F0D`` decide for an offline-only reader). A status
   check or a zero amount asks for an ARQC whatever the codes say. A malformed IAC ends the application.
   GENERATE AC asks for CDA whenever the ICC key is known, and the signature is verified with the
   transaction data hash (Book 2 §6.6.2); a failure declines.
5. Outcome: TC → Approved, ARQC → Online Request (field 55), AAC → Declined.

Relay resistance (``emv.relay_resistance``): when the AIP says the card supports it, EXCHANGE RELAY RESISTANCE
DATA after GPO, timed by the reader; TVR byte 5 records it; "time limits exceeded" → AAC (``TAC_DENIAL``),
"threshold exceeded" → ARQC (``TAC_ONLINE``); a card answering faster than its own minimum → End Application.

Torn transaction recovery (``emv.torn``): a record written before GENERATE AC and dropped after its answer; the
same card tapped again for the same amount gets RECOVER AC and the torn tap completes on its own data.

Not done: mag-stripe mode, data
exchange (DEK/DET), Outcome Parameter Set bytes ``DF8129``, TACs per combination (``DF8120``–``DF8122``: one
reader-wide set here).

>>> cvm_for(bytes.fromhex("1800"), None, over_limit=False).value
'no_cvm'
"""

from __future__ import annotations

from collections.abc import Mapping

from emv import apdu, dol, oda, records, relay_resistance, tlv
from emv.actions import Step, transmit
from emv.authentication import OdaContext, OdaMethod, StaticData, authenticate
from emv.contactless import Cvm, Message, Outcome, Start, Status, UiRequest, UiStatus
from emv.cvm import parse_cvm_list
from emv.entry_point import KernelContext
from emv.kernel_c3 import CVM_RESULTS, FIELD_55_TAGS
from emv.torn import TornRecord, recover_ac
from emv.tvr import BitField, TsiBit, TvrBit, decide
from pos_errors import OdaError, RemoteProtocolError

__all__ = ["run", "cvm_for", "action_analysis", "TAC_DEFAULT", "TAC_DENIAL", "TAC_ONLINE"]

# The reader's kernel 2 Terminal Action Codes (C-2 DF8120 / DF8121 / DF8122), TVR byte by byte:
# denial: expired or not yet effective, relay resistance time limits exceeded;
# online: ODA not performed, ICC data missing, CDA failed, exceeds floor limit, relay resistance threshold.
TAC_DENIAL = bytes([0x00, 0x60, 0x00, 0x00, relay_resistance.TVR_TIME_LIMITS])
TAC_ONLINE = bytes([0xA4, 0x00, 0x00, 0x80, relay_resistance.TVR_THRESHOLD])
TAC_DEFAULT = bytes([0xA4, 0x60, 0x00, 0x80, relay_resistance.TVR_TIME_LIMITS | relay_resistance.TVR_THRESHOLD])

_CDA, _ON_DEVICE_CVM = 0x01, 0x02  # AIP byte 1
_RRP = 0x01  # AIP byte 2 b1: relay resistance protocol supported
_DECLINED = UiRequest(Message.NOT_AUTHORISED, UiStatus.NOT_READY)
_END = UiRequest(Message.TRY_ANOTHER_CARD, UiStatus.PROCESSING_ERROR)
_CVM_CODES = {0x02: Cvm.ONLINE_PIN, 0x1E: Cvm.SIGNATURE, 0x1F: Cvm.NO_CVM}


def cvm_for(aip: bytes, cvm_list: bytes | None, *, over_limit: bool) -> Cvm:
    """Book C-2 §7.5 (simplified): the CVM for this amount."""
    if not over_limit:
        return Cvm.NO_CVM
    if aip[0] & _ON_DEVICE_CVM:
        return Cvm.CONFIRMATION_CODE_VERIFIED
    if cvm_list:
        try:
            rules = parse_cvm_list(cvm_list).rules
        except RemoteProtocolError:
            rules = ()
        for rule in rules:
            if rule.method in _CVM_CODES:
                return _CVM_CODES[rule.method]
    return Cvm.NO_CVM


def run(ctx: KernelContext) -> Step[Outcome]:
    """One C-2 EMV-mode transaction (subset) from the SELECT AID answer to its Outcome."""
    terminal = dict(ctx.terminal)
    pdol_data = dol.build(dol.parse(ctx.fci.pdol or b""), terminal)
    response = yield from transmit(apdu.get_processing_options(pdol_data), "GET PROCESSING OPTIONS")
    if response.sw == 0x6985:
        return Outcome(Status.SELECT_NEXT, "the card refuses this transaction (6985)", start=Start.C)
    if not response.ok:
        return Outcome(Status.END_APPLICATION, f"GET PROCESSING OPTIONS answered {response.sw:04X}", ui=_END)
    card = records.parse_gpo_response(response.data)
    rrp_bits = relay_resistance.TVR_NOT_PERFORMED
    if len(card.get(0x82, b"")) == 2 and card[0x82][1] & _RRP:  # C-2: after GPO, before the records
        rrp = yield from relay_resistance.exchange(terminal, ctx.random_bytes)
        if rrp.end is not None:
            return Outcome(Status.END_APPLICATION, rrp.end, ui=_END)
        rrp_bits = rrp.tvr_bits
    terminal[0x95] = _with_tvr5(terminal.get(0x95), rrp_bits)
    static = StaticData()
    for entry in records.parse_afl(card[0x94]):
        for number in range(entry.first, entry.last + 1):
            rec = yield from transmit(apdu.read_record(entry.sfi, number), "READ RECORD")
            if not rec.ok:
                return Outcome(Status.END_APPLICATION, f"READ RECORD answered {rec.sw:04X}", ui=_END)
            for tag, value in records.parse_record(rec.data, entry.sfi).items():
                card.setdefault(tag, value)
            if number - entry.first < entry.oda_records:
                static.add_record(entry.sfi, rec.data)
    if 0x5A not in card or 0x8C not in card:
        return Outcome(Status.END_APPLICATION, "card data missing: 5A or 8C", ui=_END)
    pan = records.pan_digits(card[0x5A])
    icc_key = None
    if card[0x82][0] & _CDA and ctx.today is not None:
        tvr, tsi = BitField(TvrBit, 5, terminal.get(0x95)), BitField(TsiBit, 2)
        oda_ctx = OdaContext(ctx.capks, (), ctx.today, bytes.fromhex("9F3704"))
        result = yield from authenticate(OdaMethod.CDA, oda_ctx, card, terminal, static, ctx.fci.df_name[:5], pan,
                                         tvr, tsi)
        icc_key = result.icc_key
        terminal[0x95] = bytes(tvr)  # what ODA found (Book 3 Annex C5) travels in field 55
    ind = ctx.candidate.indicators
    cvm = cvm_for(card[0x82], card.get(0x8E), over_limit=ind.cvm_limit_exceeded)
    terminal[0x9F34] = CVM_RESULTS[cvm]
    terminal[0x95], kind = action_analysis(ctx, terminal.get(0x95), card, cda_key=icc_key is not None)
    cdol1_data = dol.build(dol.parse(card[0x8C]), {**card, **terminal})
    cda = icc_key is not None and kind is not apdu.CryptogramType.AAC
    psn = records.psn_digits(card.get(0x5F34)) or ""
    answer = None
    torn = ctx.torn.take(pan, psn) if ctx.torn is not None else None
    if torn is not None and torn.terminal.get(0x9F02) == terminal.get(0x9F02):  # same card, same sale: recover
        recovered = yield from transmit(recover_ac(torn.cdol1_data), "RECOVER AC")
        if recovered.ok:  # the card had finished the torn GENERATE AC: complete that one, on its own data
            answer, terminal, pdol_data, cdol1_data, cda = recovered, dict(torn.terminal), torn.pdol_data, \
                torn.cdol1_data, torn.cda
    if answer is None:
        if ctx.torn is not None:  # write-ahead: a card taken away during GENERATE AC leaves this behind
            ctx.torn.put(TornRecord(pan, psn, dict(terminal), pdol_data, cdol1_data, cda))
        answer = yield from transmit(apdu.generate_ac(kind, cdol1_data, cda=cda), "GENERATE AC")
        if ctx.torn is not None:
            ctx.torn.discard(pan, psn)
    if not answer.ok:
        return Outcome(Status.END_APPLICATION, f"GENERATE AC answered {answer.sw:04X}", ui=_END)
    ac = records.parse_generate_ac_response(answer.data)
    card.update(ac)
    cid = ac[0x9F27][0] & 0xC0
    if 0x9F4B in ac:
        if icc_key is None:
            return Outcome(Status.DECLINED, "a CDA signature without a recovered ICC key", ui=_DECLINED)
        objects = b"".join(bytes(o) for o in tlv.decode(answer.data)[0].children if o.tag != 0x9F4B)
        try:
            result_cda = oda.verify_cda_signature(
                icc_key, ac[0x9F4B], terminal[0x9F37], cid=ac[0x9F27][0],
                transaction_hash=oda.transaction_data_hash(pdol_data, cdol1_data, None, objects))
        except OdaError as exc:
            return Outcome(Status.DECLINED, f"CDA failed: {exc}", ui=_DECLINED)
        card[0x9F26] = result_cda.cryptogram
    elif cda and cid != apdu.CryptogramType.AAC:
        return Outcome(Status.DECLINED, "CDA was asked for and the card did not sign", ui=_DECLINED)
    record = _record(terminal, card)
    if cid == apdu.CryptogramType.TC:
        return Outcome(Status.APPROVED, "approved offline by the card (TC, CDA verified)", cvm=cvm, receipt=True,
                       ui=UiRequest(Message.APPROVED, UiStatus.CARD_READ_SUCCESSFULLY), field_off_ms=0,
                       data_record=record)
    if cid == apdu.CryptogramType.ARQC:
        return Outcome(Status.ONLINE_REQUEST, f"the card asks to go online (CVM {cvm.value})", cvm=cvm,
                       ui=UiRequest(Message.AUTHORISING, UiStatus.NOT_READY), field_off_ms=0, data_record=record)
    return Outcome(Status.DECLINED, "the card declined (AAC)", ui=_DECLINED, field_off_ms=0, data_record=record)


def action_analysis(ctx: KernelContext, tvr_value: bytes | None, card: Mapping[int, bytes], *,
                    cda_key: bool) -> tuple[bytes, apdu.CryptogramType]:
    """C-2 §7.6: the TVR of this tap and the cryptogram to ask for (see the module's step 4)."""
    tvr = BitField(TvrBit, 5, (tvr_value or bytes(5)).ljust(5, b"\x00")[:5])
    if not cda_key and TvrBit.CDA_FAILED not in tvr:
        tvr.set(TvrBit.ODA_NOT_PERFORMED)
    today = ctx.today.strftime("%y%m%d") if ctx.today is not None else None
    if today is not None and card.get(0x5F24, b"\x99").hex() < today:
        tvr.set(TvrBit.EXPIRED_APPLICATION)
    if today is not None and card.get(0x5F25, b"\x00").hex() > today:
        tvr.set(TvrBit.APPLICATION_NOT_YET_EFFECTIVE)
    ind = ctx.candidate.indicators
    if ind.floor_limit_exceeded:
        tvr.set(TvrBit.EXCEEDS_FLOOR_LIMIT)
    kind, _ = decide(bytes(tvr), card, tac_denial=TAC_DENIAL, tac_online=TAC_ONLINE, tac_default=TAC_DEFAULT,
                     online_capable=True)
    if kind is apdu.CryptogramType.TC and (ind.status_check_requested or ind.zero_amount):
        kind = apdu.CryptogramType.ARQC
    return bytes(tvr), kind


def _with_tvr5(tvr: bytes | None, bits: int) -> bytes:
    value = bytearray((tvr or bytes(5)).ljust(5, b"\x00"))
    value[4] |= bits
    return bytes(value)


def _record(terminal: Mapping[int, bytes], card: Mapping[int, bytes]) -> dict[int, bytes]:
    values = {**terminal, **card}
    out: dict[int, bytes] = {t: values[t] for t in (0x5A, 0x57, 0x5F24, 0x5F34) if t in values}
    out.update({t: values[t] for t in FIELD_55_TAGS if t in values})
    return out
