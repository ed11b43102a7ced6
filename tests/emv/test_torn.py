"""Torn transaction recovery (kernel 2): the card is pulled away while answering GENERATE AC; on the next tap of
the same card for the same amount RECOVER AC brings back the lost answer, so the ATC does not move on twice."""

from __future__ import annotations

import datetime as dt

from emv import kernel_c2, kernel_c3, tlv
from emv.actions import GoOnline, SendApdu
from emv.contactless import Combination, ReaderLimits, Status
from emv.entry_point import ContactlessFinished, EntryPoint, FieldOff, PollCards, ShowUi
from emv.torn import TornLog
from sim.backends.pki import SIM_TRUST
from sim.devices.contactless_cards import tap_applet

TODAY = dt.date(2026, 5, 1)
COMBOS = (Combination(bytes.fromhex("A000000004"), 2, ReaderLimits(floor_limit=5000)),)


class _Pulled(Exception):
    pass


def _tap(card: object, torn: TornLog | None, *, amount: int = 10000, un: bytes = b"\x01\x02\x03\x04",
         tear: bool = False) -> tuple[ContactlessFinished, list[str], GoOnline | None]:
    terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=un, today=TODAY)
    ep = EntryPoint(COMBOS, amount_minor=amount, kernels={2: kernel_c2.run}, terminal=terminal, capks=SIM_TRUST,
                    today=TODAY, torn=torn)
    action, sent, online = ep.start(), [], None
    while not isinstance(action, ContactlessFinished):
        if isinstance(action, PollCards):
            action = ep.on_cards(1)
        elif isinstance(action, SendApdu):
            sent.append(action.purpose)
            answer = card.process(action.apdu)  # type: ignore[attr-defined]
            if tear and action.purpose == "GENERATE AC":
                raise _Pulled  # the card computed its answer; the reader never got it
            action = ep.on_response(answer)
        elif isinstance(action, ShowUi | FieldOff):
            action = ep.on_ack()
        elif isinstance(action, GoOnline):
            online = action
            action = ep.on_online_result("00")
    return action, sent, online


def _atc(online: GoOnline | None) -> str:
    assert online is not None
    return tlv.flatten(tlv.decode(online.icc_data))[0x9F36].hex()


def _torn_then_again(torn: TornLog | None, **again: object) -> tuple[ContactlessFinished, list[str], GoOnline | None]:
    card = tap_applet("mastercard-cda")
    try:
        _tap(card, torn, tear=True)
    except _Pulled:
        pass
    return _tap(card, torn, un=b"\x05\x06\x07\x08", **again)  # type: ignore[arg-type]


def test_the_torn_cryptogram_is_recovered_and_completed() -> None:
    torn = TornLog()
    done, sent, online = _torn_then_again(torn)
    assert "RECOVER AC" in sent and "GENERATE AC" not in sent
    assert done.outcome.status is Status.APPROVED and _atc(online) == "0001"  # the torn tap's ATC
    assert tlv.flatten(tlv.decode(online.icc_data))[0x9F37].hex() == "01020304"  # its UN: the issuer verifies it
    assert len(torn) == 0


def test_without_a_torn_log_the_card_computes_a_second_cryptogram() -> None:
    done, sent, online = _torn_then_again(None)
    assert "RECOVER AC" not in sent and _atc(online) == "0002"


def test_another_amount_is_another_sale_and_not_recovered() -> None:
    torn = TornLog()
    done, sent, online = _torn_then_again(torn, amount=12000)
    assert "RECOVER AC" not in sent and _atc(online) == "0002" and len(torn) == 0


def test_a_card_that_never_finished_answers_6a88_and_a_fresh_generate_ac_follows() -> None:
    torn = TornLog()
    card = tap_applet("mastercard-cda")
    try:
        _tap(card, torn, tear=True)
    except _Pulled:
        pass
    card._last_generate_ac = None  # type: ignore[attr-defined]  # the card lost power before it finished
    done, sent, online = _tap(card, torn, un=b"\x05\x06\x07\x08")
    assert sent.count("RECOVER AC") == 1 and "GENERATE AC" in sent and done.outcome.status is Status.APPROVED
    assert tlv.flatten(tlv.decode(online.icc_data))[0x9F37].hex() == "05060708"
