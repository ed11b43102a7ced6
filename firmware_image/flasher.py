"""The host side of the flashing protocol (``pos-fw flash``): sync, negotiate, skip what is already right, stream.

1. SYNC until the device answers HELLO (it tells sector size, slot size, running and target slot).
2. PARAMS: baud, block size, window; both ends switch baud after the answer.
3. HASHES: the device's truncated SHA-256 of every block of the target slot; blocks that already match are
   skipped, so a resumed or identical flash sends (almost) nothing.
4. WRITE the rest, each block deflated when that makes it smaller, up to ``window`` blocks in flight; blocks not
   acknowledged in time are sent again (selective repeat).
   Delta: when the running slot holds another image, CHUNKS fetches its rolling + strong sums per 2 KiB chunk;
   blocks whose content is found anywhere in it (even shifted) go as DELTA writes: copy instructions for the
   device plus the new bytes, deflated (``firmware_image/delta.py``).
5. VERIFY: the device's SHA-256 of the whole slot range must equal the image's. 6. FINALIZE (the device checks
   signature, device class and rollback counter, then marks the slot pending). 7. RESET.

>>> FlashReport(image_size=8, blocks_total=1, blocks_sent=0).bytes_ratio
0.0
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from construct import ConstructError

from firmware_image.delta import MAX_SUMS, SUM_LEN, block_ops, encode_ops, find_matches, parse_sums
from firmware_image.errors import DeviceRefused, FlashProtocolError
from firmware_image.link import Link
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
    SYNC_MAGIC,
    VERIFY,
    WRITE,
    Frame,
    Kind,
    SlipDecoder,
    encode_frame,
)

__all__ = ["Flasher", "FlashReport", "Progress"]

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass
class FlashReport:
    image_size: int
    blocks_total: int
    blocks_sent: int
    wire_bytes_out: int = 0
    wire_bytes_in: int = 0
    resent: int = 0
    copied: int = 0  # blocks the device copied from its running slot instead of receiving them
    delta: int = 0  # blocks sent as delta instructions (copies from anywhere in the running image + new bytes)
    seconds: float = 0.0
    target_slot: int = -1
    message: str = ""
    sent_offsets: list[int] = field(default_factory=list)

    @property
    def bytes_ratio(self) -> float:
        """Bytes put on the wire towards the device per image byte."""
        return self.wire_bytes_out / self.image_size if self.image_size else 0.0


class Flasher:
    """Drives one flashing session over ``link``."""

    def __init__(self, link: Link, *, baud: int = 0, block_size: int = 4096, window: int = 4,
                 timeout: float = 2.0, retries: int = 5, progress: Progress | None = None,
                 chunk_size: int = 2048) -> None:
        self.link = link
        self.baud = baud
        self.block_size = block_size
        self.window = window
        self.timeout = timeout
        self.retries = retries
        self.progress = progress
        self._decoder = SlipDecoder()
        self.hello: object = None
        self._out = 0
        self._in = 0
        self._copyable: set[int] = set()
        self.chunk_size = chunk_size  # 0: no delta (send changed blocks whole, deflated)
        self._spans: list[tuple[int, int, int]] = []
        self._delta_blocks: set[int] = set()

    def _send(self, kind: Kind, payload: bytes = b"") -> None:
        frame = encode_frame(kind, payload)
        self._out += len(frame)
        self.link.write(frame)

    def _receive(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        while (frame := self._decoder.next_frame()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            data = self.link.read(min(remaining, 0.2))
            self._in += len(data)
            self._decoder.feed(data)
        if frame.kind is Kind.ERROR:
            err = ERROR.parse(frame.payload)
            raise DeviceRefused(f"device refused ({err.code}): {err.message.decode(errors='replace')}", str(err.code))
        return frame

    def _request(self, kind: Kind, payload: bytes, answer: Kind, timeout: float | None = None,
                 tries: int | None = None) -> Frame:
        for _ in range(tries or self.retries):
            self._send(kind, payload)
            frame = self._receive(timeout or self.timeout)
            while frame is not None and frame.kind is not answer:  # late answers to earlier requests
                frame = self._receive(timeout or self.timeout)
            if frame is not None:
                return frame
        raise FlashProtocolError(f"no {answer.name} answer to {kind.name} after {tries or self.retries} tries: "
                                 "is the agent running on that port (and the baud rate right)?")

    def sync(self) -> object:
        # a device still booting may miss the first few: keep knocking for a while, like esptool's connect
        answer = self._request(Kind.SYNC, SYNC_MAGIC, Kind.HELLO, min(0.5, self.timeout), 4 * self.retries)
        self.hello = HELLO.parse(answer.payload)
        return self.hello

    def negotiate(self) -> None:
        frame = self._request(Kind.PARAMS, PARAMS.build(dict(baud=self.baud, block_size=self.block_size,
                                                             window=self.window)), Kind.PARAMS_OK)
        params = PARAMS.parse(frame.payload)
        self.block_size, self.window = params.block_size, params.window
        if params.baud:
            time.sleep(0.005)  # let the device switch first (a missed SYNC is simply repeated)
            self.link.set_baud(params.baud)
            self.sync()

    def device_hashes(self, length: int) -> list[bytes]:
        frame = self._request(Kind.HASHES, VERIFY.build(dict(length=length)), Kind.HASH_LIST,
                              self.timeout + length / 20000)
        raw = frame.payload
        return [raw[i:i + HASH_LEN] for i in range(0, len(raw), HASH_LEN)]

    def running_chunks(self) -> list[tuple[int, bytes]]:
        """The running image's chunk sums, or [] when the device has no running image or no delta support."""
        slot_size = self.hello.slot_size  # type: ignore[attr-defined]
        chunk = self.chunk_size
        while slot_size // chunk * SUM_LEN > MAX_SUMS and chunk < 16 * 1024:  # the list must fit one frame
            chunk *= 2
        try:
            frame = self._request(Kind.CHUNKS, CHUNKS.build(dict(chunk_size=chunk)), Kind.CHUNK_LIST,
                                  self.timeout + slot_size / 20000)
        except DeviceRefused:
            return []
        answer = CHUNK_LIST.parse(frame.payload)
        if answer.chunk_size != chunk:
            raise FlashProtocolError(f"device answered chunk size {answer.chunk_size}, asked {chunk}")
        self.chunk_size = chunk
        return parse_sums(answer.sums)

    def _block_frame(self, image: bytes, offset: int) -> bytes:
        raw = image[offset:offset + self.block_size]
        if offset in self._copyable:
            return encode_frame(Kind.WRITE, WRITE.build(dict(offset=offset, flags=FLAG_COPY, raw_len=len(raw),
                                                             data=b"")))
        flags, data = _smaller(raw, 0)
        if self._spans:
            ops = block_ops(image, self._spans, offset, len(raw))
            if any(source is not None for source, _at, _what in ops):
                delta_flags, delta = _smaller(encode_ops(ops), FLAG_DELTA)
                if len(delta) < len(data):
                    flags, data = delta_flags, delta
        if flags & FLAG_DELTA:
            self._delta_blocks.add(offset)
        return encode_frame(Kind.WRITE, WRITE.build(dict(offset=offset, flags=flags, raw_len=len(raw), data=data)))

    def plan(self, image: bytes, hashes: list[bytes]) -> list[int]:
        """Offsets of the blocks to send; remembers which of them the device can copy from its running slot."""
        offsets = list(range(0, len(image), self.block_size))
        mine = [hashlib.sha256(image[o:o + self.block_size]).digest()[:HASH_LEN] for o in offsets]
        target, running = hashes[:len(offsets)], hashes[len(offsets):]
        todo = [o for i, o in enumerate(offsets) if i >= len(target) or target[i] != mine[i]]
        self._copyable = {o for i, o in enumerate(offsets) if i < len(running) and running[i] == mine[i]}
        return todo

    def _stream(self, image: bytes, offsets: list[int], report: FlashReport) -> None:
        pending = deque(offsets)
        in_flight: deque[tuple[int, bytes]] = deque()
        done = len(image) - len(offsets) * self.block_size
        tries = 0
        while pending or in_flight:
            while pending and len(in_flight) < self.window:
                offset = pending.popleft()
                frame = self._block_frame(image, offset)
                in_flight.append((offset, frame))
                self._out += len(frame)
                self.link.write(frame)
            line_time = self.window * self.block_size * 10 / self.baud if self.baud else 0.0
            got = self._receive(self.timeout + 2 * line_time)
            if got is None:  # lost frames: send everything still unacknowledged again
                tries += 1
                if tries > self.retries:
                    raise FlashProtocolError("device stopped acknowledging blocks; run pos-fw flash again "
                                             "(it resumes where it stopped)")
                report.resent += len(in_flight)
                pending.extendleft(reversed([o for o, _ in in_flight]))
                in_flight.clear()
                continue
            if got.kind is not Kind.ACK:
                continue
            acked = ACK.parse(got.payload).offset
            position = next((i for i, (o, _) in enumerate(in_flight) if o == acked), None)
            if position is not None:  # selective: a lost frame costs only itself on the retry
                del in_flight[position]
                tries = 0
                done += self.block_size
                if self.progress:
                    self.progress(min(done, len(image)), len(image))

    def flash(self, image: bytes, *, permanent: bool = False, reset: bool = True) -> FlashReport:
        """Download ``image`` into the device's inactive slot and mark it pending (or confirmed)."""
        started = time.perf_counter()
        try:
            hello = self.sync()
            self.negotiate()
            theirs = self.device_hashes(len(image))
            todo = self.plan(image, theirs)
            if self.chunk_size and hello.running_slot != 0xFF and set(todo) - self._copyable:  # type: ignore[attr-defined]
                sums = self.running_chunks()  # may raise the chunk size so that the list fits one frame
                self._spans = find_matches(image, sums, self.chunk_size)
            report = FlashReport(len(image), -(-len(image) // self.block_size), len(todo),
                                 target_slot=hello.target_slot, sent_offsets=todo,  # type: ignore[attr-defined]
                                 copied=len(self._copyable.intersection(todo)))
            self._stream(image, todo, report)
            report.delta = len(self._delta_blocks)
            digest = self._request(Kind.VERIFY, VERIFY.build(dict(length=len(image))), Kind.DIGEST,
                                   self.timeout + len(image) / 20000).payload
            if digest != hashlib.sha256(image).digest():
                raise FlashProtocolError("read-back hash differs from the image: flash again")
            done = self._request(Kind.FINALIZE, FINALIZE.build(dict(length=len(image), permanent=int(permanent))),
                                 Kind.DONE, self.timeout + len(image) / 20000)
            report.message = done.payload.decode(errors="replace")
            if reset:
                try:
                    self._request(Kind.RESET, b"", Kind.DONE)
                except FlashProtocolError:  # the device may reset before its answer gets out: the image is in
                    report.message += " (no answer to RESET: power-cycle the terminal)"
        except ConstructError as exc:
            raise FlashProtocolError(f"device sent a malformed answer: {exc}") from exc
        report.seconds = time.perf_counter() - started
        report.wire_bytes_out, report.wire_bytes_in = self._out, self._in
        return report

    def slots(self) -> bytes:
        self.sync()
        return self._request(Kind.SLOTS, b"", Kind.SLOT_LIST).payload

    def reset(self) -> None:
        self.sync()
        self._request(Kind.RESET, b"", Kind.DONE)


def _smaller(raw: bytes, flags: int) -> tuple[int, bytes]:
    """``raw`` deflated (with ``FLAG_DEFLATE`` added to ``flags``) when that is shorter, else as is."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = packer.compress(raw) + packer.flush()
    return (flags | FLAG_DEFLATE, deflated) if len(deflated) < len(raw) else (flags, raw)
