"""The kernel facing a misbehaving card: wrong status words, missing or duplicated data, broken cryptogram
responses, garbage anywhere. A transaction always finishes, and once the host approved it never finishes as
anything the caller would not reverse."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emv import tlv
from emv.actions import Finished, GoOnline, KernelReason, Outcome, RequestOnlinePin, SendApdu
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import drive, issuer, transaction

Card = Callable[[bytes], bytes]
PAN = CATALOGUE["unionpay-debit"].pan


def intercept(card: Card, header: str, answer: Callable[[bytes], bytes], *, nth: int = 1) -> Card:
    """``card``, except that ``answer`` rewrites the reply to the ``nth`` command starting with ``header``."""
    seen = 0

    def process(command: bytes) -> bytes:
        nonlocal seen
        real = card(command)
        if command.hex().upper().startswith(header):
            seen += 1
            if seen == nth:
                return answer(real)
        return real

    return process


def run(card: Card, code: str | None = "00", key: str = "unionpay-debit") -> Finished:
    return drive(transaction(), card, host=issuer(CATALOGUE[key], code)).finished


def applet(key: str = "unionpay-debit") -> Card:
    return CardApplet(CATALOGUE[key]).process


def without(tag: int) -> Callable[[bytes], bytes]:
    def answer(real: bytes) -> bytes:
        record = tlv.decode(real[:-2])[0]
        return bytes(tlv.Tlv.template(0x70, *(o for o in record.children if o.tag != tag))) + b"\x90\x00"
    return answer


@pytest.mark.parametrize(("header", "nth", "sw", "code", "reason"), [
    ("00A40400", 1, "6A81", KernelReason.CARD_BLOCKED, "card blocked or SELECT not supported (6A81)"),
    ("80A8", 1, "6D00", KernelReason.CARD_ERROR,
     "GET PROCESSING OPTIONS failed: 6D00 instruction code not supported or invalid"),
    ("00B2011400", 1, "6A83", KernelReason.CARD_ERROR, "READ RECORD 2.1 failed: 6A83 record not found"),
    ("80AE", 1, "6F00", KernelReason.CARD_ERROR, "first GENERATE AC failed: 6F00 no precise diagnosis"),
])
def test_unexpected_status_words_terminate(header: str, nth: int, sw: str, code: KernelReason, reason: str) -> None:
    done = run(intercept(applet(), header, lambda _: bytes.fromhex(sw), nth=nth))
    assert (done.outcome, done.code, done.reason) == (Outcome.TERMINATED, code, reason)


@pytest.mark.parametrize(("record", "tag"), [("00B2020C", 0x5A), ("00B2020C", 0x5F24), ("00B20114", 0x8C),
                                             ("00B20114", 0x8D)])
def test_missing_mandatory_data_terminates(record: str, tag: int) -> None:
    nth = 2 if tag in (0x5A, 0x5F24) else 1  # 1.2 is asked twice: PSE directory (6A83) first, then the app
    done = run(intercept(applet(), record, without(tag), nth=nth))
    assert (done.outcome, done.code) == (Outcome.TERMINATED, KernelReason.CARD_DATA_MISSING)
    assert done.reason == f"mandatory card data missing: {tag:X}"


def test_data_object_in_two_records_terminates() -> None:
    def add_pan_again(real: bytes) -> bytes:
        record = tlv.decode(real[:-2])[0]
        extra = tlv.Tlv(0x5A, bytes.fromhex(PAN))
        return bytes(tlv.Tlv.template(0x70, *record.children, extra)) + b"\x90\x00"

    done = run(intercept(applet(), "00B20114", add_pan_again))
    assert (done.outcome, done.reason) == (Outcome.TERMINATED, "card data object 5A appears in two records")
    assert done.code is KernelReason.CARD_DATA_DUPLICATED
    assert PAN not in repr(done)


def test_card_answering_above_the_request_terminates() -> None:
    def tc_instead_of_arqc(real: bytes) -> bytes:
        return real.replace(bytes.fromhex("9F270180"), bytes.fromhex("9F270140"), 1)

    done = run(intercept(applet(), "80AE80", tc_instead_of_arqc))
    assert (done.outcome, done.reason) == (Outcome.TERMINATED, "card returned TC when ARQC was requested")
    assert done.code is KernelReason.CARD_ERROR


@pytest.mark.parametrize("broken", [bytes.fromhex("6F00"), bytes.fromhex("7702"), bytes.fromhex("9000"),
                                    bytes.fromhex("77039F2701809000")])
def test_failure_after_host_approval_asks_for_a_reversal(broken: bytes) -> None:
    done = run(intercept(applet(), "80AE40", lambda _: broken))
    assert done.outcome is Outcome.DECLINED_AFTER_ONLINE_APPROVAL
    assert done.reason.startswith("host approved but the transaction failed at the card")


def test_failure_after_host_decline_is_only_terminated() -> None:
    done = run(intercept(applet(), "80AE00", lambda _: bytes.fromhex("6F00")), code="05")
    assert done.outcome is Outcome.TERMINATED


def test_malformed_pse_directory_falls_back_to_the_aid_list() -> None:
    done = run(intercept(applet(), "00B2010C", lambda _: bytes.fromhex("7005610342019000")))
    assert done.outcome is Outcome.APPROVED


def test_final_select_refused_moves_to_the_next_candidate() -> None:
    card = intercept(applet("gpo-6985"), "00A4040008A000000333010102", lambda _: bytes.fromhex("6A82"))
    assert run(card, key="gpo-6985").outcome is Outcome.APPROVED


def test_a_pdol_too_long_for_a_command_terminates() -> None:
    def huge_pdol(real: bytes) -> bytes:
        fci = tlv.Tlv.template(0x6F, tlv.Tlv(0x84, CATALOGUE["unionpay-debit"].aid), tlv.Tlv.template(
            0xA5, tlv.Tlv(0x50, b"UnionPay Debit"), tlv.Tlv(0x9F38, bytes.fromhex("9F027F9F037F9F047F"))))
        return bytes(fci) + b"\x90\x00"

    done = run(intercept(applet(), "00A4040008", huge_pdol))
    assert done.outcome is Outcome.TERMINATED
    assert done.reason == "malformed data from the card: PDOL data does not fit a short APDU"
    assert done.code is KernelReason.CARD_DATA_MALFORMED


def test_endless_61xx_terminates() -> None:
    done = run(lambda command: bytes.fromhex("6101"))
    assert done.outcome is Outcome.TERMINATED
    assert done.reason == "card kept answering 6101 to SELECT PSE" and done.code is KernelReason.CARD_ERROR


def test_garbage_host_issuer_data_is_ignored() -> None:
    tx = transaction()
    result = drive(tx, applet(), host=lambda a: ("00", bytes.fromhex("9108AABB")))
    assert result.finished.outcome is Outcome.APPROVED  # no usable 91: the card takes the host's word
    assert 0x91 not in tx.data


@given(st.integers(0, 14), st.binary(max_size=40))
@settings(max_examples=200, deadline=None)
def test_garbage_at_any_step_always_finishes(step: int, garbage: bytes) -> None:
    card = CardApplet(CATALOGUE["unionpay-debit"])
    count = 0

    def process(command: bytes) -> bytes:
        nonlocal count
        count += 1
        return garbage if count == step + 1 else card.process(command)

    tx = transaction()
    action = tx.start()
    approved = False
    for _ in range(100):
        if isinstance(action, SendApdu):
            action = tx.on_response(process(action.apdu))
        elif isinstance(action, RequestOnlinePin):
            action = tx.on_pin("entered")
        elif isinstance(action, GoOnline):
            code, data = issuer(CATALOGUE["unionpay-debit"], "00")(action)
            approved = True
            action = tx.on_online_result(code, data)
        else:
            break
    assert isinstance(action, Finished)
    if approved:
        assert action.outcome in (Outcome.APPROVED, Outcome.DECLINED_AFTER_ONLINE_APPROVAL)
    assert PAN not in repr(action) and PAN[6:12] not in repr(action)
