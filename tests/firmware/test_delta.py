"""Delta flashing: the chunk matcher and the block assembler (pure), then the agent refusing hostile delta writes
with both slots left byte for byte as they were, then whole sessions where the new image is a shifted edit."""

from __future__ import annotations

import random
import re
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_image.agent import AgentCore, _Refused
from firmware_image.delta import (
    DeltaError,
    apply_ops,
    block_ops,
    chunk_sums,
    encode_ops,
    find_matches,
    parse_sums,
    weak_sum,
)
from firmware_image.flasher import Flasher
from firmware_image.link import LoopLink
from firmware_image.protocol import CHUNKS, ERROR, FLAG_DEFLATE, FLAG_DELTA, WRITE, Kind, SlipDecoder, encode_frame
from firmware_image.slots import SlotState, describe

from .conftest import DEVICE, app_payload, boot, flash_in_memory, new_flash, signed
from .test_agent import FlakyLink

SOURCE = bytes(range(256)) * 4  # a 1 KiB "running image"


def _read(at: int, n: int) -> bytes:
    return SOURCE[at:at + n]


def test_weak_sum_is_rsyncs_and_rolls():
    data = bytes(range(1, 9))
    a = sum(data)
    b = sum((len(data) - i) * x for i, x in enumerate(data))
    assert weak_sum(data) == (a & 0xFFFF) | ((b & 0xFFFF) << 16) == 0x00780024
    sums = parse_sums(chunk_sums(data + b"tail", 8))  # whole chunks only: the 4-byte tail has no sum
    assert len(sums) == 1 and sums[0][0] == 0x00780024


@pytest.mark.parametrize(("ops", "raw_len", "expected"), [
    # copy 4 bytes from 0x10, literal "AB"
    ("01 10000000 04000000 02 02000000 4142", 6, "10111213 4142"),
    # two copies that together make the block
    ("01 fe030000 02000000 01 00000000 02000000", 4, "feff 0001"),
    ("", 0, ""),
])
def test_ops_assemble(ops, raw_len, expected):
    assert apply_ops(bytes.fromhex(ops.replace(" ", "")), raw_len, _read, len(SOURCE)) == bytes.fromhex(
        expected.replace(" ", ""))


@pytest.mark.parametrize(("ops", "raw_len", "message"), [
    ("01 fe030000 03000000", 3, "outside the running image (1024 bytes)"),       # copy past the end
    ("01 ffffffff ffffffff", 16, "outside the running image"),                  # u32 wrap attempt
    ("01 00000000 00020000", 16, "overflows the 16-byte block"),               # copy longer than the block
    ("02 05000000 4142", 5, "longer than the data sent"),                      # literal cut short
    ("02 02000000 4142 02 01000000 43", 2, "overflows the 2-byte block"),      # literal past the block
    ("01 00000000", 4, "unknown or cut short"),                                # truncated copy
    ("07 00000000 00000000", 4, "unknown or cut short (byte 0x07)"),           # unknown op
    ("01 00000000 02000000", 4, "is 2 bytes, 4 were announced"),               # block too short
])
def test_hostile_ops_are_refused_with_a_reason(ops, raw_len, message):
    with pytest.raises(DeltaError, match=re.escape(message)):
        apply_ops(bytes.fromhex(ops.replace(" ", "")), raw_len, _read, len(SOURCE))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), edits=st.lists(st.tuples(st.integers(0, 20000), st.integers(0, 40),
                                                            st.binary(max_size=40)), max_size=4))
def test_any_edit_reassembles_exactly_and_shifted_chunks_are_found(seed, edits):
    old = random.Random(seed).randbytes(20000)
    new = old
    for where, cut, insert in edits:  # insertions and deletions shift everything after them
        at = min(where, len(new))
        new = new[:at] + insert + new[at + cut:]
    chunk = 256
    spans = find_matches(new, parse_sums(chunk_sums(old, chunk)), chunk)
    rebuilt, literal = bytearray(), 0
    for offset in range(0, len(new), 1024):
        ops = block_ops(new, spans, offset, min(1024, len(new) - offset))
        literal += sum(len(what) for source, _at, what in ops if source is None and isinstance(what, bytes))
        rebuilt += apply_ops(encode_ops(ops), min(1024, len(new) - offset), lambda a, n: old[a:a + n], len(old))
    assert bytes(rebuilt) == new
    # each edit spoils at most the two chunks it touches, plus the bytes it inserted, plus the short tail
    assert literal <= len(edits) * (2 * chunk + 40) + chunk


def _device(tmp_path, key):
    """A device running 1.0.0 (confirmed), its flash file, and a 1.0.1 that is 1.0.0 with bytes inserted."""
    flash = new_flash(tmp_path / "f.bin", slot_sectors=24)
    payload = app_payload(15000, 7)
    Flasher(LoopLink(AgentCore(flash, [key], DEVICE)), block_size=1024).flash(signed(key, payload, "1.0.0"),
                                                                             permanent=True)
    assert boot(flash, key).slot == 0
    newer = signed(key, payload[:3000] + b"# one new line\n" + payload[3000:], "1.0.1")
    return flash, newer


def test_an_edit_that_shifts_everything_is_sent_as_copies(tmp_path_factory, key):
    flash, newer = _device(tmp_path_factory.mktemp("plain"), key)
    plain = flash_in_memory(flash, key, newer, running=0, block_size=1024, chunk_size=0)
    flash, newer = _device(tmp_path_factory.mktemp("delta"), key)
    report = flash_in_memory(flash, key, newer, running=0, block_size=1024, chunk_size=256)
    assert plain.bytes_ratio > 0.9 and plain.delta == 0  # random payload: without delta it all goes again
    assert report.delta > 10 and report.bytes_ratio < 0.25, report
    assert [(s.state, s.version) for s in describe(flash.path, [key], DEVICE)] == [
        (SlotState.CONFIRMED, "1.0.0+0"), (SlotState.PENDING, "1.0.1+0")]


def _send(core: AgentCore, kind: Kind, payload: bytes) -> tuple[Kind, bytes]:
    core.receive_data(encode_frame(kind, payload))
    decoder = SlipDecoder()
    decoder.feed(core.data_to_send())
    frame = decoder.next_frame()
    assert frame is not None
    return frame.kind, frame.payload


def _delta(offset: int, raw_len: int, ops: bytes, flags: int = FLAG_DELTA) -> bytes:
    return WRITE.build(dict(offset=offset, flags=flags, raw_len=raw_len, data=ops))


BOMB = zlib.compressobj(9, zlib.DEFLATED, -15)
BOMB_DATA = BOMB.compress(struct.pack("<BI", 2, 10**6) + b"\0" * 10**6) + BOMB.flush()


@pytest.mark.parametrize(("payload", "code", "message"), [
    (_delta(0, 1024, struct.pack("<BII", 1, 10**6, 1024)), "refused", "outside the running image"),
    (_delta(0, 1024, struct.pack("<BII", 1, 0, 2048)), "refused", "overflows the 1024-byte block"),
    (_delta(0, 1024, struct.pack("<BII", 1, 0, 512)), "refused", "is 512 bytes, 1024 were announced"),
    (_delta(23 * 1024, 4096, struct.pack("<BII", 1, 0, 4096)), "refused", "does not fit the slot"),
    (_delta(0, 2**32 - 1, b""), "bad_request", "more than the 16384-byte maximum"),
    (_delta(0, 1024, BOMB_DATA, FLAG_DELTA | FLAG_DEFLATE), "bad_request", "inflates to more than"),
])
def test_hostile_delta_writes_are_refused_and_both_slots_stay_as_they_were(tmp_path, key, payload, code, message):
    flash, _newer = _device(tmp_path, key)
    before = flash.path.read_bytes()
    core = AgentCore(flash, [key], DEVICE, 0)
    kind, answer = _send(core, Kind.WRITE, payload)
    assert kind is Kind.ERROR
    err = ERROR.parse(answer)
    assert err.code == code and message in err.message.decode(), err.message
    assert flash.path.read_bytes() == before  # running slot, target slot and its trailer untouched


def test_chunks_are_refused_without_a_running_image_or_with_a_silly_size(tmp_path, key):
    flash = new_flash(tmp_path / "f.bin")
    kind, answer = _send(AgentCore(flash, [key], DEVICE), Kind.CHUNKS, CHUNKS.build(dict(chunk_size=2048)))
    assert kind is Kind.ERROR and b"no running slot" in ERROR.parse(answer).message
    kind, answer = _send(AgentCore(flash, [key], DEVICE, 0), Kind.CHUNKS, CHUNKS.build(dict(chunk_size=16)))
    assert kind is Kind.ERROR and b"chunk size 16 is not between 256 and 16384" in ERROR.parse(answer).message


def test_delta_writes_survive_a_noisy_line(tmp_path, key):
    """Delta blocks read only the running slot, never the target being written: a re-sent one is idempotent."""
    flash, newer = _device(tmp_path, key)
    core = AgentCore(flash, [key], DEVICE, 0)
    report = Flasher(FlakyLink(core, every=4), block_size=1024, chunk_size=256, timeout=0.2).flash(newer)
    assert report.delta > 10 and report.resent > 0
    assert describe(flash.path, [key], DEVICE)[1].version == "1.0.1+0"


class AgentWithoutDelta(AgentCore):
    """An agent from before delta flashing: it does not know CHUNKS."""

    def _chunks(self, payload: bytes) -> tuple[Kind, bytes]:
        raise _Refused("bad_request", "the device does not take CHUNKS frames")


def test_a_device_without_delta_gets_whole_blocks(tmp_path, key):
    flash, newer = _device(tmp_path, key)
    report = Flasher(LoopLink(AgentWithoutDelta(flash, [key], DEVICE, 0)), block_size=1024,
                     chunk_size=256).flash(newer)
    assert report.delta == 0 and report.bytes_ratio > 0.9
    assert describe(flash.path, [key], DEVICE)[1].version == "1.0.1+0"


@settings(max_examples=300, deadline=None)
@given(ops=st.binary(max_size=64), raw_len=st.integers(0, 64))
def test_random_instructions_raise_only_delta_errors(ops, raw_len):
    try:
        block = apply_ops(ops, raw_len, _read, len(SOURCE))
    except DeltaError:
        return
    assert len(block) == raw_len
