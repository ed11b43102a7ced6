"""The protocol documents and docstrings show what the code does: transcripts, vectors and doctests."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from emv.crypto.pin import decrypt_pin_block
from tests.drivers.transcripts import pinpad_session, reader_session

DOCS = Path(__file__).parents[2] / "docs" / "protocols"
MODULES = ["drivers.link", "drivers.link.frames", "drivers.link.core", "drivers.link.shell",
           "drivers.link.payload", "drivers.link.device", "drivers.card_reader_codec", "drivers.card_reader",
           "drivers.pinpad_codec", "drivers.pinpad", "drivers.strict_json", "sim.devices.reader", "sim.devices.pinpad",
           "drivers.link.outbox", "drivers.link.reassembly"]


@pytest.mark.parametrize(("document", "session"), [("card-reader.md", reader_session),
                                                     ("pinpad.md", pinpad_session)])
def test_example_session_is_what_the_code_sends(document: str, session: object) -> None:
    text = (DOCS / document).read_text(encoding="utf-8")
    assert session() in text  # type: ignore[operator]


def test_documented_pin_block_deciphers() -> None:
    block = bytes.fromhex("61 6F 89 86 36 D6 4E BC F6 81 B3 14 15 11 11 C1")
    assert block.hex(" ").upper() in (DOCS / "pinpad.md").read_text(encoding="utf-8")
    assert decrypt_pin_block("aes", bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1"),
                             bytes.fromhex("123456789012345600000001"), block, "6212345678901234") == "1234"


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
