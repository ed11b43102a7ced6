"""Update agent and host against each other in memory: skipping, windows, corrupted links, hostile frames."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_image.agent import AgentCore
from firmware_image.errors import FlashProtocolError
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.link import LoopLink
from firmware_image.protocol import Kind, SlipDecoder, encode_frame
from firmware_image.slots import SlotState, describe

from .conftest import DEVICE, app_payload, boot, flash_in_memory, new_flash, signed


class FlakyLink(LoopLink):
    """Flips one byte in every ``every``-th frame the host sends (line noise)."""

    def __init__(self, core: AgentCore, every: int) -> None:
        super().__init__(core)
        self.every = every
        self.frames = 0

    def write(self, data: bytes) -> None:
        self.frames += 1
        if self.frames % self.every == 0:
            data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x55]) + data[len(data) // 2 + 1:]
        super().write(data)


def test_download_compresses_skips_and_copies(tmp_path, key):
    flash = new_flash(tmp_path / "f.bin", slot_sectors=24)
    text = signed(key, app_payload(15000, 1, compressible=True), "1.0.0")
    first = flash_in_memory(flash, key, text, block_size=1024)
    assert first.blocks_sent == first.blocks_total and first.bytes_ratio < 0.5  # deflated blocks
    again = flash_in_memory(flash, key, text, block_size=1024)
    assert again.blocks_sent == 0 and again.bytes_ratio < 0.02  # already there: hashes only
    boot(flash, key)
    from firmware_image.slots import confirm_flash
    confirm_flash(flash)
    assert boot(flash, key).slot == 0
    other = flash_in_memory(flash, key, text, running=0, block_size=1024)  # into slot 1, copied from slot 0
    assert other.target_slot == 1 and other.copied == other.blocks_sent > 0 and other.bytes_ratio < 0.05
    flash.close()
    assert [s.state for s in describe(tmp_path / "f.bin", [key], DEVICE)] == [SlotState.CONFIRMED, SlotState.PENDING]


def test_a_noisy_line_is_survived_by_retransmission(tmp_path, key):
    flash = new_flash(tmp_path / "f.bin", slot_sectors=24)
    image = signed(key, app_payload(12000, 2), "1.0.0")
    core = AgentCore(flash, [key], DEVICE)
    link = FlakyLink(core, every=3)
    report = Flasher(link, block_size=1024, window=3, timeout=0.05, retries=8).flash(image)
    assert report.resent > 0 and core.dropped > 0
    base = flash.geometry.slot_base(0)
    assert hashlib.sha256(flash.read(base, len(image))).digest() == hashlib.sha256(image).digest()


def test_a_dead_line_gives_up_with_advice(tmp_path, key):
    flash = new_flash(tmp_path / "f.bin")
    link = FlakyLink(AgentCore(flash, [key], DEVICE), every=1)
    try:
        Flasher(link, timeout=0.01, retries=2).flash(signed(key, b"x" * 100))
    except FlashProtocolError as exc:
        assert "is the agent running" in str(exc)
    else:
        raise AssertionError("flashing over a dead line must fail")


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.tuples(st.sampled_from(list(Kind)), st.binary(max_size=64)), max_size=6),
       noise=st.binary(max_size=64))
def test_hostile_frames_get_error_answers_and_never_touch_the_running_slot(tmp_path_factory, key, frames, noise):
    path = tmp_path_factory.mktemp("h") / "f.bin"
    with SimFlash.create(path, slot_sectors=4, sector_size=1024) as flash:
        running = bytes(flash.read(0, 4096))
        core = AgentCore(flash, [key], DEVICE, running=0)
        core.receive_data(noise + b"".join(encode_frame(k, p) for k, p in frames))
        dec = SlipDecoder()
        dec.feed(core.data_to_send())
        answers = []
        while (frame := dec.next_frame()) is not None:
            answers.append(frame.kind)
        assert len(answers) >= sum(1 for k, _ in frames if k.value < 0x80)  # every request is answered
        assert flash.read(0, 4096) == running


def test_slots_and_reset_through_the_agent(tmp_path, key):
    import json

    from firmware_image.agent import ResetRequested
    flash = new_flash(tmp_path / "f.bin")
    flash_in_memory(flash, key, signed(key, app_payload(3000, 9), "3.2.1"))
    core = AgentCore(flash, [key], DEVICE)
    rows = json.loads(Flasher(LoopLink(core)).slots())
    assert [(r["slot"], r["state"], r["version"]) for r in rows] == [(0, "pending", "3.2.1+0"), (1, "empty", None)]
    Flasher(LoopLink(core)).reset()
    assert isinstance(core.next_event(), ResetRequested)
