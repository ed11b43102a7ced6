"""Card action analysis, online processing and completion (EMV 4.4 Book 3 §9, §10.8–§10.11; Book 4 §6.3).

The steps after terminal action analysis, for ``emv.kernel.Transaction`` to sequence:

* GENERATE AC with CDOL1 or CDOL2 (Book 3 §9.2), the TC Hash Value ``98`` over the TDOL (§5.4, §9.2.2), the
  rule that the card may only answer lower (§9.3) and CID "service not allowed" (§10.8, Book 4 §6.3.7);
* CDA verification of the GENERATE AC answer (Book 2 §6.6.2; a failure declines, Book 4 §6.3.2);
* the authorisation request's field 55 (``FIELD_55_TAGS``) and the host answer (Book 3 §10.9);
* issuer authentication: EXTERNAL AUTHENTICATE, or ``91`` carried in CDOL2 (Book 3 §10.9);
* issuer scripts ``71`` before and ``72`` after the final GENERATE AC (Book 3 §10.10, ``emv.scripts``);
* the outcome after the second GENERATE AC (Book 3 §10.11, Book 4 §6.3.8 for Y3/Z3) and the receipt mapping.

Every function takes the kernel's data stores explicitly and changes only what its docstring says.

>>> mask_pan("6212345678901234")
'621234******1234'
>>> completion_outcome(CryptogramType.AAC, None, host_approved=False)[2]
'unable to go online: declined offline (Z3)'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from emv import apdu, dol, oda, records, tlv
from emv.actions import GoOnline, KernelReason, Outcome, Step, Stop, transmit
from emv.apdu import CryptogramType
from emv.authentication import FAILED_BIT, OdaMethod, OdaResult
from emv.cvm import CvmOutcome
from emv.scripts import parse_scripts, run_scripts
from emv.tvr import AipBit, BitField, TsiBit, TvrBit
from pos_errors import OdaError, RemoteProtocolError

__all__ = [
    "FIELD_55_TAGS", "APPROVAL_CODES", "UNABLE_TO_GO_ONLINE_DECLINED", "UNABLE_TO_GO_ONLINE_APPROVED",
    "HostAnswer", "AcContext", "generate_ac", "verify_cda", "online_request", "authenticate_issuer",
    "issuer_scripts", "completion_outcome", "receipt", "mask_pan",
]

# Field 55 of the authorisation request: what the issuer needs to verify the ARQC (and the acquirer's checks).
FIELD_55_TAGS: tuple[int, ...] = (0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A,
                                  0x82, 0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41)
APPROVAL_CODES = frozenset({"00", "11"})  # approve the whole amount; a partial approval (10) is none here
UNABLE_TO_GO_ONLINE_DECLINED = b"Z3"  # ARC the terminal sets itself (Book 4 Annex A6)
UNABLE_TO_GO_ONLINE_APPROVED = b"Y3"
_RANK = {CryptogramType.AAC: 0, CryptogramType.ARQC: 1, CryptogramType.TC: 2}  # a card may only go down


@dataclass(frozen=True)
class HostAnswer:
    """The host's answer to ``GoOnline``: its response code (None: could not go online) and field-55 TLVs."""

    response_code: str | None
    issuer_data: bytes


@dataclass(frozen=True)
class AcContext:
    """What GENERATE AC reads and writes. The dictionaries, ``tvr`` and ``oda`` are the kernel's own, shared by
    reference: ``card`` gets the answer's data objects, ``terminal`` the TC hash ``98``, ``dol_data`` the
    CDOL values as sent, ``tvr`` and ``oda`` the CDA failure. ``values`` merges every store as the kernel sees
    it (terminal data wins)."""

    card: dict[int, bytes]
    terminal: dict[int, bytes]
    dol_data: dict[int, bytes]
    values: Callable[[], dict[int, bytes]]
    tvr: BitField[TvrBit]
    oda: OdaResult
    default_tdol: bytes
    host_approved: bool


def generate_ac(ctx: AcContext, requested: CryptogramType, dol_tag: int, which: str) -> Step[CryptogramType]:
    """GENERATE AC with CDOL1 (``8C``) or CDOL2 (``8D``) (Book 3 §9.2); returns the cryptogram type the card gave.

    Raises:
        Stop: the card failed the command, answered higher than requested (§9.3), said "service not allowed"
            (§10.8) or failed CDA (Book 4 §6.3.2).
    """
    entries = dol.parse(ctx.card[dol_tag])
    _tc_hash(ctx, entries)
    data = dol.build(entries, ctx.values())
    ctx.dol_data[dol_tag] = data
    # Book 3 §10.8: CDA is requested for a TC or ARQC when CDA was selected and has not failed yet.
    cda = ctx.oda.method is OdaMethod.CDA and not ctx.oda.failed and requested is not CryptogramType.AAC
    response = yield from transmit(apdu.generate_ac(requested, data, cda=cda),
                                   f"GENERATE AC ({which}, {requested.name}{', CDA' if cda else ''})")
    if not response.ok:
        raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR,
                   f"{which} GENERATE AC failed: {response.sw:04X} {response.meaning}")
    values = records.parse_generate_ac_response(response.data)
    ctx.card.update(values)
    returned = CryptogramType.from_cid(values[0x9F27][0])
    if _RANK[returned] > _RANK[requested]:  # Book 3 §9.3: the card may only answer lower
        raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR,
                   f"card returned {returned.name} when {requested.name} was requested")
    if values[0x9F27][0] & 0x07 == 0x01:  # Book 3 §10.8 / Book 4 §6.3.7: CID "service not allowed"
        raise Stop(Outcome.DECLINED if not ctx.host_approved else Outcome.DECLINED_AFTER_ONLINE_APPROVAL,
                   KernelReason.SERVICE_NOT_ALLOWED, "card: service not allowed (CID reason code 1)")
    if cda and returned is not CryptogramType.AAC:
        verify_cda(ctx, response.data, values, dol_tag)
    return returned


def verify_cda(ctx: AcContext, response: bytes, values: Mapping[int, bytes], dol_tag: int) -> None:
    """Book 2 §6.6.2: the signature in the GENERATE AC answer; its cryptogram becomes ``9F26`` in ``ctx.card``.

    Raises:
        Stop: DECLINED, after setting TVR "CDA failed" and marking ``ctx.oda`` failed (Book 4 §6.3.2).
    """
    try:
        if 0x9F4B not in values or ctx.oda.icc_key is None:
            raise OdaError("the card did not sign its GENERATE AC answer")
        objects = b"".join(bytes(t) for t in tlv.decode(response)[0].children if t.tag != 0x9F4B)
        cdol2 = ctx.dol_data.get(0x8D) if dol_tag == 0x8D else None
        digest = oda.transaction_data_hash(ctx.dol_data.get(0x9F38, b""), ctx.dol_data[0x8C], cdol2, objects)
        result = oda.verify_cda_signature(ctx.oda.icc_key, values[0x9F4B], ctx.terminal[0x9F37],
                                          cid=values[0x9F27][0], transaction_hash=digest)
    except (OdaError, RemoteProtocolError, IndexError) as exc:
        ctx.tvr.set(FAILED_BIT[OdaMethod.CDA])
        ctx.oda.failed = True
        raise Stop(Outcome.DECLINED, KernelReason.CDA_FAILED,
                   f"declined: combined DDA/AC generation failed ({exc})") from exc
    ctx.card[0x9F26] = result.cryptogram
    ctx.card[0x9F4C] = result.icc_dynamic_number


def online_request(values: Mapping[int, bytes], card: Mapping[int, bytes], pan: str) -> GoOnline:
    """The ``GoOnline`` action after an ARQC: field 55 from ``values``, track and PAN data from the card."""
    icc_data = tlv.encode(tlv.Tlv(tag, values[tag]) for tag in FIELD_55_TAGS if tag in values)
    return GoOnline(icc_data=icc_data, pan=pan, pan_sequence=records.psn_digits(card.get(0x5F34)),
                    expiry_yymm=card[0x5F24].hex()[:4], track2=card.get(0x57))


def authenticate_issuer(issuer_authentication_data: bytes, card: Mapping[int, bytes], tvr: BitField[TvrBit],
                        tsi: BitField[TsiBit]) -> Step[None]:
    """EXTERNAL AUTHENTICATE when the AIP asks for it and CDOL2 does not carry ``91`` (Book 3 §10.9).

    Sets TVR "issuer authentication failed" on a refused or malformed ``91``, and TSI "issuer authentication
    performed" whenever it was performed (or left to the card through CDOL2).
    """
    in_cdol2 = any(e.tag == 0x91 for e in dol.parse(card[0x8D]))
    supported = AipBit.ISSUER_AUTHENTICATION_SUPPORTED in BitField(AipBit, 2, card.get(0x82, bytes(2)))
    if not in_cdol2 and supported:
        if 8 <= len(issuer_authentication_data) <= 16:
            command = apdu.external_authenticate(issuer_authentication_data)
            response = yield from transmit(command, "EXTERNAL AUTHENTICATE")
            if not response.ok:
                tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
        else:
            tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
        tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
    elif in_cdol2:
        tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)


def issuer_scripts(issuer_data: bytes, template: int, issuer: dict[int, bytes], tvr: BitField[TvrBit],
                   tsi: BitField[TsiBit]) -> Step[None]:
    """Run the host's ``template`` (``71`` or ``72``) scripts (Book 3 §10.10); appends their results to
    ``issuer[0x9F5B]``."""
    scripts = parse_scripts(issuer_data, template)
    if scripts:
        results = yield from run_scripts(scripts, template, tvr, tsi)
        issuer[0x9F5B] = issuer.get(0x9F5B, b"") + results


def completion_outcome(returned: CryptogramType, code: str | None, *,
                       host_approved: bool) -> tuple[Outcome, KernelReason, str]:
    """The outcome after the second GENERATE AC (Book 3 §10.11), given the host's response code (None: the
    terminal could not go online, Book 4 §6.3.8)."""
    if returned is CryptogramType.TC:
        if code is None:
            return (Outcome.APPROVED, KernelReason.APPROVED_UNABLE_ONLINE,
                    "unable to go online: approved offline by default action (Y3)")
        return Outcome.APPROVED, KernelReason.APPROVED_ONLINE, f"approved online ({code})"
    if host_approved:
        return (Outcome.DECLINED_AFTER_ONLINE_APPROVAL, KernelReason.CARD_DECLINED_AFTER_APPROVAL,
                f"host approved ({code}) but the card declined (AAC at second GENERATE AC)")
    if code is None:
        return Outcome.DECLINED, KernelReason.DECLINED_UNABLE_ONLINE, "unable to go online: declined offline (Z3)"
    return Outcome.DECLINED, KernelReason.DECLINED_BY_HOST, f"declined by the host ({code})"


def receipt(values: Mapping[int, bytes], outcome: Outcome, *, cvm: CvmOutcome | None,
            oda_result: OdaResult) -> dict[str, str]:
    """The receipt mapping (keys listed in ``emv.kernel``); the PAN is masked, empty values are left out."""
    lines = {"tvr": values[0x95].hex().upper(), "tsi": values[0x9B].hex().upper()}
    if 0x84 in values:
        lines["aid"] = values[0x84].hex().upper()
    if 0x50 in values:
        lines["app_label"] = values[0x50].decode("latin-1").strip()
    try:
        lines["pan"] = mask_pan(records.pan_digits(values[0x5A])) if 0x5A in values else ""
    except RemoteProtocolError:
        lines["pan"] = ""
    for key, tag in (("ac", 0x9F26), ("cid", 0x9F27), ("atc", 0x9F36), ("script_results", 0x9F5B)):
        if tag in values:
            lines[key] = values[tag].hex().upper()
    if cvm is not None:
        lines["cvm"] = cvm.method
    if 0x9F34 in values:
        lines["cvm_results"] = values[0x9F34].hex().upper()
    lines["oda"] = oda_result.method.value + (" failed" if oda_result.failed else "")
    lines["outcome"] = outcome.value
    return {k: v for k, v in lines.items() if v}


def mask_pan(pan: str) -> str:
    """The first six and last four digits; the rest as ``*``."""
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _tc_hash(ctx: AcContext, entries: tuple[dol.DolEntry, ...]) -> None:
    """TC Hash Value ``98`` when the CDOL asks for it: SHA-1 of the TDOL data, the card's ``97`` or the
    terminal's default TDOL, which sets TVR "default TDOL used" (B5b8) (Book 3 §5.4, §9.2.2)."""
    if not any(e.tag == 0x98 for e in entries):
        return
    tdol = ctx.card.get(0x97)
    if tdol is None and ctx.default_tdol:
        tdol = ctx.default_tdol
        ctx.tvr.set(TvrBit.DEFAULT_TDOL_USED)
    data = dol.build(dol.parse(tdol), ctx.values()) if tdol else b""
    ctx.terminal[0x98] = hashlib.sha1(data).digest()  # noqa: S324 - Book 2 Annex B3 mandates SHA-1
