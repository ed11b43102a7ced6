"""Kernel 2 subset (Mastercard EMV mode, CDA over GENERATE AC) through Entry Point, against the contact card
applet behind a PPSE. The issuer re-computes the ARQC; CDA is verified by the kernel itself."""

from __future__ import annotations

import datetime as dt

import pytest

from emv import kernel_c2, kernel_c3, tlv
from emv.actions import GoOnline, RequestOnlinePin, SendApdu
from emv.contactless import Combination, Cvm, ReaderLimits, Status
from emv.crypto import arqc
from emv.entry_point import ContactlessFinished, EntryPoint, PollCards
from sim.backends.issuer import ac_session_key
from sim.backends.pki import SIM_TRUST
from sim.devices.cards import SimCardProfile
from sim.devices.contactless_cards import MASTERCARD_TAP, EmvModeTapCard

TODAY = dt.date(2026, 5, 1)
UN = bytes.fromhex("0BADCAFE")
LIMITS = ReaderLimits(contactless_limit=100000, floor_limit=5000, cvm_required_limit=30000)
COMBINATIONS = (Combination(bytes.fromhex("A000000004"), 2, LIMITS),)


def tap(profile: SimCardProfile, amount: int) -> tuple[ContactlessFinished, list[GoOnline], list[bytes], bool]:
    card = EmvModeTapCard(profile)
    terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=UN, today=TODAY)
    ep = EntryPoint(COMBINATIONS, amount_minor=amount, kernels={2: kernel_c2.run}, terminal=terminal,
                    capks=SIM_TRUST, today=TODAY)
    online: list[GoOnline] = []
    apdus: list[bytes] = []
    pin = False
    action = ep.start()
    for _ in range(100):
        if isinstance(action, ContactlessFinished):
            return action, online, apdus, pin
        if isinstance(action, PollCards):
            action = ep.on_cards(1)
        elif isinstance(action, SendApdu):
            apdus.append(action.apdu)
            action = ep.on_response(card.process(action.apdu))
        elif isinstance(action, RequestOnlinePin):
            pin = True
            action = ep.on_pin("entered")
        elif isinstance(action, GoOnline):
            online.append(action)
            values = tlv.flatten(tlv.decode(action.icc_data))
            expected = arqc.generate_ac(ac_session_key(profile, values[0x9F36]), arqc.ac_input(values))
            action = ep.on_online_result("00" if expected == values[0x9F26] else "05")
        else:
            action = ep.on_ack()
    raise AssertionError("did not finish")


def test_offline_approval_with_a_verified_cda_signature() -> None:
    done, online, apdus, _ = tap(MASTERCARD_TAP["mastercard-cda"], 2000)
    assert done.outcome.status is Status.APPROVED and online == [] and done.kernel_id == 2
    generate_ac = [a for a in apdus if a[:2] == b"\x80\xae"]
    assert len(generate_ac) == 1 and generate_ac[0][2] == 0x50  # TC with CDA requested (P1 b5)
    assert done.outcome.data_record[0x9F27] == b"\x40"


def test_online_with_cda_and_online_pin_over_the_cvm_limit() -> None:
    done, online, apdus, pin = tap(MASTERCARD_TAP["mastercard-cda"], 50000)
    assert pin and done.outcome.cvm is Cvm.ONLINE_PIN  # first CVM List rule: online PIN
    assert done.outcome.status is Status.APPROVED and done.host_response_code == "00"  # the ARQC verified
    assert [a for a in apdus if a[:2] == b"\x80\xae"][0][2] == 0x90  # ARQC with CDA


def test_broken_issuer_certificate_never_approves_offline() -> None:
    done, online, apdus, _ = tap(MASTERCARD_TAP["mastercard-cda-broken"], 2000)
    generate_ac = [a for a in apdus if a[:2] == b"\x80\xae"]
    assert generate_ac[0][2] == 0x80  # no ICC key: ARQC, no CDA
    assert len(online) == 1


def test_no_cvm_under_the_limit_and_cvm_list_order() -> None:
    assert kernel_c2.cvm_for(bytes.fromhex("3900"), bytes.fromhex("00000000" "00000000" "1E03" "0203"),
                             over_limit=True) is Cvm.SIGNATURE
    assert kernel_c2.cvm_for(bytes.fromhex("3B00"), None, over_limit=True) is Cvm.CONFIRMATION_CODE_VERIFIED
    assert kernel_c2.cvm_for(bytes.fromhex("3900"), None, over_limit=False) is Cvm.NO_CVM


def test_tampered_cda_signature_declines(monkeypatch: pytest.MonkeyPatch) -> None:
    original = EmvModeTapCard.process

    def flip(self: EmvModeTapCard, command: bytes) -> bytes:
        answer = original(self, command)
        if command[:2] != b"\x80\xae":
            return answer
        at = answer.index(bytes.fromhex("9F4B")) + 10  # inside the signature
        return answer[:at] + bytes([answer[at] ^ 0x01]) + answer[at + 1:]

    monkeypatch.setattr(EmvModeTapCard, "process", flip)
    done, online, _, _ = tap(MASTERCARD_TAP["mastercard-cda"], 2000)
    assert done.outcome.status is Status.DECLINED and online == []
    assert done.outcome.reason.startswith("CDA failed")
