"""The update agent's protocol core (device side, sans-I/O): frames in, flash operations, frames out.

It downloads only into the inactive slot, never while the other slot runs an image on trial (the inactive slot
then holds the confirmed image the next boot may fall back to: ERROR ``on_trial``), erases each sector just
before writing it (and only when it is not already erased), checks the finished image (hash, signature, device
class, rollback counter) before it sets it pending, and never touches the running slot. A WRITE may rebuild its
block from the running image (COPY at the same offset, or DELTA instructions: ``firmware_image.delta``); the block
is assembled in RAM and every copy and length is bounds-checked before the target slot is touched. Bytes go in
through ``receive_data``; answers come out of ``data_to_send``; ``next_event`` reports what the shell must do
(change the baud rate, reset).

>>> AgentCore.__name__
'AgentCore'
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import deque
from dataclasses import asdict, dataclass

from construct import ConstructError

from firmware_image.delta import MAX_SUMS, SUM_LEN, DeltaError, apply_ops, chunk_sums
from firmware_image.errors import FirmwareImageError, FlashError
from firmware_image.flash import ERASED, SimFlash
from firmware_image.image import verify_image
from firmware_image.keys import PrivateKey, PublicKey
from firmware_image.protocol import (
    ACK,
    CHUNK_LIST,
    CHUNKS,
    ERROR,
    FINALIZE,
    FLAG_COPY,
    FLAG_DEFLATE,
    FLAG_DELTA,
    HASH_LEN,
    HELLO,
    PARAMS,
    PROTOCOL_VERSION,
    SYNC_MAGIC,
    VERIFY,
    WRITE,
    Frame,
    Kind,
    SlipDecoder,
    encode_frame,
)
from firmware_image.slots import (
    describe_flash,
    invalidate,
    read_counter,
    read_image,
    read_trailer,
    running_slot,
    set_pending,
    trial_refusal,
)

__all__ = ["AgentCore", "ChangeBaud", "ResetRequested", "MAX_WINDOW", "MAX_BLOCK"]

MAX_WINDOW = 8
MAX_BLOCK = 16 * 1024
MIN_CHUNK = 256


@dataclass(frozen=True)
class ChangeBaud:
    baud: int


@dataclass(frozen=True)
class ResetRequested:
    pass


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AgentCore:
    """One maintenance-port session against ``flash``."""

    def __init__(self, flash: SimFlash, keys: list[PrivateKey | PublicKey], device_class: str,
                 running: int | None = None) -> None:
        self.flash = flash
        self.keys = keys
        self.device_class = device_class
        self.running = running if running is not None else running_slot(flash)
        self.target = 0 if self.running is None else 1 - self.running
        self.block_size = flash.geometry.sector_size
        self.window = 1
        self._decoder = SlipDecoder()
        self._out = bytearray()
        self._events: deque[ChangeBaud | ResetRequested] = deque()
        self._trailer_cleared = False
        self.last_write_offset: int | None = None  # block being (or last) written: power-cut tests read it
        self._running_size: int | None = None

    @property
    def dropped(self) -> int:
        return self._decoder.dropped

    def receive_data(self, data: bytes) -> None:
        self._decoder.feed(data)
        while (frame := self._decoder.next_frame()) is not None:
            try:
                kind, payload = self._handle(frame)
            except _Refused as exc:
                kind, payload = Kind.ERROR, ERROR.build(dict(code=exc.code, message=str(exc).encode()))
            except ConstructError as exc:
                kind, payload = Kind.ERROR, ERROR.build(dict(code="bad_request", message=str(exc).encode()))
            self._out += encode_frame(kind, payload)

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def next_event(self) -> ChangeBaud | ResetRequested | None:
        return self._events.popleft() if self._events else None

    def _handle(self, frame: Frame) -> tuple[Kind, bytes]:
        handler = {Kind.SYNC: self._sync, Kind.PARAMS: self._params, Kind.HASHES: self._hashes,
                   Kind.WRITE: self._write, Kind.VERIFY: self._verify, Kind.FINALIZE: self._finalize,
                   Kind.RESET: self._reset, Kind.SLOTS: self._slots, Kind.CHUNKS: self._chunks}.get(frame.kind)
        if handler is None:
            raise _Refused("bad_request", f"the device does not take {frame.kind.name} frames")
        return handler(frame.payload)

    def _sync(self, payload: bytes) -> tuple[Kind, bytes]:
        if not payload.startswith(SYNC_MAGIC):
            raise _Refused("bad_request", "SYNC without the POSFW1 magic")
        g = self.flash.geometry
        return Kind.HELLO, HELLO.build(dict(
            version=PROTOCOL_VERSION, sector_size=g.sector_size, write_size=g.write_size, slot_size=g.slot_size,
            max_block=MAX_BLOCK, max_window=MAX_WINDOW, running_slot=0xFF if self.running is None else self.running,
            target_slot=self.target, device_class=self.device_class.encode()))

    def _params(self, payload: bytes) -> tuple[Kind, bytes]:
        req = PARAMS.parse(payload)
        sector = self.flash.geometry.sector_size
        block = min(max(sector, req.block_size - req.block_size % sector), MAX_BLOCK)
        self.block_size = block
        self.window = min(max(1, req.window), MAX_WINDOW)
        if req.baud:
            self._events.append(ChangeBaud(req.baud))
        return Kind.PARAMS_OK, PARAMS.build(dict(baud=req.baud, block_size=block, window=self.window))

    def _check_span(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.flash.geometry.image_capacity:
            raise _Refused("refused", f"0x{offset:x}+{length} does not fit the slot's "
                                      f"{self.flash.geometry.image_capacity} bytes for an image")

    def _guard_fallback(self) -> None:
        """Refuse while the other slot runs an image on trial: the target is then the slot it falls back to."""
        if (why := trial_refusal(self.flash, self.target)) is not None:
            raise _Refused("on_trial", why)

    def _hashes(self, payload: bytes) -> tuple[Kind, bytes]:
        length = VERIFY.parse(payload).length
        self._guard_fallback()  # the first step of every download: the host learns before it plans anything
        self._check_span(0, length)
        base = self.flash.geometry.slot_base(self.target)
        out = bytearray()
        slots = [base] if self.running is None else [base, self.flash.geometry.slot_base(self.running)]
        for slot_base in slots:  # target slot's blocks, then the running slot's (the host may copy from it)
            for start in range(0, length, self.block_size):
                chunk = self.flash.read(slot_base + start, min(self.block_size, length - start))
                out += hashlib.sha256(chunk).digest()[:HASH_LEN]
        return Kind.HASH_LIST, bytes(out)

    def _write(self, payload: bytes) -> tuple[Kind, bytes]:
        req = WRITE.parse(payload)
        self._guard_fallback()
        g = self.flash.geometry
        data = bytes(req.data)
        if req.raw_len > MAX_BLOCK:
            raise _Refused("bad_request", f"block at 0x{req.offset:x} announces {req.raw_len} bytes, "
                                          f"more than the {MAX_BLOCK}-byte maximum")
        self._check_span(req.offset, req.raw_len)
        if req.flags & FLAG_COPY:
            self._check_span(req.offset, req.raw_len)
            self._running_image_size()  # refuses when nothing runs; the same-offset copy may span the whole slot
            data = self._read_running(req.offset, req.raw_len, self.flash.geometry.image_capacity)
        else:
            if req.flags & FLAG_DEFLATE:  # bounded: a deflate bomb cannot make the device allocate more
                data = _inflate(data, req.offset, 2 * MAX_BLOCK + 64 if req.flags & FLAG_DELTA else req.raw_len)
            if req.flags & FLAG_DELTA:
                size = self._running_image_size()
                try:
                    data = apply_ops(data, req.raw_len, lambda at, n: self._read_running(at, n, size), size)
                except DeltaError as exc:
                    raise _Refused("refused", f"block at 0x{req.offset:x}: {exc}") from exc
        if len(data) != req.raw_len or req.offset % g.sector_size or req.raw_len > MAX_BLOCK:
            raise _Refused("bad_request", f"block at 0x{req.offset:x} is misaligned, too long or the wrong size")
        self._check_span(req.offset, len(data))
        base = g.slot_base(self.target)
        self.last_write_offset = req.offset
        try:
            if not self._trailer_cleared:  # the slot is about to change: it must not stay marked bootable
                if read_trailer(self.flash, self.target).magic:
                    invalidate(self.flash, self.target)
                self._trailer_cleared = True
            for sector in range(req.offset, req.offset + len(data), g.sector_size):
                if self.flash.read(base + sector, g.sector_size).count(ERASED) != g.sector_size:
                    self.flash.erase(base + sector)
            padded = data + bytes([ERASED]) * (-len(data) % g.write_size)
            self.flash.write(base + req.offset, padded)
        except FlashError as exc:
            raise _Refused("flash", str(exc)) from exc
        return Kind.ACK, ACK.build(dict(offset=req.offset, written=len(data)))

    def _running_image_size(self) -> int:
        if self.running is None:
            raise _Refused("bad_request", "no running slot to copy from")
        if self._running_size is None:
            blob = read_image(self.flash, self.running)
            self._running_size = len(blob) if blob else self.flash.geometry.image_capacity
        return self._running_size

    def _read_running(self, offset: int, length: int, size: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > size:
            raise _Refused("refused", f"copy from 0x{offset:x}+{length} is outside the running image ({size} bytes)")
        assert self.running is not None  # noqa: S101 - _running_image_size refused already
        return self.flash.read(self.flash.geometry.slot_base(self.running) + offset, length)

    def _chunks(self, payload: bytes) -> tuple[Kind, bytes]:
        chunk = CHUNKS.parse(payload).chunk_size
        if not MIN_CHUNK <= chunk <= MAX_BLOCK:
            raise _Refused("bad_request", f"chunk size {chunk} is not between {MIN_CHUNK} and {MAX_BLOCK}")
        size = self._running_image_size()
        if size // chunk * SUM_LEN > MAX_SUMS:
            raise _Refused("bad_request", f"{chunk}-byte chunks of a {size}-byte image give more than {MAX_SUMS} "
                                          "bytes of sums: ask for bigger chunks")
        image = self._read_running(0, size, size)
        return Kind.CHUNK_LIST, CHUNK_LIST.build(dict(chunk_size=chunk, length=size, sums=chunk_sums(image, chunk)))

    def _verify(self, payload: bytes) -> tuple[Kind, bytes]:
        length = VERIFY.parse(payload).length
        self._check_span(0, length)
        base = self.flash.geometry.slot_base(self.target)
        return Kind.DIGEST, hashlib.sha256(self.flash.read(base, length)).digest()

    def _finalize(self, payload: bytes) -> tuple[Kind, bytes]:
        req = FINALIZE.parse(payload)
        self._guard_fallback()
        self.last_write_offset = None
        self._check_span(0, req.length)
        blob = self.flash.read(self.flash.geometry.slot_base(self.target), req.length)
        try:
            info = verify_image(blob, self.keys, device_class=self.device_class,
                                min_counter=read_counter(self.flash))
        except FirmwareImageError as exc:
            raise _Refused("refused", f"{exc.reason}: {exc}") from exc
        if info.total_size != req.length:
            raise _Refused("refused", f"image is {info.total_size} bytes, the host sent {req.length}")
        set_pending(self.flash, self.target, permanent=bool(req.permanent))
        self._trailer_cleared = False
        state = "confirmed" if req.permanent else "pending (test boot at the next reset)"
        return Kind.DONE, f"slot {self.target}: {info.version} {state}".encode()

    def _reset(self, _payload: bytes) -> tuple[Kind, bytes]:
        self._events.append(ResetRequested())
        return Kind.DONE, b"resetting"

    def _slots(self, _payload: bytes) -> tuple[Kind, bytes]:
        rows = [asdict(s) for s in describe_flash(self.flash, self.keys, self.device_class)]
        return Kind.SLOT_LIST, json.dumps(rows).encode()


def _inflate(data: bytes, offset: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=-15)
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise _Refused("bad_request", f"block at 0x{offset:x} does not inflate: {exc}") from exc
    if inflater.unconsumed_tail:
        raise _Refused("bad_request", f"block at 0x{offset:x} inflates to more than {limit} bytes")
    return out
