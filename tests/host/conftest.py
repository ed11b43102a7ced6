"""Shared fixtures: the real test-card catalogue, field-55 data computed with the card's own keys and the
EMV crypto the card applet uses, DUKPT PIN blocks from the PIN pad's encryptor, and a started AcquirerSim."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from emv import tlv
from emv.crypto import arqc, pin
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from sim.devices.cards import CATALOGUE, SimCardProfile

TODAY = dt.date(2025, 1, 15)
BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = bytes.fromhex("123456789012345600000000")
TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN = bytes.fromhex("FFFF9876543210E00000")
GOOD = CATALOGUE["unionpay-debit"]
EXPIRED = CATALOGUE["expired"]  # expired June 2024
MASTERCARD = CATALOGUE["mastercard-debit"]  # PSN 02, PIN 4321
SECURE_TID = "T0000001"  # the terminal the ``security`` fixture's host knows


def session_key(card: SimCardProfile, atc: int) -> bytes:
    icc_mk = arqc.derive_icc_master_key(card.issuer_master_key, card.pan, card.psn)
    return arqc.derive_session_key(icc_mk, atc.to_bytes(2, "big"))


def icc_values(amount_minor: int, atc: int) -> dict[int, bytes]:
    """The AC input data objects as the kernel and card put them in field 55."""
    return {
        0x9F02: bytes.fromhex(f"{amount_minor:012d}"), 0x9F03: bytes(6), 0x9F1A: b"\x01\x56",
        0x95: bytes(5), 0x5F2A: b"\x01\x56", 0x9A: bytes.fromhex(f"{TODAY:%y%m%d}"), 0x9C: b"\x00",
        0x9F37: bytes.fromhex("A1B2C3D4"), 0x82: b"\x39\x00", 0x9F36: atc.to_bytes(2, "big"),
        0x9F10: arqc.issuer_application_data(bytes.fromhex("03A4A00000")),
    }


def arqc_for(card: SimCardProfile, amount_minor: int, atc: int) -> bytes:
    return arqc.generate_ac(session_key(card, atc), arqc.ac_input(icc_values(amount_minor, atc)))


def icc_data(card: SimCardProfile, amount_minor: int, *, atc: int = 1, tamper: bool = False) -> bytes:
    """Field 55 with an ARQC computed from the card's issuer master key (option A, common session key)."""
    cryptogram = arqc_for(card, amount_minor, atc)
    if tamper:
        cryptogram = bytes([cryptogram[0] ^ 1]) + cryptogram[1:]
    objects = [tlv.Tlv(0x9F26, cryptogram), tlv.Tlv(0x9F27, b"\x80")]
    objects += [tlv.Tlv(tag, value) for tag, value in icc_values(amount_minor, atc).items()]
    return tlv.encode(objects)


@pytest.fixture
def pinpad() -> pin.DukptPinEncryptor:
    return pin.DukptPinEncryptor("aes", pin.derive_initial_key("aes", BDK, AES_KSN), AES_KSN,
                                 random_bytes=bytes)


def started(security: AcquirerSecurity | None = None) -> Iterator[AcquirerSim]:
    """A running AcquirerSim knowing the whole real catalogue (with ``security``: mutual TLS, MACs, sign-on)."""
    sim = AcquirerSim(bdk=BDK, pin_scheme="aes", today=lambda: TODAY, security=security)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def acquirer() -> Iterator[AcquirerSim]:
    yield from started()


@pytest.fixture
def security(tmp_path: Path) -> AcquirerSecurity:
    """The host's keys and TLS identity for ``SECURE_TID`` (modules of the secure link override ``acquirer``
    with ``started(security)``)."""
    return AcquirerSecurity.create(tmp_path / "host", SECURE_TID)
