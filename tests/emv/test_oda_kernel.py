"""Offline data authentication and terminal risk management inside the kernel, against simulated cards that
sign with their own PKI (sim.backends.pki: CA → issuer → ICC), plus the simulator CA's place in the CAPK table."""

from __future__ import annotations

import dataclasses

import pytest

from emv import tlv
from emv.config import STANDARD_AIDS
from emv.tvr import TsiBit, TvrBit, bits_set
from sim.backends import pki
from sim.backends.pki import SIM_CA_INDEX, SIM_CAPKS, SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, UN, drive, issuer, transaction


def run(key: str, config=CONFIG, amount: int = 12345, card_filter=None):
    profile = CATALOGUE[key]
    card = CardApplet(profile, random_bytes=lambda n: bytes(range(1, n + 1)))
    process = card.process if card_filter is None else (lambda apdu: card_filter(apdu, card.process(apdu)))
    return drive(transaction(config, amount), process, host=issuer(profile, "00"))


def test_the_simulator_ca_is_a_test_key_under_every_rid():
    for rid in ("A000000333", "A000000003", "A000000004"):
        capk = SIM_CAPKS[(bytes.fromhex(rid), SIM_CA_INDEX)]
        assert capk.modulus == pki.ca_key().modulus_bytes and capk.test


@pytest.mark.parametrize(("key", "method"), [("sda-good", "SDA"), ("dda-good", "DDA"), ("cda-good", "CDA")])
def test_good_cards_pass_their_method(key, method):
    result = run(key)
    tvr = bytes.fromhex(result.finished.receipt["tvr"])
    assert bits_set(TvrBit, tvr[:1]) == (["SDA_SELECTED"] if method == "SDA" else []), bits_set(TvrBit, tvr)
    assert "ODA_PERFORMED" in bits_set(TsiBit, bytes.fromhex(result.finished.receipt["tsi"]))
    assert result.finished.outcome.value == "approved"
    assert (method == "DDA") == bool(result.apdus("INTERNAL AUTHENTICATE"))
    generate = result.apdus("GENERATE AC")
    assert all(bool(a[2] & 0x10) == (method == "CDA") for a in generate)


def test_dda_signs_the_terminal_unpredictable_number():
    result = run("dda-good")
    assert result.apdus("INTERNAL AUTHENTICATE")[0][5:9] == UN


def test_cda_cryptogram_comes_from_the_signature_and_verifies_at_the_issuer():
    result = run("cda-good")
    field55 = tlv.flatten(tlv.decode(result.online.icc_data))
    assert len(field55[0x9F26]) == 8  # recovered from 9F4B, then the card accepted the issuer's ARPC over it
    assert result.finished.reason == "approved online (00)"


@pytest.mark.parametrize(("key", "bit"), [("sda-tampered", TvrBit.SDA_FAILED),
                                          ("dda-expired-issuer-cert", TvrBit.DDA_FAILED),
                                          ("cda-bad-issuer-cert", TvrBit.CDA_FAILED)])
def test_each_oda_failure_sets_its_tvr_bit_only(key, bit):
    result = run(key)
    tvr = bytes.fromhex(result.finished.receipt["tvr"])
    assert bits_set(TvrBit, tvr[:1]) == [bit.name] + (["SDA_SELECTED"] if bit is TvrBit.SDA_FAILED else [])


def test_a_forged_cda_signature_declines():
    def forge(apdu: bytes, answer: bytes) -> bytes:
        if apdu[1] == 0xAE and b"\x9f\x4b" in answer:
            at = answer.index(b"\x9f\x4b") + 3 + 10
            return answer[:at] + bytes([answer[at] ^ 1]) + answer[at + 1:]
        return answer
    result = run("cda-good", card_filter=forge)
    assert result.finished.outcome.value == "declined"
    assert "CDA_FAILED" in bits_set(TvrBit, bytes.fromhex(result.finished.receipt["tvr"]))
    assert result.online is None


def test_unknown_ca_key_or_revoked_issuer_certificate_fails_oda():
    no_sim_ca = dataclasses.replace(CONFIG, capks={k: v for k, v in SIM_TRUST.items() if k[1] != SIM_CA_INDEX})
    assert "SDA_FAILED" in bits_set(TvrBit, bytes.fromhex(run("sda-good", no_sim_ca).finished.receipt["tvr"]))
    revoked = dataclasses.replace(CONFIG, revoked=frozenset({(bytes.fromhex("A000000333"), SIM_CA_INDEX,
                                                              b"\x00\x00\x01")}))
    assert "DDA_FAILED" in bits_set(TvrBit, bytes.fromhex(run("dda-good", revoked).finished.receipt["tvr"]))


def test_terminal_without_oda_capability_reports_not_performed():
    no_oda = dataclasses.replace(CONFIG, capabilities=bytes.fromhex("E06800"))
    tvr = bytes.fromhex(run("cda-good", no_oda).finished.receipt["tvr"])
    assert bits_set(TvrBit, tvr[:1]) == ["ODA_NOT_PERFORMED"]


def _floor(limit: int, **changes: int):
    return dataclasses.replace(CONFIG, aids=tuple(dataclasses.replace(a, floor_limit_minor=limit, **changes)
                                                  for a in STANDARD_AIDS))


def test_offline_approval_under_the_floor_limit_with_cda():
    result = run("offline-approve", _floor(50_000))
    assert result.finished.outcome.value == "approved" and result.online is None
    assert result.finished.receipt["tvr"] == "0000000000"
    assert result.apdus("GENERATE AC")[0][2] == 0x50  # TC with CDA


def test_random_selection_sends_an_under_floor_amount_online():
    # UN A1B2C3D4 → random number 1..99 = 0xA1B2C3D4 % 99 + 1; target 99 % always selects
    result = run("offline-approve", _floor(50_000, target_percent=99, max_target_percent=99))
    assert "SELECTED_RANDOMLY_FOR_ONLINE" in bits_set(TvrBit, bytes.fromhex(result.finished.receipt["tvr"]))
    assert result.online is not None


def test_exception_file_sets_its_bit():
    listed = dataclasses.replace(CONFIG, exception_file=frozenset({CATALOGUE["unionpay-debit"].pan}))
    tvr = bytes.fromhex(run("unionpay-debit", listed).finished.receipt["tvr"])
    assert "CARD_ON_EXCEPTION_FILE" in bits_set(TvrBit, tvr)
