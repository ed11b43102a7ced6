"""Relay resistance (Book C-2): the timing checks as a table, the exchange with its retries against the simulated
card, and the whole tap through Entry Point and kernel 2 with and without a relay between reader and card."""

from __future__ import annotations

import datetime as dt

import pytest

from emv import kernel_c2, kernel_c3
from emv.actions import GoOnline, SendApdu
from emv.contactless import Combination, ReaderLimits, Status
from emv.entry_point import ContactlessFinished, EntryPoint, FieldOff, PollCards, ShowUi
from emv.relay_resistance import (
    TVR_NOT_PERFORMED,
    TVR_PERFORMED,
    TVR_THRESHOLD,
    TVR_TIME_LIMITS,
    RrpCard,
    Timed,
    assess,
    command,
    exchange,
    parse_answer,
)
from pos_errors import RemoteProtocolError
from sim.backends.pki import SIM_TRUST
from sim.devices.contactless_cards import tap_applet
from sim.devices.reader import air_us

CARD = RrpCard(bytes(4), min_time=10, max_time=50, estimated_r_apdu=16)


# elapsed µs → measured = elapsed // 100 - 18 (C-APDU) - min(16, 24) (R-APDU), in units of 100 µs
@pytest.mark.parametrize(("elapsed_us", "attempt", "measured", "bits", "retry", "end"), [
    (3_800,  0,   4, TVR_PERFORMED,                                  False, False),  # in bounds
    (13_400, 0, 100, TVR_PERFORMED,                                  False, False),  # max + max grace exactly
    (13_500, 0, 101, 0,                                              True,  False),  # over: retry
    (13_500, 2, 101, TVR_PERFORMED | TVR_TIME_LIMITS,                False, False),  # over after two retries
    (40_000, 2, 366, TVR_PERFORMED | TVR_TIME_LIMITS | TVR_THRESHOLD, False, False),  # 366 - 10 > 300
    (0,      0,   0, TVR_PERFORMED,                                  False, False),  # 0 ≥ 10 - 20: accepted
])
def test_timing_checks(elapsed_us: int, attempt: int, measured: int, bits: int, retry: bool, end: bool) -> None:
    result = assess(CARD, elapsed_us=elapsed_us, attempt=attempt)
    assert (result.measured, result.tvr_bits, result.retry, result.end is not None) == (measured, bits, retry, end)


def test_a_card_faster_than_its_own_minimum_ends_the_transaction() -> None:
    slow_minimum = RrpCard(bytes(4), min_time=40, max_time=80, estimated_r_apdu=16)
    result = assess(slow_minimum, elapsed_us=3_800)  # measured 4 < 40 - 20
    assert result.end is not None and "under the card's own minimum" in result.end


def test_mismatched_transmission_estimates_exceed_the_threshold() -> None:
    far = RrpCard(bytes(4), min_time=10, max_time=50, estimated_r_apdu=4)  # 4 vs 24: 16 % < 50 %
    assert assess(far, elapsed_us=3_800).tvr_bits == TVR_PERFORMED | TVR_THRESHOLD


def test_not_measured_is_not_performed() -> None:
    assert assess(CARD, elapsed_us=None).tvr_bits == TVR_NOT_PERFORMED


@pytest.mark.parametrize("data", ["800A00112233000A0032", "800B00112233000A003200101F", "770A00112233000A00320010",
                                  ""])
def test_malformed_answers_are_refused(data: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_answer(bytes.fromhex(data))


def test_the_exchange_retries_twice_with_fresh_entropy_then_flags_the_time_limits() -> None:
    terminal = {0x9F37: bytes.fromhex("A1B2C3D4")}
    step = exchange(terminal)
    sent = [step.send(None)]
    answer = bytes.fromhex("800A" "D00D0001" "000A" "0032" "0010" "9000")
    try:
        while True:
            sent.append(step.send(Timed(answer, 60_000)))
    except StopIteration as stop:
        result = stop.value
    assert all(isinstance(a, SendApdu) and a.timed for a in sent)
    assert [a.apdu.hex().upper() for a in sent] == [command(bytes.fromhex(e)).hex().upper()
                                                   for e in ("A1B2C3D4", "A1B2C3D5", "A1B2C3D6")]
    assert result.tvr_bits == TVR_PERFORMED | TVR_TIME_LIMITS | TVR_THRESHOLD
    assert terminal[0xDF8306] == (600 - 18 - 16).to_bytes(2, "big") and terminal[0xDF8301].hex() == "a1b2c3d6"


def _tap(key: str, amount: int = 10000) -> tuple[ContactlessFinished, int]:
    card = tap_applet(key)
    terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=b"\x01\x02\x03\x04",
                                       today=dt.date(2026, 5, 1))
    combos = (Combination(bytes.fromhex("A000000004"), 2, ReaderLimits(floor_limit=5000)),)
    ep = EntryPoint(combos, amount_minor=amount, kernels={2: kernel_c2.run}, terminal=terminal, capks=SIM_TRUST,
                    today=dt.date(2026, 5, 1))
    action, exchanges = ep.start(), 0
    while not isinstance(action, ContactlessFinished):
        if isinstance(action, PollCards):
            action = ep.on_cards(1)
        elif isinstance(action, SendApdu) and action.timed:  # what the reader simulator reports
            exchanges += 1
            rapdu = card.process(action.apdu)
            elapsed = air_us(len(action.apdu)) + card.processing_us + air_us(len(rapdu)) + card.relay_delay_us
            action = ep.on_response(rapdu, elapsed)
        elif isinstance(action, SendApdu):
            action = ep.on_response(card.process(action.apdu))
        elif isinstance(action, ShowUi | FieldOff):
            action = ep.on_ack()
        elif isinstance(action, GoOnline):
            action = ep.on_online_result("00")
    return action, exchanges


def test_a_card_next_to_the_reader_passes_and_goes_online() -> None:
    done, exchanges = _tap("mastercard-rrp")
    assert exchanges == 1 and done.outcome.status is Status.APPROVED
    assert done.outcome.data_record[0x95].hex() == "0000008002"  # over the floor limit (byte 4), RRP performed


def test_a_relayed_card_is_declined_after_two_retries() -> None:
    done, exchanges = _tap("mastercard-relay")
    assert exchanges == 3 and done.outcome.status is Status.DECLINED and done.host_response_code is None
    assert done.outcome.data_record[0x95].hex() == "000000800e"  # floor limit; RRP: performed, limits + threshold


def test_a_card_without_relay_resistance_says_not_performed() -> None:
    done, exchanges = _tap("mastercard-cda")
    assert exchanges == 0 and done.outcome.data_record[0x95].hex() == "0000008001"


def test_each_retry_draws_a_fresh_unpredictable_number_that_becomes_9f37() -> None:
    fresh = iter([bytes.fromhex("11111111"), bytes.fromhex("22222222")])
    terminal = {0x9F37: bytes.fromhex("A1B2C3D4")}
    step = exchange(terminal, lambda n: next(fresh))
    sent = [step.send(None)]
    answer = bytes.fromhex("800A" "D00D0001" "000A" "0032" "0010" "9000")
    try:
        while True:
            sent.append(step.send(Timed(answer, 60_000)))
    except StopIteration:
        pass
    assert [a.apdu[5:9].hex() for a in sent] == ["a1b2c3d4", "11111111", "22222222"]
    assert terminal[0x9F37].hex() == "22222222"  # the cryptogram and CDA use the last one
