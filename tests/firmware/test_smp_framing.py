"""SMP serial framing (device side) and the maintenance port's demux of POSFW1 and SMP: published vector, split
input, garbage, bad CRC, frames of one protocol that contain the other's delimiters; Hypothesis on random bytes."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smp import packet as smppacket
from smp.image_management import ImageUploadWriteRequest
from smp.os_management import EchoWriteRequest, EchoWriteResponse

from firmware_image.agent import AgentCore
from firmware_image.maintenance import MaintenancePort
from firmware_image.protocol import FINALIZE, HELLO, SYNC_MAGIC, Kind, SlipDecoder, encode_frame
from firmware_image.smp_serial import SmpLineDecoder
from firmware_image.smp_server import SmpServer
from tests.firmware.conftest import DEVICE, new_flash

# smp.packet.decode's published example (the smp package's documentation): 15 lines, one upload request
PUBLISHED_LINES = [bytes.fromhex(h) for h in (
    "06094148344b41414230414147610a", "041441615a6a6247567544574e760a", "04145a6d59594b6d4e7a6147464d0a",
    "041464484a3163335167625755670a", "0414596e4a765a475268644746590a", "04145141414241674d45425159480a",
    "041443416b4b4377774e446738510a", "041445524954464255574678675a0a", "04144768736348523466494345690a",
    "04144979516c4a69636f4b536f720a", "04144c4330754c7a41784d6a4d300a", "04144e5459334f446b364f7a77390a",
    "0414506a396c615731685a3255410a", "04145a3356775a334a685a4758300a", "04147134673d0a")]


def _lines(data: bytes) -> list[bytes]:
    return [line + b"\n" for line in data.split(b"\n") if line]


def test_published_upload_request_decodes_with_every_field():
    dec = SmpLineDecoder(buf_size=4096)
    for line in PUBLISHED_LINES:
        dec.feed_line(line)
    frame = dec.next_frame()
    assert frame is not None and frame[:8].hex() == "0a000074" "0001" "9a01"  # write, v2, 116 bytes, group 1
    request = ImageUploadWriteRequest.loads(frame)
    assert (request.off, request.len, request.sha, request.image, request.upgrade) == (
        42, 13, b"trust me bro", 0, False)
    assert request.data == bytes(range(64))


@pytest.mark.parametrize("line_length", [8, 12, 64, 128, 512])
def test_any_line_length_of_the_reference_encoder(line_length):
    message = EchoWriteRequest(d="x" * 300, sequence=3).BYTES
    dec = SmpLineDecoder(buf_size=4096)
    for line in smppacket.encode(message, line_length=line_length):
        dec.feed_line(line)
    assert dec.next_frame() == message and dec.dropped == 0


@pytest.mark.parametrize("damage", ["crc", "base64", "orphan-continuation", "too-long", "short"])
def test_damaged_frames_are_dropped_and_the_next_good_one_is_taken(damage):
    message = EchoWriteRequest(d="hello", sequence=1).BYTES
    good = list(smppacket.encode(message))
    if damage == "crc":
        raw = bytearray(base64.b64decode(good[0][2:-1]))
        raw[-1] ^= 0x01
        bad = [b"\x06\x09" + base64.b64encode(bytes(raw)) + b"\n"]
    elif damage == "base64":
        bad = [good[0][:5] + b"!" + good[0][6:]]
    elif damage == "orphan-continuation":
        bad = [b"\x04\x14" + good[0][2:]]
    elif damage == "too-long":
        bad = list(smppacket.encode(b"y" * 5000))
    else:
        bad = [b"\x06\x09AA==\n"]
    dec = SmpLineDecoder(buf_size=4096)
    for line in bad + good:
        dec.feed_line(line)
    assert dec.next_frame() == message and dec.next_frame() is None and dec.dropped >= 1


@pytest.fixture
def port(tmp_path):
    flash = new_flash(tmp_path / "flash.bin")
    yield MaintenancePort(AgentCore(flash, [], DEVICE), SmpServer(None, DEVICE))
    flash.close()


def _answers(out: bytes) -> tuple[list[Kind], list[str]]:
    """The POSFW1 frame kinds and the SMP echo answers in what the port sent (an independent split: SLIP by
    our decoder, SMP lines by the ``smp`` package's own decoder)."""
    slip = SlipDecoder()
    smp_part = bytearray()
    for chunk in out.split(b"\xc0"):
        if chunk.startswith((b"\x06\x09", b"\x04\x14")):
            smp_part += chunk
        else:
            slip.feed(b"\xc0" + chunk + b"\xc0")
    kinds = []
    while (frame := slip.next_frame()) is not None:
        kinds.append(frame.kind)
    echoes = []
    decoder = smppacket.decode()
    next(decoder)
    for line in _lines(bytes(smp_part)):
        try:
            decoder.send(line)
        except StopIteration as done:
            echoes.append(EchoWriteResponse.loads(done.value).r)
            decoder = smppacket.decode()
            next(decoder)
    return kinds, echoes


def _traffic() -> bytes:
    tricky_sync = SYNC_MAGIC + b"\x06\x09QUJD\n\x04\x14\n"  # POSFW1 data that looks like SMP lines
    return (b"noise\x00" + encode_frame(Kind.SYNC, tricky_sync)
            + b"".join(smppacket.encode(EchoWriteRequest(d="one", sequence=1).BYTES))
            + encode_frame(Kind.SYNC, SYNC_MAGIC)
            + b"".join(smppacket.encode(EchoWriteRequest(d="two" * 80, sequence=2).BYTES, line_length=40)))


def test_both_protocols_on_one_line_whole(port):
    port.receive_data(_traffic())
    kinds, echoes = _answers(port.data_to_send())
    assert kinds == [Kind.HELLO, Kind.HELLO] and echoes == ["one", "two" * 80]
    assert port.smp_dropped == 0 and port.posfw.dropped == 0


def test_every_split_and_byte_at_a_time_give_the_same_answers(port, tmp_path):
    traffic = _traffic()
    port.receive_data(traffic)
    reference = port.data_to_send()
    for cut in range(0, len(traffic), 7):
        flash = new_flash(tmp_path / f"f{cut}.bin")
        other = MaintenancePort(AgentCore(flash, [], DEVICE), SmpServer(None, DEVICE))
        other.receive_data(traffic[:cut])
        other.receive_data(traffic[cut:])
        assert other.data_to_send() == reference, cut
        flash.close()
    flash = new_flash(tmp_path / "bytes.bin")
    one = MaintenancePort(AgentCore(flash, [], DEVICE), SmpServer(None, DEVICE))
    for i in range(len(traffic)):
        one.receive_data(traffic[i:i + 1])
    assert one.data_to_send() == reference
    flash.close()


def test_a_stray_c0_in_noise_does_not_swallow_the_next_smp_request_after_a_quiet_line(port):
    port.receive_data(b"\xc0garbage")
    port.line_idle()  # the shell's read timed out
    port.receive_data(b"".join(smppacket.encode(EchoWriteRequest(d="after", sequence=9).BYTES)))
    assert _answers(port.data_to_send())[1] == ["after"]


def test_a_posfw1_frame_that_starts_like_an_smp_line_stays_posfw1(port):
    finalize = encode_frame(Kind.FINALIZE, FINALIZE.build(dict(length=0x0A09, permanent=0)))
    assert finalize[1:3] == b"\x06\x09"  # kind FINALIZE, then the length's low byte
    port.receive_data(finalize)
    slip = SlipDecoder()
    slip.feed(port.data_to_send())
    frame = slip.next_frame()
    assert frame is not None and frame.kind is Kind.ERROR  # POSFW1 answered it (no image there to finalize)
    assert port.smp_dropped == 0


def test_hello_fields_survive_the_demux(port):
    port.receive_data(encode_frame(Kind.SYNC, SYNC_MAGIC))
    slip = SlipDecoder()
    slip.feed(port.data_to_send())
    frame = slip.next_frame()
    assert frame is not None and HELLO.parse(frame.payload).device_class == DEVICE.encode()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_a_good_request_still_gets_its_answer(tmp_path_factory, data):
    flash = new_flash(tmp_path_factory.mktemp("fz") / "flash.bin", slot_sectors=2)
    port = MaintenancePort(AgentCore(flash, [], DEVICE), SmpServer(None, DEVICE))
    try:
        port.receive_data(data)
        port.line_idle()
        port.data_to_send()
        port.receive_data(b"".join(smppacket.encode(EchoWriteRequest(d="ok", sequence=4).BYTES)))
        assert _answers(port.data_to_send())[1] == ["ok"]
    finally:
        flash.close()
