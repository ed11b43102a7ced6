"""BER-TLV codec for EMV data objects (EMV 4.4 Book 3 Annex B, ISO/IEC 7816-4 §5.2).

A data object is a tag (1–4 bytes; ``int`` here, e.g. ``0x9F26``), a length (short form ``00``–``7F`` or long
form ``81``–``84`` followed by 1–4 length bytes) and a value. Bit 6 of the first tag byte marks a constructed
object, whose value is itself a sequence of data objects (a template such as ``6F`` FCI or ``70`` record).
Before, between and after objects a card may leave ``00`` (erased objects, Book 3 Annex B) or ``FF`` filler;
the decoder skips them. ``decode`` checks constructed values recursively, so a value that decodes here is well
formed all the way down, and every error names the absolute byte offset and the tag being decoded.

>>> objs = decode(bytes.fromhex("6F098407A0000000031010" "9F3602001C"))
>>> [f"{o.tag:X}" for o in objs], first(objs, 0x84).hex().upper()
(['6F', '9F36'], 'A0000000031010')
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Tlv",
    "decode",
    "encode",
    "encode_tag",
    "encode_length",
    "find",
    "first",
    "flatten",
    "is_constructed",
    "spans",
]

_PADDING = (0x00, 0xFF)
_MAX_LENGTH_BYTES = 4


def is_constructed(tag: int) -> bool:
    """True when bit 6 of the tag's first byte is set (the value is a template)."""
    return bool(encode_tag(tag)[0] & 0x20)


@dataclass(frozen=True)
class Tlv:
    """One data object. ``value`` is raw bytes, also for a template; ``children`` decodes a template."""

    tag: int
    value: bytes = field(repr=False)

    @classmethod
    def template(cls, tag: int, *children: Tlv) -> Tlv:
        """A constructed object whose value is the encoding of ``children``."""
        if not is_constructed(tag):
            raise LocalProtocolError(f"tag {tag:X} is primitive, it cannot hold a template", tag=f"{tag:X}")
        return cls(tag, encode(children))

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    @functools.cached_property
    def children(self) -> tuple[Tlv, ...]:
        """The objects inside a template; empty for a primitive object. Decoded once: ``decode`` already hands
        over a decoded template's children (it checks them anyway), so finding a tag does not decode it again."""
        return decode(self.value) if self.constructed else ()

    def __bytes__(self) -> bytes:
        return encode_tag(self.tag) + encode_length(len(self.value)) + self.value

    def __repr__(self) -> str:  # length only: values may be PAN or track data
        return f"Tlv({self.tag:X}, <{len(self.value)} bytes>)"


# --- encoding -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)  # the few hundred tags a terminal meets; bounded against a card inventing tags
def encode_tag(tag: int) -> bytes:
    """The tag's bytes; raises LocalProtocolError when ``tag`` is not a well-formed BER tag."""
    if tag <= 0 or tag >= 1 << 32:
        raise LocalProtocolError(f"tag {tag:#x} is out of range", tag=f"{tag:X}")
    raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    if raw[0] in _PADDING:
        raise LocalProtocolError(f"tag {tag:X} starts with a padding byte", tag=f"{tag:X}")
    multi = (raw[0] & 0x1F) == 0x1F
    subsequent_ok = all(b & 0x80 for b in raw[1:-1]) and not (raw[-1] & 0x80 and len(raw) > 1)
    if multi != (len(raw) > 1) or not subsequent_ok:
        raise LocalProtocolError(f"tag {tag:X} is not a well-formed BER-TLV tag", tag=f"{tag:X}")
    return raw


def encode_length(length: int) -> bytes:
    """Shortest BER length: one byte up to 127, then ``81``–``84`` + big-endian length."""
    if length < 0 or length >= 1 << (8 * _MAX_LENGTH_BYTES):
        raise LocalProtocolError(f"length {length} cannot be BER encoded")
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def encode(objects: Iterable[Tlv]) -> bytes:
    """Concatenate the encodings of ``objects`` (shortest lengths, no padding)."""
    return b"".join(bytes(o) for o in objects)


# --- decoding -----------------------------------------------------------------------------------------------


def decode(data: bytes) -> tuple[Tlv, ...]:
    """Decode a sequence of data objects, skipping ``00``/``FF`` filler, checking templates recursively.

    Raises:
        RemoteProtocolError: with ``.offset`` (absolute, in ``data``) and ``.tag`` (hex, when one was read).
    """
    return tuple(_decode(bytes(data), 0, len(data)))


def spans(data: bytes) -> list[tuple[int, int, int]]:
    """``(tag, value start, value end)`` of every object, inside templates too (depth first), as absolute offsets
    in ``data``: to overwrite a value in place, keeping the encoding as the card wrote it. Raises
    RemoteProtocolError as ``decode`` does (nothing is returned for data that does not decode whole).

    >>> [(f"{tag:X}", start, end) for tag, start, end in spans(bytes.fromhex("7006" "5F2403" "301231"))]
    [('70', 2, 8), ('5F24', 5, 8)]
    """
    data = bytes(data)
    out: list[tuple[int, int, int]] = []
    stack = [(0, len(data))]
    while stack:
        pos, end = stack.pop()
        while pos < end:
            if data[pos] in _PADDING:
                pos += 1
                continue
            tag, value_start, value_end = _header(data, pos, end)
            out.append((tag, value_start, value_end))
            if data[pos] & 0x20:
                stack.append((value_end, end))
                pos, end = value_start, value_end
                continue
            pos = value_end
    return out


def _decode(data: bytes, start: int, end: int) -> Iterator[Tlv]:
    pos = start
    while pos < end:
        if data[pos] in _PADDING:
            pos += 1
            continue
        tag, value_start, value_end = _header(data, pos, end)
        obj = Tlv(tag, data[value_start:value_end])
        if data[pos] & 0x20:  # checked now so offsets stay absolute; kept, so ``children`` need not decode again
            obj.__dict__["children"] = tuple(_decode(data, value_start, value_end))
        yield obj
        pos = value_end


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Parse tag and length at ``pos``; return (tag, value start, value end)."""
    tag_start = pos
    pos += 1
    if data[tag_start] & 0x1F == 0x1F:
        while True:
            if pos >= end:
                raise _error("tag is truncated, expecting more tag bytes", data, tag_start, tag_start, pos)
            pos += 1
            if not data[pos - 1] & 0x80:
                break
            if pos - tag_start >= _MAX_LENGTH_BYTES:
                raise _error("tag is longer than 4 bytes", data, tag_start, tag_start, pos)
    tag = int.from_bytes(data[tag_start:pos], "big")
    tag_end = pos  # the tag's hex is spelled out only in an error (``_bad``): most headers raise nothing
    if pos >= end:
        raise _bad("length of {tag} is missing", data, tag_start, tag_end, pos)
    first_len = data[pos]
    length_at = pos
    pos += 1
    if first_len & 0x80:
        size = first_len & 0x7F
        if size == 0 or size > _MAX_LENGTH_BYTES:
            raise _bad(f"length byte {first_len:02X} of {{tag}} is not allowed (indefinite or over 4 bytes)",
                       data, tag_start, tag_end, length_at)
        if pos + size > end:
            raise _bad(f"length of {{tag}} is truncated, expecting {size} more byte(s)", data, tag_start, tag_end,
                       length_at)
        length = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    else:
        length = first_len
    if pos + length > end:
        raise _bad(f"value of {{tag}} is truncated: {length} byte(s) declared, {end - pos} available", data,
                   tag_start, tag_end, pos)
    return tag, pos, pos + length


def _bad(message: str, data: bytes, tag_start: int, tag_end: int, offset: int) -> RemoteProtocolError:
    """``message`` with ``{tag}`` spelled out: the tag's hex, also as ``.tag``."""
    tag_hex = data[tag_start:tag_end].hex().upper()
    return RemoteProtocolError(message.format(tag=tag_hex), offset=offset, tag=tag_hex)


def _error(message: str, data: bytes, tag_start: int, offset: int, pos: int) -> RemoteProtocolError:
    tag_hex = data[tag_start:pos].hex().upper()
    return RemoteProtocolError(f"{message}: tag {tag_hex}", offset=offset, tag=tag_hex)


# --- lookup -------------------------------------------------------------------------------------------------


def find(objects: Iterable[Tlv], tag: int) -> Iterator[Tlv]:
    """Every object with ``tag``, depth first, looking inside templates."""
    for obj in objects:
        if obj.tag == tag:
            yield obj
        if obj.constructed:
            yield from find(obj.children, tag)


def first(objects: Iterable[Tlv], tag: int) -> bytes | None:
    """Value of the first object with ``tag`` anywhere in the tree, or None."""
    return next((o.value for o in find(objects, tag)), None)


def flatten(objects: Iterable[Tlv]) -> dict[int, bytes]:
    """Primitive objects of the whole tree as ``{tag: value}``; the first occurrence of a tag wins."""
    out: dict[int, bytes] = {}
    for obj in objects:
        if obj.constructed:
            for tag, value in flatten(obj.children).items():
                out.setdefault(tag, value)
        else:
            out.setdefault(obj.tag, obj.value)
    return out
