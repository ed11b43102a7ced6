"""Simulated flash rules and the flashing protocol's framing (SLIP per RFC 1055, CRC-32)."""

from __future__ import annotations

import zlib

import pytest

from firmware_image.errors import FlashError, PowerCut
from firmware_image.flash import SimFlash
from firmware_image.protocol import Kind, SlipDecoder, encode_frame, slip_escape


def test_flash_rules(tmp_path):
    flash = SimFlash.create(tmp_path / "f.bin", slot_sectors=2, sector_size=1024)
    assert flash.read(0, 4) == b"\xff" * 4
    flash.write(8, b"\x00" * 8)
    with pytest.raises(FlashError, match="not erased"):
        flash.write(8, b"\x00" * 8)  # no rewrite without erase
    with pytest.raises(FlashError, match="aligned"):
        flash.write(3, b"\x00" * 8)
    with pytest.raises(FlashError, match="aligned"):
        flash.write(16, b"\x00" * 5)
    with pytest.raises(FlashError, match="sector boundary"):
        flash.erase(512)
    flash.erase(0)
    assert flash.read(8, 8) == b"\xff" * 8
    flash.write(8, b"\x00" * 8)
    with pytest.raises(FlashError, match="outside"):
        flash.read(flash.geometry.total_size - 1, 2)


def test_power_cut_clean_and_torn(tmp_path):
    flash = SimFlash.create(tmp_path / "f.bin", slot_sectors=2, sector_size=1024)
    flash.write(0, b"\x11" * 1024)
    flash.close()
    cut = SimFlash(tmp_path / "f.bin", sector_size=1024, cut_at=1, torn=True)
    with pytest.raises(PowerCut):
        cut.erase(0)
    assert cut.read(0, 1024) == b"\xff" * 512 + b"\x11" * 512  # the erase stopped half way
    clean = SimFlash(tmp_path / "f.bin", sector_size=1024, cut_at=2)
    clean.write(1024, b"\x22" * 16)
    with pytest.raises(PowerCut):
        clean.write(1040, b"\x33" * 16)
    assert clean.read(1024, 32) == b"\x22" * 16 + b"\xff" * 16
    torn = SimFlash(tmp_path / "f.bin", sector_size=1024, cut_at=1, torn=True)
    with pytest.raises(PowerCut):
        torn.write(1040, b"\x33" * 16)
    assert torn.read(1040, 16) == b"\x33" * 8 + b"\xff" * 8


def test_flash_file_size_is_checked(tmp_path):
    (tmp_path / "odd.bin").write_bytes(b"\xff" * 5000)
    with pytest.raises(FlashError, match="pos-fw slots --create"):
        SimFlash(tmp_path / "odd.bin")


def test_crc32_check_value():
    # CRC-32 (ISO-HDLC) check value of "123456789" from the CRC RevEng catalogue: 0xCBF43926
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_slip_escapes_per_rfc1055():
    # RFC 1055: END (C0) -> ESC ESC_END (DB DC); ESC (DB) -> ESC ESC_ESC (DB DD)
    assert slip_escape(bytes.fromhex("01c002db03")) == bytes.fromhex("01dbdc02dbdd03")
    frame = encode_frame(Kind.SYNC, b"POSFW1")
    body = b"\x01POSFW1"
    assert frame == b"\xc0" + slip_escape(body + zlib.crc32(body).to_bytes(4, "little")) + b"\xc0"


PAYLOADS = [b"", b"\xc0\xdb\xc0", bytes(range(256)), b"x" * 3000]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["empty", "specials", "all-bytes", "long"])
def test_decoder_whole_split_and_byte_by_byte(payload):
    wire = encode_frame(Kind.WRITE, payload)
    for chunks in ([wire], [wire[:len(wire) // 2], wire[len(wire) // 2:]], [wire[i:i + 1] for i in range(len(wire))]):
        dec = SlipDecoder()
        for chunk in chunks:
            dec.feed(chunk)
        frame = dec.next_frame()
        assert frame is not None and frame.kind is Kind.WRITE and frame.payload == payload
        assert dec.next_frame() is None


def test_decoder_garbage_bad_crc_and_recovery():
    good = encode_frame(Kind.VERIFY, b"\x00\x10\x00\x00")
    bad_crc = bytearray(encode_frame(Kind.VERIFY, b"\x01\x02"))
    bad_crc[2] ^= 0xFF
    lone_escape = b"\xc0\x05\xdb\x41\x00\x00\x00\x00\xc0"
    dec = SlipDecoder()
    dec.feed(b"garbage\xc0" + bytes(bad_crc) + lone_escape + good + b"trailing garbage")
    frame = dec.next_frame()
    assert frame is not None and frame.kind is Kind.VERIFY and frame.payload == b"\x00\x10\x00\x00"
    assert dec.next_frame() is None
    assert dec.dropped == 3  # "garbage", the bad CRC frame, the lone escape
    dec.feed(b"\xc0" + good)
    assert dec.next_frame() is not None
