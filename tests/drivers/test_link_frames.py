"""Link frames: CRC, vectors byte for byte (the same as docs/protocols/card-reader.md), scanner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.link.frames import (
    MAX_DATA,
    Control,
    ControlFrame,
    DataFrame,
    crc16_ccitt_false,
    decode_frame,
    encode_control,
    encode_data,
    find_frame,
)
from pos_errors import LocalProtocolError, RemoteProtocolError

# (seq, cmd, data) -> frame, as in the protocol document
DATA_VECTORS = [
    (0x00, 0x01, "",                     "02 00 02 00 01 FA 81"),
    (0x01, 0x10, "",                     "02 00 02 01 10 CB A0"),
    (0x02, 0x12, "00 A4 04 00 00",       "02 00 07 02 12 00 A4 04 00 00 D2 0A"),
    (0x00, 0x92, "02 00 6F 00 90 00",    "02 00 08 00 92 02 00 6F 00 90 00 2A 30"),
    (0x05, 0x40, "",                     "02 00 02 05 40 5D 91"),
]
CONTROL_VECTORS = [
    (Control.ACK, 0x00, "06 00 B7 A9"),
    (Control.ACK, 0x02, "06 02 97 EB"),
    (Control.NAK, 0x02, "15 02 C1 CB"),
    (Control.SYN, 0x00, "16 00 B4 DA"),
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(("data", "crc"), [
    (b"123456789", 0x29B1),  # the catalogue check value of CRC-16/CCITT-FALSE
    (b"",          0xFFFF),  # nothing processed: the init value
    (b"\x00",      0xE1F0),
])
def test_crc16_ccitt_false(data: bytes, crc: int) -> None:
    assert crc16_ccitt_false(data) == crc


@pytest.mark.parametrize(("seq", "cmd", "data", "frame"), DATA_VECTORS)
def test_data_frame_vectors(seq: int, cmd: int, data: str, frame: str) -> None:
    raw = encode_data(seq, cmd, h(data))
    assert raw == h(frame)
    assert _crc_bitwise(raw[1:-2]) == int.from_bytes(raw[-2:], "big")  # CRC covers LEN..DATA
    assert decode_frame(raw) == DataFrame(seq=seq, cmd=cmd, data=h(data))


@pytest.mark.parametrize(("kind", "seq", "frame"), CONTROL_VECTORS)
def test_control_frame_vectors(kind: Control, seq: int, frame: str) -> None:
    assert encode_control(kind, seq) == h(frame)
    assert decode_frame(h(frame)) == ControlFrame(kind=kind, seq=seq)


def test_documented_examples_match_the_code() -> None:
    from pathlib import Path
    doc = (Path(__file__).parents[2] / "docs/protocols/card-reader.md").read_text(encoding="utf-8")
    for *_, frame in DATA_VECTORS + CONTROL_VECTORS:
        assert frame in doc, f"{frame} missing from card-reader.md"


@pytest.mark.parametrize("bad", [
    dict(seq=256, cmd=1), dict(seq=0, cmd=-1), dict(seq=0, cmd=1, data=bytes(MAX_DATA + 1)),
])
def test_encode_refuses_what_cannot_be_framed(bad: dict) -> None:
    with pytest.raises(LocalProtocolError):
        encode_data(**bad)


def test_bad_crc_is_remote_error_with_offset_and_header_only() -> None:
    raw = bytearray(encode_data(3, 0x21, b"6212345678901234"))
    raw[-1] ^= 0x01
    with pytest.raises(RemoteProtocolError) as info:
        decode_frame(bytes(raw))
    assert info.value.offset == len(raw) - 2
    assert info.value.raw == bytes(raw[:5])  # header only: the payload may be a PAN
    assert b"6212" not in (info.value.raw or b"")


def test_unknown_control_kind_and_trailing_bytes_are_rejected() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_frame(h("06 00 B7 A9 00"))
    with pytest.raises(RemoteProtocolError):
        decode_frame(b"")


# --- the scanner --------------------------------------------------------------------------------------------

FRAME = encode_data(1, 0x10, b"\x01\x02")


@pytest.mark.parametrize(("buffer", "expected"), [
    (FRAME,                              (0, len(FRAME))),
    (b"\xff\x00" + FRAME,                (2, 2 + len(FRAME))),   # garbage before
    (FRAME + b"\xff\xff",                (0, len(FRAME))),        # garbage after stays for later
    (FRAME[:4],                          (0, None)),              # incomplete
    (b"\x02",                            (0, None)),              # a lone STX: need LEN first
    (b"\x02\xff\xff" + FRAME,            (3, 3 + len(FRAME))),   # STX with impossible LEN is not a start
    (b"\x02\x00\x01" + FRAME,            (3, 3 + len(FRAME))),   # LEN below SEQ+CMD
    (b"\x41\x42\x43",                    (3, None)),              # nothing that could start a frame
    (b"\x06\x00",                        (0, None)),              # control frame, incomplete
])
def test_find_frame(buffer: bytes, expected: tuple[int, int | None]) -> None:
    assert find_frame(buffer) == expected


# --- properties ---------------------------------------------------------------------------------------------


def _crc_bitwise(data: bytes) -> int:
    """Reference CRC-16/CCITT-FALSE, bit by bit, independent of binascii."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@given(st.binary(max_size=200))
def test_crc_matches_bitwise_reference(data: bytes) -> None:
    assert crc16_ccitt_false(data) == _crc_bitwise(data)


@given(seq=st.integers(0, 255), cmd=st.integers(0, 255), data=st.binary(max_size=300))
def test_data_round_trip(seq: int, cmd: int, data: bytes) -> None:
    raw = encode_data(seq, cmd, data)
    assert find_frame(raw) == (0, len(raw))
    assert decode_frame(raw) == DataFrame(seq, cmd, data)


@given(kind=st.sampled_from(list(Control)), seq=st.integers(0, 255))
def test_control_round_trip(kind: Control, seq: int) -> None:
    assert decode_frame(encode_control(kind, seq)) == ControlFrame(kind, seq)


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_our_error(raw: bytes) -> None:
    try:
        decode_frame(raw)
    except RemoteProtocolError:
        pass
    start, end = find_frame(raw)
    assert 0 <= start <= len(raw) and (end is None or start < end <= len(raw))


@given(data=st.binary(min_size=1, max_size=40), position=st.integers(0, 1000), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_detected(data: bytes, position: int, bit: int) -> None:
    raw = bytearray(encode_data(7, 0x12, data))
    index = 1 + position % (len(raw) - 1)  # anything after STX
    raw[index] ^= 1 << bit
    start, end = find_frame(raw)
    if end is None or start != 0:
        return  # the flip broke LEN: the scanner no longer sees this frame, which is also a rejection
    with pytest.raises(RemoteProtocolError):
        decode_frame(bytes(raw[:end]))
