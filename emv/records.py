"""Card responses after selection: GPO response, AFL, records and GENERATE AC response (EMV 4.4 Book 3 §6.5,
§10.1–10.2), plus the card data elements the kernel hands to the caller (PAN, expiry, PSN).

Every parser raises ``RemoteProtocolError`` naming the tag when the card's bytes break the format, which the
kernel turns into a terminated transaction.

>>> values = parse_gpo_response(bytes.fromhex("800A" "1800" "08010201" "10010100"))
>>> values[0x82].hex(), [(e.sfi, e.first, e.last, e.oda_records) for e in parse_afl(values[0x94])]
('1800', [(1, 1, 2, 1), (2, 1, 1, 0)])
"""

from __future__ import annotations

from dataclasses import dataclass

from emv import tlv
from pos_errors import RemoteProtocolError

__all__ = ["AflEntry", "parse_gpo_response", "parse_afl", "parse_record", "parse_generate_ac_response",
           "pan_digits", "psn_digits", "MANDATORY_RECORD_TAGS"]

# Data the card must provide in its records, else the transaction terminates (Book 3 §7.2, Table 28).
MANDATORY_RECORD_TAGS: tuple[int, ...] = (0x5F24, 0x5A, 0x8C, 0x8D)

_EMV_SFI_MAX = 10  # SFIs 1-10 hold EMV records in template 70 (Book 3 §5.3.2)


@dataclass(frozen=True)
class AflEntry:
    """One 4-byte AFL entry (Book 3 §10.2): records ``first..last`` of ``sfi``, the first ``oda_records``
    of which take part in offline data authentication."""

    sfi: int
    first: int
    last: int
    oda_records: int


def _single(data: bytes, tags: tuple[int, ...], what: str) -> tlv.Tlv:
    objects = tlv.decode(data)
    if len(objects) != 1 or objects[0].tag not in tags:
        wanted = " or ".join(f"{t:X}" for t in tags)
        raise RemoteProtocolError(f"{what} is not a single {wanted} object", offset=0, tag=wanted)
    return objects[0]


def parse_gpo_response(data: bytes) -> dict[int, bytes]:
    """AIP ``82`` and AFL ``94`` (and any other objects) of a format 1 ``80`` or format 2 ``77`` answer."""
    obj = _single(data, (0x80, 0x77), "GET PROCESSING OPTIONS response")
    if obj.tag == 0x80:
        if len(obj.value) < 2:
            raise RemoteProtocolError("format 1 GPO response is shorter than the AIP", tag="80")
        return {0x82: obj.value[:2], 0x94: obj.value[2:]}
    values = tlv.flatten(obj.children)
    for tag in (0x82, 0x94):
        if tag not in values:
            raise RemoteProtocolError(f"format 2 GPO response has no {tag:X}", tag=f"{tag:X}")
    if len(values[0x82]) != 2:
        raise RemoteProtocolError("AIP 82 is not 2 bytes", tag="82")
    return values


def parse_afl(afl: bytes) -> tuple[AflEntry, ...]:
    """Check and split the AFL; an empty or inconsistent AFL is an error (Book 3 §10.2)."""
    if not afl or len(afl) % 4:
        raise RemoteProtocolError(f"AFL of {len(afl)} bytes is not a non-empty multiple of 4", tag="94")
    entries = []
    for pos in range(0, len(afl), 4):
        sfi_byte, first, last, oda = afl[pos:pos + 4]
        sfi = sfi_byte >> 3
        if sfi_byte & 0x07 or not 1 <= sfi <= 30 or first == 0 or last < first or oda > last - first + 1:
            raise RemoteProtocolError(f"AFL entry {afl[pos:pos + 4].hex().upper()} is invalid", offset=pos,
                                      tag="94")
        entries.append(AflEntry(sfi, first, last, oda))
    return tuple(entries)


def parse_record(data: bytes, sfi: int) -> dict[int, bytes]:
    """Primitive data objects of a record; SFI 1–10 must hold exactly one ``70`` template.

    Records of SFI 11–30 are issuer proprietary and return ``{}``. A tag twice in one record is an error.
    """
    if sfi > _EMV_SFI_MAX:
        return {}
    record = _single(data, (0x70,), f"record of SFI {sfi}")
    values: dict[int, bytes] = {}
    for obj in record.children:
        if obj.constructed:
            continue
        if obj.tag in values:
            raise RemoteProtocolError(f"{obj.tag:X} appears twice in one record", tag=f"{obj.tag:X}")
        values[obj.tag] = obj.value
    return values


def parse_generate_ac_response(data: bytes) -> dict[int, bytes]:
    """CID ``9F27``, ATC ``9F36``, AC ``9F26`` (or, with CDA, the signature ``9F4B``) and optional IAD ``9F10``
    (Book 3 §6.5.5.4)."""
    obj = _single(data, (0x80, 0x77), "GENERATE AC response")
    if obj.tag == 0x80:
        value = obj.value
        if not 11 <= len(value) <= 43:
            raise RemoteProtocolError(f"format 1 GENERATE AC response of {len(value)} bytes", tag="80")
        values = {0x9F27: value[0:1], 0x9F36: value[1:3], 0x9F26: value[3:11]}
        if len(value) > 11:
            values[0x9F10] = value[11:]
        return values
    values = tlv.flatten(obj.children)
    signed = 0x9F4B in values  # CDA: the cryptogram travels inside the signature (Book 3 §6.5.5.4)
    for tag, length in ((0x9F27, 1), (0x9F36, 2)) + (() if signed else ((0x9F26, 8),)):
        if len(values.get(tag, b"")) != length:
            raise RemoteProtocolError(f"GENERATE AC response lacks a {length}-byte {tag:X}", tag=f"{tag:X}")
    return values


def pan_digits(value: bytes) -> str:
    """The PAN from ``5A`` (cn, padded with ``F``); RemoteProtocolError unless it is 12–19 digits."""
    digits = value.hex().upper().rstrip("F")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise RemoteProtocolError("PAN 5A is not 12-19 digits", tag="5A")
    return digits


def psn_digits(value: bytes | None) -> str | None:
    """The PAN sequence number ``5F34`` (n2) as two digits, or None when the card has none."""
    if value is None:
        return None
    digits = value.hex()
    if len(value) != 1 or not digits.isdigit():
        raise RemoteProtocolError("PAN sequence number 5F34 is not n2", tag="5F34")
    return digits
