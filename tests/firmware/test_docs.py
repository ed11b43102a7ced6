"""docs/protocols/flashing.md shows the bytes the code sends; the firmware modules' doctests run."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from firmware_image.delta import chunk_sums, encode_ops
from firmware_image.protocol import (
    ACK,
    CHUNK_LIST,
    CHUNKS,
    FINALIZE,
    FLAG_DELTA,
    PARAMS,
    SYNC_MAGIC,
    VERIFY,
    WRITE,
    Kind,
    encode_frame,
)

DOC = Path(__file__).parents[2] / "docs" / "protocols" / "flashing.md"
MODULES = ["firmware_image.layout", "firmware_image.keys", "firmware_image.image", "firmware_image.payload",
           "firmware_image.flash", "firmware_image.protocol", "firmware_image.errors", "firmware_image.link",
           "firmware_image.flasher", "firmware_image.boot", "firmware_image.cli", "firmware_image.agent",
           "firmware_image.smp_serial", "firmware_image.smp_server", "firmware_image.smp_image",
           "firmware_image.smp_client", "firmware_image.maintenance", "firmware_image.selftest",
           "firmware_image.cli_device", "firmware_image.delta"]

VECTORS = [
    encode_frame(Kind.SYNC, SYNC_MAGIC),
    encode_frame(Kind.PARAMS, PARAMS.build(dict(baud=921600, block_size=4096, window=4))),
    encode_frame(Kind.HASHES, VERIFY.build(dict(length=8192))),
    encode_frame(Kind.WRITE, WRITE.build(dict(offset=4096, flags=0, raw_len=8,
                                              data=bytes.fromhex("C0DB000102030405")))),
    encode_frame(Kind.ACK, ACK.build(dict(offset=4096, written=8))),
    encode_frame(Kind.FINALIZE, FINALIZE.build(dict(length=8192, permanent=0))),
    encode_frame(Kind.RESET),
    encode_frame(Kind.CHUNKS, CHUNKS.build(dict(chunk_size=2048))),
    encode_frame(Kind.CHUNK_LIST, CHUNK_LIST.build(dict(
        chunk_size=1024, length=2052, sums=chunk_sums(bytes(range(256)) * 4 + bytes(1024) + b"tail", 1024)))),
    encode_frame(Kind.WRITE, WRITE.build(dict(offset=4096, flags=FLAG_DELTA, raw_len=6,
                                              data=encode_ops([(0x10, 0, 4), (None, 4, b"AB")])))),
]


@pytest.mark.parametrize("frame", VECTORS, ids=lambda f: f[1:2].hex())
def test_documented_frame_bytes(frame):
    assert f"`{frame.hex(' ').upper()}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


SMP_DOC = Path(__file__).parents[2] / "docs" / "protocols" / "smp.md"


def test_documented_smp_echo_bytes():
    from smp.os_management import EchoWriteRequest

    from firmware_image.smp_serial import encode_frame as smp_lines
    from firmware_image.smp_server import SmpServer

    request = EchoWriteRequest(d="hi", sequence=1).BYTES
    answer = SmpServer(None, "demo").handle(request)
    assert answer is not None
    text = SMP_DOC.read_text(encoding="utf-8")
    for message in (request, answer):
        assert f"`{message.hex(' ').upper()}`" in text
        (line,) = smp_lines(message)
        assert f"`06 09` `{line[2:-1].decode()}` `0A`" in text
