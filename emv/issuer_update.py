"""Issuer Update Processing after an online tap (EMV Contactless Book C-3 §5.9 and Annex, its qUICS
counterpart): the second presentation of the card, when the host's field 55 carries something for it.

A qVSDC card gives its ARQC at GET PROCESSING OPTIONS and the field is off before the host answers, so the
Issuer Authentication Data ``91`` and the Issuer Script Templates ``71`` / ``72`` of the 0210 can only reach the
card if the cardholder presents it again. Kernel 3 announces it in its Online Request outcome with
``Start: B`` (Book A §6.2.2: the restart after the online response) when the card supports it (CTQ ``9F6C``
byte 2 b7) and the reader does (TTQ ``9F66`` byte 3 b8). Entry Point then shows "present card again", polls,
selects the same application and runs ``run`` here:

* ``91`` present: EXTERNAL AUTHENTICATE with it (8 to 16 bytes, else not sent); a refusal sets TVR byte 5 b7
  "issuer authentication failed"; TSI byte 1 b5 "issuer authentication performed" once sent;
* the scripts ``71`` then ``72`` through ``emv.scripts.run_scripts`` (TVR byte 5 b6 / b5 on failure, TSI byte 1
  b3, Issuer Script Results ``9F5B``).

The host's decision stands whatever happens here: a card not presented again, removed or answering garbage leaves
the transaction approved (or declined) as the host said; only the TVR/TSI and the reason tell it.

>>> wanted(bytes.fromhex("910A") + bytes(10)), wanted(b""), wanted(b"\\x01")
(True, False, False)
"""

from __future__ import annotations

from collections.abc import Mapping

from emv import apdu, tlv
from emv.actions import Step, transmit
from emv.scripts import parse_scripts, run_scripts
from emv.tvr import BitField, TsiBit, TvrBit
from pos_errors import RemoteProtocolError

__all__ = ["wanted", "supported", "run", "CTQ_ISSUER_UPDATE", "TTQ_ISSUER_UPDATE"]

CTQ_ISSUER_UPDATE = (1, 0x40)  # CTQ 9F6C byte 2 b7: the card supports Issuer Update Processing
TTQ_ISSUER_UPDATE = (2, 0x80)  # TTQ 9F66 byte 3 b8: the reader supports Issuer Update Processing
_TEMPLATES = (0x71, 0x72)


def _objects(issuer_data: bytes) -> dict[int, bytes]:
    try:
        return {o.tag: o.value for o in tlv.decode(issuer_data)}
    except RemoteProtocolError:
        return {}  # garbage from the host: nothing to give the card


def wanted(issuer_data: bytes) -> bool:
    """True when the host's field 55 has something for the card: ``91``, ``71`` or ``72``."""
    objects = _objects(issuer_data)
    return 0x91 in objects or any(t in objects for t in _TEMPLATES)


def supported(ttq: bytes, ctq: bytes) -> bool:
    """Reader (TTQ byte 3 b8) and card (CTQ byte 2 b7) both support Issuer Update Processing."""
    return (len(ttq) == 4 and bool(ttq[TTQ_ISSUER_UPDATE[0]] & TTQ_ISSUER_UPDATE[1])
            and len(ctq) == 2 and bool(ctq[CTQ_ISSUER_UPDATE[0]] & CTQ_ISSUER_UPDATE[1]))


def run(issuer_data: bytes, record: Mapping[int, bytes]) -> Step[dict[int, bytes]]:
    """EXTERNAL AUTHENTICATE and the scripts on the card presented again (its application already selected);
    returns the data record's TVR ``95``, TSI ``9B`` and, when scripts ran, ``9F5B``."""
    tvr = BitField(TvrBit, 5, bytes(record.get(0x95, bytes(5))).ljust(5, b"\x00")[:5])
    tsi = BitField(TsiBit, 2, bytes(record.get(0x9B, bytes(2))).ljust(2, b"\x00")[:2])
    arpc = _objects(issuer_data).get(0x91)
    if arpc is not None:
        if 8 <= len(arpc) <= 16:
            response = yield from transmit(apdu.external_authenticate(arpc), "EXTERNAL AUTHENTICATE")
            if not response.ok:
                tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
        else:
            tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
        tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
    results = b""
    for template in _TEMPLATES:
        scripts = parse_scripts(issuer_data, template)
        if scripts:
            results += yield from run_scripts(scripts, template, tvr, tsi)
    out = {0x95: bytes(tvr), 0x9B: bytes(tsi)}
    if results:
        out[0x9F5B] = results
    return out
