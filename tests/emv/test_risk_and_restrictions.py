"""Velocity checking, usage control by transaction type, default action when unable to go online, CID
'service not allowed', and the static-data rules of Book 3 §10.3."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from emv.actions import SendApdu
from emv.authentication import StaticData
from emv.config import AidConfig
from emv.risk import manage_risk
from emv.tlv import Tlv
from emv.tvr import BitField, TsiBit, TvrBit, bits_set, check_restrictions
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, drive, issuer, transaction

AID = AidConfig(bytes.fromhex("A0000000031010"), "Visa", floor_limit_minor=10_000)


def _velocity(card: dict[int, bytes], answers: dict[int, bytes | None]) -> list[str]:
    tvr, tsi = BitField(TvrBit, 5), BitField(TsiBit, 2)
    step = manage_risk(500, AID, card, 50, tvr, tsi)
    try:
        action = next(step)
        while True:
            assert isinstance(action, SendApdu)
            tag = int.from_bytes(action.apdu[2:4], "big")
            value = answers.get(tag)
            action = step.send(bytes(Tlv(tag, value)) + b"\x90\x00" if value is not None else b"\x6a\x88")
    except StopIteration:
        pass
    return bits_set(TvrBit, bytes(tvr))


@pytest.mark.parametrize(("atc", "last_online", "expected"), [
    (5, 3, []),
    (9, 3, ["LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED"]),
    (20, 3, ["LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED", "UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED"]),
    (2, 0, ["NEW_CARD"]),
    (2, None, ["LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED", "UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED"]),
])
def test_velocity_checking(atc, last_online, expected):
    card = {0x9F14: b"\x05", 0x9F23: b"\x0a"}
    answers = {0x9F36: atc.to_bytes(2, "big"), 0x9F13: None if last_online is None else last_online.to_bytes(2, "big")}
    assert _velocity(card, answers) == expected


def test_velocity_checking_names_the_second_get_data_first():
    """GET DATA 9F13 follows GET DATA 9F36 whatever it answers: a reader may run both in one exchange."""
    step = manage_risk(500, AID, {0x9F14: b"\x05", 0x9F23: b"\x0a"}, 50, BitField(TvrBit, 5), BitField(TsiBit, 2))
    first = next(step)
    assert isinstance(first, SendApdu) and first.apdu[2:4] == b"\x9f\x36"
    second = step.send(b"\x6a\x88")
    assert isinstance(second, SendApdu) and first.then == (second.apdu,) and second.apdu[2:4] == b"\x9f\x13"
    assert second.then == ()


def test_no_velocity_check_without_lcol_and_ucol():
    assert _velocity({}, {}) == []


CARD = {0x5F24: bytes.fromhex("301231"), 0x5F28: b"\x01\x56"}


@pytest.mark.parametrize(("auc", "kind", "domestic", "atm", "allowed"), [
    ("FF00", 0x00, True, False, True),
    ("2100", 0x00, True, False, True),       # domestic goods at a non-ATM
    ("2100", 0x00, False, False, False),     # international: not allowed
    ("8100", 0x01, True, False, True),       # domestic cash
    ("2100", 0x01, True, False, False),
    ("A180", 0x09, True, False, True),       # purchase with domestic cashback
    ("A100", 0x09, True, False, False),
    ("FD00", 0x00, True, True, False),       # ATM bit clear at an ATM
])
def test_usage_control_by_transaction_type(auc, kind, domestic, atm, allowed):
    tvr = BitField(TvrBit, 5)
    check_restrictions({**CARD, 0x9F07: bytes.fromhex(auc)}, today=dt.date(2026, 1, 1), app_versions=(),
                       country_code=b"\x01\x56" if domestic else b"\x03\x44", tvr=tvr, transaction_type=kind,
                       atm=atm)
    assert (TvrBit.SERVICE_NOT_ALLOWED not in tvr) == allowed


def test_unable_to_go_online_follows_default_action_only_when_configured():
    profile = dataclasses.replace(CATALOGUE["cda-good"], key="default-action")
    no_host = issuer(profile, None)
    strict = drive(transaction(CONFIG), CardApplet(profile).process, host=no_host)
    assert strict.finished.outcome.value == "declined" and "Z3" in strict.finished.reason
    lenient = dataclasses.replace(CONFIG, approve_offline_when_unable_online=True,
                                  aids=tuple(dataclasses.replace(a, tac_default=bytes(5)) for a in CONFIG.aids))
    # the card's IAC-Default FC70BC9800 still matches 'online PIN entered' (B3b3): AAC
    assert drive(transaction(lenient), CardApplet(profile).process, host=no_host).finished.outcome.value == "declined"
    # no CVM and under the floor limit: TVR all zero, the card still wants to go online (ARQC), host is down
    relaxed = dataclasses.replace(profile, cvm_list=bytes.fromhex("00000000000000001F00"))
    under_floor = dataclasses.replace(lenient, aids=tuple(dataclasses.replace(a, floor_limit_minor=50_000)
                                                          for a in lenient.aids))
    run = drive(transaction(under_floor), CardApplet(relaxed).process, host=no_host)
    assert run.online is not None and run.finished.receipt["tvr"] == "0000000000"
    assert run.finished.outcome.value == "approved" and "Y3" in run.finished.reason


def test_cid_service_not_allowed_declines():
    card = CardApplet(CATALOGUE["unionpay-debit"])

    def answer(apdu: bytes) -> bytes:
        response = card.process(apdu)
        if apdu[1] == 0xAE and b"\x9f\x27\x01" in response:
            at = response.index(b"\x9f\x27\x01") + 3
            response = response[:at] + bytes([response[at] | 0x01]) + response[at + 1:]
        return response

    run = drive(transaction(CONFIG), answer, host=issuer(CATALOGUE["unionpay-debit"], "00"))
    assert run.finished.outcome.value == "declined" and "service not allowed" in run.finished.reason


def test_static_data_rules():
    static = StaticData()
    static.add_record(1, bytes.fromhex("7003" "5A0112"))
    static.add_record(11, bytes.fromhex("7003" "9F0800"))
    assert bytes(static.data) == bytes.fromhex("5A0112" "70039F0800")  # SFI 11-30: tag and length included
    assert static.with_tag_list({0x9F4A: b"\x82", 0x82: b"\x39\x00"}).endswith(b"\x39\x00")
    assert static.with_tag_list({0x9F4A: b"\x5a"}) is None  # only the AIP may be listed
    static.add_record(2, bytes.fromhex("7103" "5A0112"))
    assert static.broken  # SFI 1-10 record for ODA that is not template 70


def test_tc_hash_with_the_default_tdol_sets_its_tvr_bit():
    import hashlib

    from emv import dol

    profile = CATALOGUE["unionpay-debit"]
    card = CardApplet(profile)

    def with_98(apdu: bytes) -> bytes:  # a card whose CDOL1 also asks for the TC hash value 98
        answer = card.process(apdu)
        old = bytes.fromhex("8C1B")
        if apdu[:2] == b"\x00\xb2" and old in answer:
            cdol = answer[answer.index(old) + 2: answer.index(old) + 2 + 0x1B]
            new = bytes.fromhex("8C1D") + cdol + bytes.fromhex("9814")
            body = answer[2:-2].replace(old + cdol, new)
            return bytes([0x70, len(body)]) + body + answer[-2:]
        return answer

    tdol = bytes.fromhex("9F0206")
    config = dataclasses.replace(CONFIG, aids=tuple(dataclasses.replace(a, default_tdol=tdol) for a in CONFIG.aids))
    tx = transaction(config)
    run = drive(tx, with_98, host=issuer(profile, "00"))
    assert "DEFAULT_TDOL_USED" in bits_set(TvrBit, bytes.fromhex(run.finished.receipt["tvr"]))
    expected = hashlib.sha1(dol.build(dol.parse(tdol), {0x9F02: tx.data[0x9F02]})).digest()
    assert run.apdus("GENERATE AC (first")[0][-21:-1] == expected  # last CDOL1 value, before Le
