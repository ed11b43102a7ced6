"""The simulated card applet on its own: catalogue, ATR, status words, GET DATA, VERIFY, T=0 transport,
ATC."""

from __future__ import annotations

import pytest

from emv import apdu, tlv
from emv.apdu import CryptogramType
from emv.crypto import arqc
from sim.devices.card import CardApplet
from sim.devices.cards import BY_PAN, CATALOGUE, DEFAULT_CARD, luhn_valid


def sw(answer: bytes) -> str:
    return answer[-2:].hex().upper()


def test_catalogue_has_the_required_cards() -> None:
    required = {"unionpay-debit", "visa-credit", "mastercard-debit", "card-declines", "expired", "no-pse"}
    assert required <= CATALOGUE.keys() and DEFAULT_CARD == "unionpay-debit"
    assert CATALOGUE["unionpay-debit"].pin == "1234" and CATALOGUE["mastercard-debit"].pin == "4321"
    for profile in CATALOGUE.values():
        assert luhn_valid(profile.pan), profile.key
        assert len(profile.issuer_master_key) == 16
        assert BY_PAN[profile.pan] is profile
        shown = repr(profile)
        assert profile.pan not in shown and "pin=" not in shown and "issuer_master_key=" not in shown


@pytest.mark.parametrize(("pan", "valid"), [("4761739001010010", True), ("4761739001010011", False),
                                            ("79927398713", True), ("12a4", False)])
def test_luhn(pan: str, valid: bool) -> None:
    assert luhn_valid(pan) is valid


def test_atr() -> None:
    t1 = CardApplet(CATALOGUE["unionpay-debit"]).atr
    assert t1[:4] == bytes.fromhex("3B878001") and t1[4:11] == b"SIMCARD"
    check = 0
    for b in t1[1:]:
        check ^= b
    assert check == 0  # TCK makes the XOR of T0..TCK zero (ISO/IEC 7816-3 §8.2.5)
    assert CardApplet(CATALOGUE["mastercard-debit"]).atr == bytes.fromhex("3B670000") + b"SIMCARD"


def selected(key: str = "unionpay-debit") -> CardApplet:
    card = CardApplet(CATALOGUE[key])
    assert sw(card.process(apdu.select(CATALOGUE[key].aid))) == "9000"
    return card


@pytest.mark.parametrize(("command", "expected"), [
    (apdu.select(bytes.fromhex("A0000000041010")), "6A82"),  # not on this card
    (bytes.fromhex("00A40C0007A0000000031010"), "6A86"),  # wrong P1
    (apdu.read_record(1, 1), "6985"),  # nothing selected
    (apdu.get_processing_options(b""), "6985"),
    (apdu.generate_ac(CryptogramType.ARQC, bytes(33)), "6985"),
    (bytes.fromhex("00FF000000"), "6D00"),
    (bytes.fromhex("80A4040000"), "6E00"),  # SELECT with a proprietary class
    (apdu.internal_authenticate(bytes(4)), "6D00"),  # no DDA
    (bytes.fromhex("00A4"), "6700"),
    (apdu.get_data(0x9F4F), "6A88"),
])
def test_error_status_words(command: bytes, expected: str) -> None:
    assert sw(CardApplet(CATALOGUE["unionpay-debit"]).process(command)) == expected


def test_no_pse_card_has_no_pse() -> None:
    assert sw(CardApplet(CATALOGUE["no-pse"]).process(apdu.select(apdu.PSE))) == "6A82"


def test_records_and_gpo_checks() -> None:
    card = selected()
    assert sw(card.process(apdu.get_processing_options(b""))) == "6700"  # the PDOL asks for 11 bytes
    assert sw(card.process(apdu.get_processing_options(bytes(11)))) == "9000"
    assert sw(card.process(apdu.get_processing_options(bytes(11)))) == "6985"  # only once per selection
    assert sw(card.process(apdu.read_record(3, 1))) == "6A83"
    record = tlv.decode(card.process(apdu.read_record(1, 2))[:-2])
    assert tlv.first(record, 0x5A) == bytes.fromhex(CATALOGUE["unionpay-debit"].pan)
    assert sw(card.process(apdu.generate_ac(CryptogramType.ARQC, bytes(32)))) == "6700"  # CDOL1 is 33 bytes


def test_get_data_and_atc_across_transactions() -> None:
    card = selected()
    assert card.process(apdu.get_data(0x9F36)) == bytes.fromhex("9F360200009000")
    assert card.process(apdu.get_data(0x9F17)) == bytes.fromhex("9F1701039000")
    for expected_atc in (1, 2):
        card.process(apdu.select(CATALOGUE["unionpay-debit"].aid))
        card.process(apdu.get_processing_options(bytes(11)))
        answer = card.process(apdu.generate_ac(CryptogramType.ARQC, bytes(33)))
        values = tlv.flatten(tlv.decode(answer[:-2]))
        assert values[0x9F36] == expected_atc.to_bytes(2, "big")
        assert values[0x9F27] == b"\x80"
        assert arqc.cvr_from_iad(values[0x9F10]) == bytes.fromhex("A000000000")  # 2nd AC not yet, ARQC first
    assert card.process(apdu.get_data(0x9F36)) == bytes.fromhex("9F360200029000")


def test_first_ac_is_a_real_arqc() -> None:
    profile = CATALOGUE["unionpay-debit"]
    card = selected()
    card.process(apdu.get_processing_options(bytes(11)))
    cdol1 = bytes.fromhex("000000012345" "000000000000" "0156" "8000048000" "0156" "260501" "00" "A1B2C3D4"
                          "22" "420300")
    values = tlv.flatten(tlv.decode(card.process(apdu.generate_ac(CryptogramType.ARQC, cdol1))[:-2]))
    terminal = {0x9F02: cdol1[0:6], 0x9F03: cdol1[6:12], 0x9F1A: cdol1[12:14], 0x95: cdol1[14:19],
                0x5F2A: cdol1[19:21], 0x9A: cdol1[21:24], 0x9C: cdol1[24:25], 0x9F37: cdol1[25:29]}
    icc_mk = arqc.derive_icc_master_key(profile.issuer_master_key, profile.pan, profile.psn)
    key = arqc.derive_session_key(icc_mk, values[0x9F36])
    inputs = {**terminal, 0x82: bytes.fromhex("1800"), 0x9F36: values[0x9F36], 0x9F10: values[0x9F10]}
    assert values[0x9F26] == arqc.generate_ac(key, arqc.ac_input(inputs))


def test_verify_plaintext_pin_counts_down() -> None:
    card = selected()
    wrong, right = bytes.fromhex("249999FFFFFFFFFF"), bytes.fromhex("241234FFFFFFFFFF")
    assert [sw(card.process(apdu.verify(wrong))) for _ in range(2)] == ["63C2", "63C1"]
    assert sw(card.process(apdu.verify(right))) == "9000" and card.pin_tries == 3
    assert [sw(card.process(apdu.verify(wrong))) for _ in range(4)] == ["63C2", "63C1", "63C0", "6983"]
    assert sw(card.process(apdu.verify(right))) == "6983"
    assert sw(selected().process(apdu.verify(bytes(8), enciphered=True))) == "6A81"  # no ICC key on this card


def test_get_challenge_uses_the_injected_random() -> None:
    card = CardApplet(CATALOGUE["unionpay-debit"], random_bytes=lambda n: b"\x5a" * n)
    assert card.process(apdu.get_challenge()) == b"\x5a" * 8 + b"\x90\x00"


def test_t0_card_transport() -> None:
    card = CardApplet(CATALOGUE["mastercard-debit"])
    assert card.process(apdu.get_response(5)) == bytes.fromhex("6985")  # nothing waiting
    first = card.process(apdu.select(apdu.PSE))
    assert first[0] == 0x61
    total = first[1]
    head = card.process(apdu.get_response(10))  # ask for less: the rest stays waiting
    assert head[-2:] == bytes([0x61, total - 10])
    assert card.process(apdu.get_response(total))[-2:] == bytes([0x6C, total - 10])  # too much: exact length
    tail = card.process(apdu.get_response(total - 10))
    assert tail[-2:] == b"\x90\x00"
    fci = head[:-2] + tail[:-2]
    assert tlv.first(tlv.decode(fci), 0x84) == apdu.PSE
    wrong_le = card.process(apdu.read_record(1, 1))
    assert wrong_le[0] == 0x6C
    assert card.process(apdu.with_le(apdu.read_record(1, 1), wrong_le[1]))[-2:] == b"\x90\x00"
