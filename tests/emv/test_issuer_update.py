"""Issuer update processing after an online tap (Book C-3 §5.9): Entry Point and kernel 3 against the simulated
QuickPass card that supports it, with the simulated issuer's real ARPC and secure-messaging script."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emv import issuer_update, kernel_c3, tlv
from emv.actions import GoOnline, SendApdu
from emv.contactless import Combination, Message, ReaderLimits, Status
from emv.entry_point import ContactlessFinished, EntryPoint, FieldOff, PollCards, ShowUi
from pos_errors import LocalProtocolError
from sim.backends import issuer
from sim.devices.cards import CATALOGUE
from sim.devices.contactless_cards import ContactlessCard, tap_applet

TODAY = dt.date(2026, 12, 3)
COMBOS = (Combination(bytes.fromhex("A000000333010101"), 7,
                      ReaderLimits(contactless_limit=100000, floor_limit=0, cvm_required_limit=100000)),)
Host = Callable[[dict[int, bytes], str | None], bytes]


def _genuine(values: dict[int, bytes], psn: str | None) -> bytes:
    return issuer.response_icc_data(CATALOGUE["issuer-script"], values[0x9F36], values[0x9F26], "00", psn)


def tap(card: ContactlessCard, *, host: Host = _genuine, second: ContactlessCard | None = None,
        present_again: bool = True, lose_at: str | None = None) -> tuple[ContactlessFinished, list[str], list[ShowUi]]:
    """One tap through Entry Point: the host approves with ``host``'s field 55; ``second`` is the card presented
    the second time (default: the same); ``lose_at``: the card leaves when that command is sent."""
    ep = EntryPoint(COMBOS, amount_minor=1700, kernels={7: kernel_c3.run},
                    terminal=kernel_c3.terminal_data(amount_minor=1700, unpredictable_number=b"\x11\x22\x33\x44",
                                                     today=TODAY), today=TODAY)
    sent: list[str] = []
    shown: list[ShowUi] = []
    current, online = card, False
    action = ep.start()
    while not isinstance(action, ContactlessFinished):
        if isinstance(action, PollCards):
            if action.again:
                current = second or card
            action = ep.on_cards(1 if present_again or not action.again else 0)
        elif isinstance(action, SendApdu):
            sent.append(action.purpose)
            if lose_at is not None and action.purpose.startswith(lose_at):
                action = ep.on_card_lost()
            else:
                action = ep.on_response(current.process(action.apdu))
        elif isinstance(action, ShowUi):
            shown.append(action)
            action = ep.on_ack()
        elif isinstance(action, FieldOff):
            action = ep.on_ack()
        elif isinstance(action, GoOnline):
            assert not online
            online = True
            values = tlv.flatten(tlv.decode(action.icc_data))
            action = ep.on_online_result("00", host(values, action.pan_sequence))
        else:
            raise AssertionError(action)
    return action, sent, shown


def record(done: ContactlessFinished) -> dict[int, str]:
    return {t: v.hex().upper() for t, v in done.outcome.data_record.items() if t in (0x95, 0x9B, 0x9F5B, 0x9F6C)}


def test_second_tap_delivers_arpc_and_script() -> None:
    card = tap_applet("quickpass-update")
    assert isinstance(card, ContactlessCard)
    done, sent, shown = tap(card)
    assert done.outcome.status is Status.APPROVED and "issuer update done" in done.outcome.reason
    assert sent[-3:] == ["SELECT AID (issuer update)", "EXTERNAL AUTHENTICATE", "issuer script 00000001 command 1"]
    assert Message.PRESENT_CARD_AGAIN in [s.request.message for s in shown]
    # CTQ byte 2 b7: the card said it supports issuer update; TSI: issuer authentication and scripts performed
    assert record(done) == {0x9F6C: "0040", 0x95: "0000000000", 0x9B: "1400", 0x9F5B: "2000000001"}
    assert card.issuer_authenticated is True and card.stored == {0x9F14: b"\x05"}


def test_forged_arpc_is_refused_by_the_card_and_shows_in_the_tvr() -> None:
    def forged(values: dict[int, bytes], psn: str | None) -> bytes:
        data = bytearray(_genuine(values, psn))
        data[2] ^= 0x01  # first ARPC byte (91 0A ...)
        return bytes(data)

    card = tap_applet("quickpass-update")
    assert isinstance(card, ContactlessCard)
    done, _, _ = tap(card, host=forged)
    assert done.outcome.status is Status.APPROVED  # the host approved: the update does not undo it
    assert record(done)[0x95] == "0000000040" and record(done)[0x9B] == "1400"
    assert card.issuer_authenticated is False


def test_forged_script_mac_fails_the_script_after() -> None:
    def forged(values: dict[int, bytes], psn: str | None) -> bytes:
        data = bytearray(_genuine(values, psn))
        data[-1] ^= 0x01  # last MAC byte of the script command
        return bytes(data)

    card = tap_applet("quickpass-update")
    assert isinstance(card, ContactlessCard)
    done, _, _ = tap(card, host=forged)
    assert record(done)[0x95] == "0000000010" and record(done)[0x9F5B] == "1100000001"
    assert card.stored == {}


def test_card_not_presented_again_keeps_the_host_decision() -> None:
    card = tap_applet("quickpass-update")
    assert isinstance(card, ContactlessCard)
    done, sent, _ = tap(card, present_again=False)
    assert done.outcome.status is Status.APPROVED and "not presented again" in done.outcome.reason
    assert "EXTERNAL AUTHENTICATE" not in sent and 0x9B not in done.outcome.data_record


def test_card_lost_during_the_update_keeps_the_host_decision() -> None:
    card = tap_applet("quickpass-update")
    assert isinstance(card, ContactlessCard)
    done, _, _ = tap(card, lose_at="EXTERNAL AUTHENTICATE")
    assert done.outcome.status is Status.APPROVED and "interrupted" in done.outcome.reason
    assert card.issuer_authenticated is None


def test_another_card_presented_second_is_not_authenticated() -> None:
    card, other = tap_applet("quickpass-update"), tap_applet("quickpass-debit")
    assert isinstance(card, ContactlessCard) and isinstance(other, ContactlessCard)
    done, _, _ = tap(card, second=other)
    assert done.outcome.status is Status.APPROVED
    # the other card takes neither the ARPC nor the script (6D00): both failures show
    assert record(done)[0x95] == "0000000050" and record(done)[0x9F5B] == "1100000001"


def test_card_without_issuer_update_is_not_asked_again() -> None:
    card = tap_applet("quickpass-debit")
    assert isinstance(card, ContactlessCard)
    done, sent, shown = tap(card)
    assert done.outcome.status is Status.APPROVED and "issuer update" not in done.outcome.reason
    assert "SELECT AID (issuer update)" not in sent
    assert Message.PRESENT_CARD_AGAIN not in [s.request.message for s in shown]


@pytest.mark.parametrize(("data", "expected"), [
    ("910A" + "00" * 10, True), ("7203" + "860100", True), ("7103" + "860100", True), ("8A023030", False),
    ("", False), ("91", False), ("FF", False),
])
def test_wanted_only_for_91_71_72(data: str, expected: bool) -> None:
    assert issuer_update.wanted(bytes.fromhex(data)) is expected


@pytest.mark.parametrize(("ttq", "ctq", "expected"), [
    ("3600C000", "0040", True), ("36004000", "0040", False), ("3600C000", "0000", False), ("3600C0", "0040", False),
    ("3600C000", "", False),
])
def test_supported_needs_reader_and_card(ttq: str, ctq: str, expected: bool) -> None:
    assert issuer_update.supported(bytes.fromhex(ttq), bytes.fromhex(ctq)) is expected


def test_card_lost_outside_the_second_presentation_is_misuse() -> None:
    ep = EntryPoint(COMBOS, amount_minor=1700, kernels={7: kernel_c3.run})
    ep.start()
    with pytest.raises(LocalProtocolError):
        ep.on_card_lost()


@given(st.binary(max_size=300))
@settings(max_examples=150, deadline=None)
def test_any_host_field_55_ends_with_a_tvr_and_tsi_never_an_exception(data: bytes) -> None:
    """A forged or garbled 0210 field 55: the update sends what parses, the card answers 9000 or 6A88."""
    sent: list[bytes] = []
    step = issuer_update.run(data, {0x95: bytes(5)})
    try:
        action = next(step)
        while True:
            assert isinstance(action, SendApdu)
            sent.append(action.apdu)
            action = step.send(b"\x90\x00" if len(sent) % 2 else b"\x6a\x88")
    except StopIteration as stop:
        out = stop.value
    assert len(out[0x95]) == 5 and len(out[0x9B]) == 2
    assert issuer_update.wanted(data) or not sent
