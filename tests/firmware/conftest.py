"""Firmware test helpers: keys, small signed images, flash files, and an in-memory flashing session."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from firmware_image.agent import AgentCore
from firmware_image.boot import BootDecision, decide
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher, FlashReport
from firmware_image.image import Version, make_image
from firmware_image.keys import PrivateKey, generate
from firmware_image.link import LoopLink

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "iotsim-pos-test"


def pytest_collection_modifyitems(config, items):
    """Soak tests run only when asked for (``make soak`` passes ``-m soak``)."""
    if "soak" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="soak: run with make soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def key() -> PrivateKey:
    return generate("ed25519")


@pytest.fixture(scope="session")
def other_key() -> PrivateKey:
    return generate("ed25519")


def app_payload(size: int, seed: int, compressible: bool = False) -> bytes:
    rng = random.Random(seed)
    if compressible:
        words = [b"def ", b"return ", b"self.", b"import ", b"\n    ", b"flash", b"slot", b"image"]
        out = bytearray()
        while len(out) < size:
            out += rng.choice(words)
        return bytes(out[:size])
    return rng.randbytes(size)


def signed(key: PrivateKey, payload: bytes, version: str = "1.0.0", counter: int = 1,
           device_class: str = DEVICE) -> bytes:
    return make_image(payload, version=Version.parse(version), key=key, security_counter=counter,
                      device_class=device_class)


def new_flash(path: Path, slot_sectors: int = 16, sector_size: int = 1024) -> SimFlash:
    return SimFlash.create(path, slot_sectors=slot_sectors, sector_size=sector_size)


def flash_in_memory(flash: SimFlash, key: PrivateKey, image: bytes, running: int | None = None,
                    **flasher_args) -> FlashReport:
    core = AgentCore(flash, [key], DEVICE, running)
    return Flasher(LoopLink(core), **flasher_args).flash(image)


def boot(flash: SimFlash, key: PrivateKey) -> BootDecision:
    return decide(flash, [key], DEVICE)
