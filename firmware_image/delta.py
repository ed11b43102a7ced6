"""Delta blocks for POSFW1 (rsync-style): the device's chunk sums, the host's matcher, the device's assembler.

The device sends, for every ``chunk``-byte piece of its **running** image, a weak rolling sum (rsync's, 2 × 16
bits) and an 8-byte truncated SHA-256 (``CHUNK_LIST``). The host slides a window over the new image one byte at a
time (the weak sum rolls in O(1)), confirms a weak hit with the strong hash, and so finds running-image chunks
wherever they moved to — an edited module that shifts everything after it still matches. Each 4 KiB block of the
new image then becomes a list of instructions: COPY ``length`` bytes from ``source`` in the running slot, or
LITERAL bytes. The device assembles the block in RAM, refusing any instruction that reads outside the running
image or would make the block longer than announced, before it touches flash.

Op encoding (little-endian): ``01 source u32 length u32`` (copy) | ``02 length u32 data`` (literal).

>>> ops = encode_ops([(4, 0, 2), (None, 2, b"hi")])  # (source, offset in block, length or bytes)
>>> ops.hex(" ")
'01 04 00 00 00 02 00 00 00 02 02 00 00 00 68 69'
>>> apply_ops(ops, 4, lambda at, n: b"abcdefgh"[at:at + n], 8)
b'efhi'
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate

from firmware_image.errors import FirmwareError

__all__ = ["DeltaError", "OP_COPY", "OP_LITERAL", "SUM_LEN", "MAX_SUMS", "chunk_sums", "weak_sum", "find_matches",
           "block_ops", "encode_ops", "apply_ops", "parse_sums"]

OP_COPY = 0x01
OP_LITERAL = 0x02
SUM_LEN = 12  # weak u32 + truncated SHA-256 (8 bytes)
MAX_SUMS = 48 * 1024  # bytes of sums in one CHUNK_LIST: well inside a frame (64 KiB)
STRONG_LEN = 8
_COPY = struct.Struct("<BII")
_LIT = struct.Struct("<BI")

Op = tuple[int | None, int, "int | bytes"]  # (source or None, offset in block, length or literal bytes)


class DeltaError(FirmwareError):
    """A delta block the device refuses (bad instruction); nothing has been written when it is raised."""


def weak_sum(data: bytes) -> int:
    """rsync's weak checksum: a = Σ x, b = Σ (L - i)·x = Σ prefix sums, each mod 2**16."""
    return (sum(data) & 0xFFFF) | ((sum(accumulate(data)) & 0xFFFF) << 16)


def chunk_sums(image: bytes, chunk: int) -> bytes:
    """Device side: weak u32 LE + SHA-256[:8] of every whole ``chunk`` of ``image`` (a short tail is left out)."""
    out = bytearray()
    for start in range(0, len(image) - chunk + 1, chunk):
        piece = image[start:start + chunk]
        out += weak_sum(piece).to_bytes(4, "little") + hashlib.sha256(piece).digest()[:STRONG_LEN]
    return bytes(out)


def parse_sums(raw: bytes) -> list[tuple[int, bytes]]:
    return [(int.from_bytes(raw[i:i + 4], "little"), raw[i + 4:i + SUM_LEN])
            for i in range(0, len(raw) - SUM_LEN + 1, SUM_LEN)]


def find_matches(new: bytes, sums: Sequence[tuple[int, bytes]], chunk: int) -> list[tuple[int, int, int]]:
    """Host side: ``(new offset, running offset, length)`` spans of ``new`` already in the running image."""
    table: dict[int, list[int]] = {}
    for index, (weak, _strong) in enumerate(sums):
        table.setdefault(weak, []).append(index)
    spans: list[tuple[int, int, int]] = []
    n, pos, expect = len(new), 0, -1
    if n < chunk or not table:
        return spans
    a, b = sum(new[:chunk]) & 0xFFFF, sum(accumulate(new[:chunk])) & 0xFFFF
    while True:
        hit = table.get(a | (b << 16))
        if hit is not None:
            strong = hashlib.sha256(new[pos:pos + chunk]).digest()[:STRONG_LEN]
            found = [i for i in hit if sums[i][1] == strong]
            if found:
                index = expect if expect in found else found[0]  # keep copies contiguous when chunks repeat
                source = index * chunk
                if spans and spans[-1][0] + spans[-1][2] == pos and spans[-1][1] + spans[-1][2] == source:
                    spans[-1] = (spans[-1][0], spans[-1][1], spans[-1][2] + chunk)
                else:
                    spans.append((pos, source, chunk))
                expect, pos = index + 1, pos + chunk
                if pos + chunk > n:
                    return spans
                window = new[pos:pos + chunk]
                a, b = sum(window) & 0xFFFF, sum(accumulate(window)) & 0xFFFF
                continue
        if pos + chunk >= n:
            return spans
        out, into = new[pos], new[pos + chunk]
        a = (a - out + into) & 0xFFFF
        b = (b - chunk * out + a) & 0xFFFF
        pos += 1


def block_ops(new: bytes, spans: list[tuple[int, int, int]], offset: int, length: int) -> list[Op]:
    """The instructions that rebuild ``new[offset:offset + length]`` from ``spans`` plus literals."""
    starts = [s[0] for s in spans]
    ops: list[Op] = []
    pos, end = offset, offset + length
    while pos < end:
        i = bisect_right(starts, pos) - 1
        if i >= 0 and pos < spans[i][0] + spans[i][2]:
            run = min(end, spans[i][0] + spans[i][2]) - pos
            ops.append((spans[i][1] + pos - spans[i][0], pos - offset, run))
        else:
            nxt = starts[i + 1] if i + 1 < len(starts) else end
            run = min(end, nxt) - pos
            ops.append((None, pos - offset, new[pos:pos + run]))
        pos += run
    return ops


def encode_ops(ops: list[Op]) -> bytes:
    out = bytearray()
    for source, _at, what in ops:
        if source is None:
            assert isinstance(what, bytes)  # noqa: S101 - built by block_ops
            out += _LIT.pack(OP_LITERAL, len(what)) + what
        else:
            assert isinstance(what, int)  # noqa: S101 - built by block_ops
            out += _COPY.pack(OP_COPY, source, what)
    return bytes(out)


def apply_ops(ops: bytes, raw_len: int, read_source: Callable[[int, int], bytes], source_size: int) -> bytes:
    """Device side: assemble one block. Every bound is checked before anything is read or allocated.

    Raises:
        DeltaError: unknown op, a truncated op, a copy outside ``[0, source_size)``, or a block that would not be
            exactly ``raw_len`` bytes. The caller has written nothing.
    """
    block = bytearray()
    at = 0
    while at < len(ops):
        op = ops[at]
        if op == OP_COPY and at + _COPY.size <= len(ops):
            _, source, length = _COPY.unpack_from(ops, at)
            at += _COPY.size
            if source + length > source_size:
                raise DeltaError(f"delta copy from 0x{source:x}+{length} is outside the running image "
                                 f"({source_size} bytes)")
            _check_room(len(block), length, raw_len)
            block += read_source(source, length)
        elif op == OP_LITERAL and at + _LIT.size <= len(ops):
            _, length = _LIT.unpack_from(ops, at)
            at += _LIT.size
            if at + length > len(ops):
                raise DeltaError(f"delta literal of {length} bytes is longer than the data sent")
            _check_room(len(block), length, raw_len)
            block += ops[at:at + length]
            at += length
        else:
            raise DeltaError(f"delta instruction at {at} is unknown or cut short (byte 0x{op:02x})")
    if len(block) != raw_len:
        raise DeltaError(f"delta block is {len(block)} bytes, {raw_len} were announced")
    return bytes(block)


def _check_room(have: int, more: int, raw_len: int) -> None:
    if more > raw_len - have:
        raise DeltaError(f"delta instruction of {more} bytes overflows the {raw_len}-byte block")
