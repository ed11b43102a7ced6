"""TRANSMIT_BATCH: several C-APDUs in one reader command, their R-APDUs in one answer. Pure: no I/O.

Each exchange with the reader costs a turnaround (the terminal's send, the reader waking, its firmware, the
answer, the terminal waking: 0.3-0.5 ms in the simulator, 1-16 ms through a real USB-serial adapter) and 8
bytes of framing. When the EMV kernel knows which commands come next (``SendApdu.then``: the READ RECORDs of
the AFL after GET PROCESSING OPTIONS, the PSE directory's records after SELECT PSE), the terminal sends them
in one TRANSMIT_BATCH (``15``); the reader runs them in order and stops at the first R-APDU whose SW1 SW2 is not
``90 00``. The terminal hands each R-APDU out only when the kernel asks for that very command, in order
(``Prefetched``). docs/protocols/card-reader.md "TRANSMIT_BATCH" has the bytes.

Command DATA: COUNT (2..3), then the C-APDUs, each but the last preceded by its length; the last runs to the
end. Answer payload (after STATUS OK): COUNT (1..the commands sent), then the R-APDUs run, each but the last
without its SW1 SW2 (``90 00``: the reader would have stopped otherwise) and preceded by the length of its
data; the last whole, SW included, to the end. A length is one byte below ``80``, else two: ``8000 | n`` (as
the link's v2 LEN).

>>> encode_batch([bytes.fromhex("00B2010C00"), bytes.fromhex("00B2020C00")]).hex(" ").upper()
'02 05 00 B2 01 0C 00 00 B2 02 0C 00'
>>> answer = encode_batch_answer([bytes.fromhex("70 03 5F 20 00 90 00"), bytes.fromhex("6A 83")])
>>> answer.hex(" ").upper()
'02 05 70 03 5F 20 00 6A 83'
>>> [r.hex().upper() for r in decode_batch_answer(answer, 3)]
['70035F20009000', '6A83']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["MAX_BATCH", "SW_OK", "encode_batch", "decode_batch", "encode_batch_answer", "decode_batch_answer",
           "Prefetched"]

# The answer to any MAX_BATCH short C-APDUs (each at most 256 data bytes + SW1 SW2) fits one link message
# (DATA at most 1024 bytes with the echoed SEQ and STATUS): 2 x (2 + 256) + 258 = 774. Four could need 1032.
MAX_BATCH = 3
SW_OK = b"\x90\x00"
_MAX_C_APDU = 261  # CLA INS P1 P2 Lc 255 bytes Le: the longest short C-APDU
_MAX_R_DATA = 256  # Ne of a short C-APDU


def _length(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else (0x8000 | n).to_bytes(2, "big")


def _encode(items: Sequence[bytes]) -> bytes:
    return bytes([len(items)]) + b"".join(_length(len(i)) + bytes(i) for i in items[:-1]) + bytes(items[-1])


def _decode(data: bytes, what: str) -> list[bytes]:
    """COUNT, then COUNT - 1 length-prefixed items, then the last to the end. Raises RemoteProtocolError
    (offsets and counts only: the bytes may hold a PAN)."""
    if not data or not 1 <= data[0] <= MAX_BATCH:
        raise RemoteProtocolError(f"{what}: the count must be 1..{MAX_BATCH}", offset=0)
    items, pos = [], 1
    for index in range(1, data[0]):
        if pos >= len(data):
            raise RemoteProtocolError(f"{what}: ends before item {index}", offset=pos)
        n, pos = data[pos], pos + 1
        if n & 0x80:
            if pos >= len(data):
                raise RemoteProtocolError(f"{what}: the length of item {index} is cut short", offset=pos)
            n, pos = (n & 0x7F) << 8 | data[pos], pos + 1
        if pos + n > len(data):
            raise RemoteProtocolError(f"{what}: item {index} says {n} bytes, {len(data) - pos} follow", offset=pos)
        items.append(data[pos:pos + n])
        pos += n
    items.append(data[pos:])
    return items


def encode_batch(commands: Sequence[bytes]) -> bytes:
    """TRANSMIT_BATCH command DATA for 2..MAX_BATCH C-APDUs. Raises LocalProtocolError otherwise."""
    if not 2 <= len(commands) <= MAX_BATCH or not all(4 <= len(c) <= _MAX_C_APDU for c in commands):
        raise LocalProtocolError(f"a batch is 2..{MAX_BATCH} C-APDUs of 4..{_MAX_C_APDU} bytes")
    return _encode(commands)


def decode_batch(data: bytes) -> list[bytes]:
    """The reader's side: the C-APDUs of a TRANSMIT_BATCH. Raises RemoteProtocolError for a malformed one
    (the reader answers BAD_REQUEST and runs none of them)."""
    commands = _decode(data, "batch")
    if len(commands) < 2:
        raise RemoteProtocolError("batch: fewer than 2 C-APDUs", offset=0)
    for index, command in enumerate(commands, 1):
        if not 4 <= len(command) <= _MAX_C_APDU:
            raise RemoteProtocolError(f"batch: C-APDU {index} is {len(command)} bytes", offset=len(data))
    return commands


def encode_batch_answer(rapdus: Sequence[bytes]) -> bytes:
    """The reader's side: the answer payload for the R-APDUs it got, in order (all but the last end in 90 00).
    Raises LocalProtocolError for R-APDUs that break that rule."""
    if not 1 <= len(rapdus) <= MAX_BATCH:
        raise LocalProtocolError(f"a batch answer holds 1..{MAX_BATCH} R-APDUs")
    if any(r[-2:] != SW_OK or len(r) - 2 > _MAX_R_DATA for r in rapdus[:-1]):
        raise LocalProtocolError("every R-APDU of a batch answer but the last ends in 90 00")
    return _encode([r[:-2] for r in rapdus[:-1]] + [rapdus[-1]])


def decode_batch_answer(payload: bytes, sent: int) -> list[bytes]:
    """The terminal's side: the R-APDUs (SW1 SW2 restored) answering a batch of ``sent`` C-APDUs.

    Raises:
        RemoteProtocolError: a count or lengths that do not add up, more R-APDUs than commands, fewer with a
            last one ending in 90 00 (the reader stops only at another SW), a last R-APDU shorter than SW1 SW2,
            or data longer than a short APDU allows.
    """
    items = _decode(payload, "batch answer")
    if len(items) > sent:
        raise RemoteProtocolError(f"batch answer: {len(items)} R-APDUs for {sent} commands", offset=0)
    last = items[-1]
    if len(last) < 2 or len(last) - 2 > _MAX_R_DATA or any(len(i) > _MAX_R_DATA for i in items[:-1]):
        raise RemoteProtocolError("batch answer: an R-APDU of impossible length", offset=len(payload))
    if len(items) < sent and last[-2:] == SW_OK:
        raise RemoteProtocolError(f"batch answer: {len(items)} R-APDUs for {sent} commands, the last 90 00",
                                  offset=len(payload))
    return [bytes(i) + SW_OK for i in items[:-1]] + [bytes(last)]


class Prefetched:
    """R-APDUs a batch got ahead of the kernel: each handed out only for its own command, byte for byte and in
    order; any other command drops them all (the card ran them; READ RECORD changes nothing on it).

    >>> kept = Prefetched()
    >>> kept.keep([b"\\x00\\xb2\\x02\\x0c\\x00"], [b"\\x6a\\x83"])
    >>> kept.take(b"\\x00\\xb2\\x02\\x0c\\x00"), kept.take(b"\\x00\\xb2\\x02\\x0c\\x00")
    (b'j\\x83', None)
    """

    def __init__(self) -> None:
        self._kept: deque[tuple[bytes, bytes]] = deque()

    def keep(self, commands: Sequence[bytes], rapdus: Sequence[bytes]) -> None:
        self._kept = deque(zip(commands, rapdus, strict=False))

    def take(self, command: bytes) -> bytes | None:
        """The kept R-APDU of ``command`` if it is the next one kept; otherwise None, and nothing is kept."""
        if self._kept and self._kept[0][0] == command:
            return self._kept.popleft()[1]
        self._kept.clear()
        return None

    def drop(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
