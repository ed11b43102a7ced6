"""Data Object Lists: parse a DOL and build the data it asks for (EMV 4.4 Book 3 §5.4).

A DOL (PDOL ``9F38``, CDOL1 ``8C``, CDOL2 ``8D``, DDOL ``9F49``) is a list of tag + length pairs without
values. The terminal answers with the concatenated values, each fitted to the requested length by its format:

===========  ===============================================  ==============================================
format       value longer than requested                      value shorter than requested
===========  ===============================================  ==============================================
``n``        truncate on the left (keep rightmost bytes)      pad on the left with ``00``
``cn``       truncate on the right                            pad on the right with ``FF``
other        truncate on the right                            pad on the right with ``00``
===========  ===============================================  ==============================================

A data object that is absent, unknown, or constructed is sent as that many ``00`` bytes.

>>> dol = parse(bytes.fromhex("9F0206 5F2A02 9F3704"))
>>> build(dol, {0x9F02: bytes.fromhex("1234"), 0x5F2A: bytes.fromhex("0156")}).hex().upper()
'000000001234015600000000'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emv import tags
from pos_errors import RemoteProtocolError

__all__ = ["DolEntry", "parse", "build", "split", "fit"]


@dataclass(frozen=True)
class DolEntry:
    tag: int
    length: int


def parse(dol: bytes) -> tuple[DolEntry, ...]:
    """Tag + length pairs of a DOL. Raises RemoteProtocolError (with ``.offset``) on a truncated entry."""
    entries: list[DolEntry] = []
    pos = 0
    while pos < len(dol):
        start = pos
        pos = start + 1
        if dol[start] & 0x1F == 0x1F:  # multi-byte tag: subsequent bytes while b8 is set
            while pos < len(dol) and dol[pos] & 0x80:
                pos += 1
            if pos >= len(dol):
                raise RemoteProtocolError("DOL tag is truncated", offset=start, tag=dol[start:].hex().upper())
            pos += 1
        tag_hex = dol[start:pos].hex().upper()
        if pos >= len(dol):
            raise RemoteProtocolError(f"DOL entry {tag_hex} has no length", offset=pos, tag=tag_hex)
        length = dol[pos]
        if length & 0x80:  # lengths in a DOL are one byte (Book 3 §5.4)
            raise RemoteProtocolError(f"DOL length byte {length:02X} is not allowed", offset=pos, tag=tag_hex)
        entries.append(DolEntry(int.from_bytes(dol[start:pos], "big"), length))
        pos += 1
    return tuple(entries)


def fit(tag: int, value: bytes, length: int) -> bytes:
    """Fit ``value`` to ``length`` bytes by the format rules of Book 3 §5.4."""
    form = tags.fmt(tag)
    if len(value) == length:
        return value
    if form == "n":  # value[-0:] would be the whole value, hence the explicit length
        return value[len(value) - length:] if len(value) > length else bytes(length - len(value)) + value
    pad = b"\xff" if form == "cn" else b"\x00"
    return value[:length] if len(value) > length else value + pad * (length - len(value))


def build(dol: tuple[DolEntry, ...], values: Mapping[int, bytes]) -> bytes:
    """The DOL-related data: each requested value fitted to its length, zeros when absent or constructed."""
    out = bytearray()
    for entry in dol:
        value = values.get(entry.tag)
        if value is None or _constructed(entry.tag):  # Book 3 §5.4: constructed -> zeros
            out += bytes(entry.length)
        else:
            out += fit(entry.tag, value, entry.length)
    return bytes(out)


def split(dol: tuple[DolEntry, ...], data: bytes) -> dict[int, bytes]:
    """The card's view: cut DOL-related ``data`` back into ``{tag: value}``.

    Raises:
        RemoteProtocolError: when ``data`` is not exactly as long as the DOL asks for.
    """
    expected = sum(e.length for e in dol)
    if len(data) != expected:
        raise RemoteProtocolError(f"DOL data is {len(data)} bytes, the DOL asks for {expected}",
                                  offset=min(len(data), expected))
    out: dict[int, bytes] = {}
    pos = 0
    for entry in dol:
        out[entry.tag] = data[pos:pos + entry.length]
        pos += entry.length
    return out


def _constructed(tag: int) -> bool:
    first_byte = tag >> (8 * ((tag.bit_length() - 1) // 8)) if tag else 0
    return bool(first_byte & 0x20)
