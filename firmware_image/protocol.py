"""The flashing protocol's frames: SLIP framing (RFC 1055) around ``kind | payload | CRC-32`` (``construct``).

See ``docs/protocols/flashing.md`` for the frame diagrams and the exchange. ``SlipDecoder`` finds complete frames
in a byte stream and drops damaged ones (bad CRC, unknown escape) without losing the next frame.

>>> dec = SlipDecoder()
>>> dec.feed(b"noise" + encode_frame(Kind.SYNC, b"POSFW1"))
>>> frame = dec.next_frame()
>>> frame.kind is Kind.SYNC, frame.payload
(True, b'POSFW1')
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from construct import (
    Bytes,
    Checksum,
    ConstructError,
    GreedyBytes,
    Int8ul,
    Int16ul,
    Int32ul,
    RawCopy,
    Struct,
    this,
)
from construct import (
    Enum as CEnum,
)

__all__ = ["Kind", "Frame", "encode_frame", "SlipDecoder", "SYNC_MAGIC", "PROTOCOL_VERSION", "HELLO", "PARAMS",
           "WRITE", "ACK", "VERIFY", "FINALIZE", "ERROR", "HASH_LEN", "slip_escape", "FLAG_DEFLATE",
           "FLAG_COPY", "FLAG_DELTA", "CHUNKS", "CHUNK_LIST"]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
SYNC_MAGIC = b"POSFW1"
PROTOCOL_VERSION = 1
HASH_LEN = 8  # truncated SHA-256 per block: picks blocks to skip; the full read-back SHA-256 decides
FLAG_DEFLATE = 0x01
FLAG_COPY = 0x02  # no data: copy the block from the running slot, which already holds these bytes
FLAG_DELTA = 0x04  # data (inflated first when DEFLATE is set) is delta instructions: firmware_image/delta.py
MAX_FRAME = 64 * 1024


class Kind(IntEnum):
    SYNC = 0x01
    PARAMS = 0x02
    HASHES = 0x03
    WRITE = 0x04
    VERIFY = 0x05
    FINALIZE = 0x06
    RESET = 0x07
    SLOTS = 0x08
    CHUNKS = 0x09  # the running image's rolling + strong sums per chunk (delta flashing)
    HELLO = 0x81  # answers SYNC
    PARAMS_OK = 0x82
    HASH_LIST = 0x83
    ACK = 0x84  # answers WRITE
    DIGEST = 0x85
    DONE = 0x86  # answers FINALIZE, RESET
    SLOT_LIST = 0x88
    CHUNK_LIST = 0x89
    ERROR = 0xFF


_BODY = Struct("kind" / Int8ul, "payload" / Bytes(this._params.size - 5))  # size: the whole unescaped frame
_FRAME = Struct(
    "body" / RawCopy(_BODY),
    "crc" / Checksum(Int32ul, zlib.crc32, this.body.data),
)

HELLO = Struct("version" / Int8ul, "sector_size" / Int32ul, "write_size" / Int16ul, "slot_size" / Int32ul,
               "max_block" / Int32ul, "max_window" / Int8ul, "running_slot" / Int8ul, "target_slot" / Int8ul,
               "device_class" / GreedyBytes)
PARAMS = Struct("baud" / Int32ul, "block_size" / Int32ul, "window" / Int8ul)
WRITE = Struct("offset" / Int32ul, "flags" / Int8ul, "raw_len" / Int32ul, "data" / GreedyBytes)
ACK = Struct("offset" / Int32ul, "written" / Int32ul)
VERIFY = Struct("length" / Int32ul)
FINALIZE = Struct("length" / Int32ul, "permanent" / Int8ul)
CHUNKS = Struct("chunk_size" / Int32ul)
CHUNK_LIST = Struct("chunk_size" / Int32ul, "length" / Int32ul, "sums" / GreedyBytes)  # 12 bytes per chunk
ERROR = Struct("code" / CEnum(Int8ul, bad_request=1, refused=2, flash=3, unexpected=4,
                                        on_trial=5), "message" / GreedyBytes)


@dataclass(frozen=True)
class Frame:
    kind: Kind
    payload: bytes


def slip_escape(data: bytes) -> bytes:
    return data.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")


def encode_frame(kind: Kind, payload: bytes = b"") -> bytes:
    raw = _FRAME.build(dict(body=dict(value=dict(kind=kind, payload=payload))), size=len(payload) + 5)
    return b"\xc0" + slip_escape(raw) + b"\xc0"


class SlipDecoder:
    """Byte stream in, whole checked frames out. Damaged frames are counted in ``dropped`` and skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frames: deque[Frame] = deque()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\xc0")
            if end < 0:
                if len(self._buffer) > 2 * MAX_FRAME:  # no delimiter for too long: garbage, resync
                    self._buffer.clear()
                    self.dropped += 1
                return
            chunk = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            if chunk:
                self._decode(chunk)

    def _decode(self, chunk: bytes) -> None:
        if chunk.count(b"\xdb") != chunk.count(b"\xdb\xdc") + chunk.count(b"\xdb\xdd"):  # a lone escape
            self.dropped += 1
            return
        raw = chunk.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")
        try:
            parsed = _FRAME.parse(raw, size=len(raw))
            kind = Kind(parsed.body.value.kind)
        except (ConstructError, ValueError):
            self.dropped += 1
            return
        self._frames.append(Frame(kind, bytes(parsed.body.value.payload)))

    def next_frame(self) -> Frame | None:
        return self._frames.popleft() if self._frames else None
