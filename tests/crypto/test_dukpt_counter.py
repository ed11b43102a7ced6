"""The transaction-counter rules shared by TDES and AES DUKPT (emv/crypto/dukpt.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from emv.crypto.dukpt import AES_COUNTER, TDES_COUNTER, CounterRule, FutureKeys, derive_along_counter
from pos_errors import CryptoError

SMALL = CounterRule(width=8, max_ones=3)


def _brute_valid(rule: CounterRule) -> list[int]:
    return [c for c in range(1, rule.limit) if bin(c).count("1") <= rule.max_ones]


def test_small_rule_walks_exactly_the_valid_counters_in_order() -> None:
    walked: list[int] = []
    counter: int | None = 1
    while counter is not None:
        walked.append(counter)
        counter = SMALL.advance(counter)
    assert walked == _brute_valid(SMALL)


def test_remaining_matches_brute_force_for_every_counter() -> None:
    valid = _brute_valid(SMALL)
    for counter in range(1, SMALL.limit + 1):
        assert SMALL.remaining(counter) == sum(1 for c in valid if c >= counter), counter


def test_totals_of_the_two_standards() -> None:
    # X9.24-1: 21 bits, at most 10 ones -> sum C(21, 1..10) = 2**20 - 1
    assert TDES_COUNTER.remaining(1) == 1_048_575
    # X9.24-3: 32 bits, at most 16 ones -> sum C(32, 1..16)
    assert AES_COUNTER.remaining(1) == 2_448_023_842
    assert TDES_COUNTER.remaining(TDES_COUNTER.limit) == 0


@pytest.mark.parametrize(
    ("rule", "counter", "expected"),
    [
        (TDES_COUNTER, 0x0FF800, 0x0FF801),  # 9 ones: plain increment (X9.24-1:2009 A.4.3)
        (TDES_COUNTER, 0x0FF801, 0x0FF802),  # 10 ones: add the lowest one bit
        (TDES_COUNTER, 0x0FFC00, 0x100000),
        (TDES_COUNTER, 0x1FF800, None),  # last valid TDES counter: overflow = exhausted
        (AES_COUNTER, 0x0001FFFE, 0x00020000),  # 16 ones: 0x1FFFF is skipped (X9.24-3 supplement)
        (AES_COUNTER, 0xFFFE2000, 0xFFFE4000),
        (AES_COUNTER, 0xFFFF0000, None),
    ],
)
def test_advance(rule: CounterRule, counter: int, expected: int | None) -> None:
    assert rule.advance(counter) == expected


@given(st.integers(min_value=1, max_value=AES_COUNTER.limit - 1))
def test_advance_never_lands_on_an_invalid_counter(counter: int) -> None:
    assume(AES_COUNTER.is_valid(counter))
    nxt = AES_COUNTER.advance(counter)
    assert nxt is None or (AES_COUNTER.is_valid(nxt) and nxt > counter)
    assert AES_COUNTER.remaining(counter) == 1 + (0 if nxt is None else AES_COUNTER.remaining(nxt))


def _toy_step(key: bytes, counter: int) -> bytes:
    # a one-way, order-sensitive stand-in for the real steps: registers must hold exactly the right chain
    return hashlib.sha256(key + counter.to_bytes(4, "big")).digest()


def test_future_keys_agree_with_the_direct_derivation_and_resume_anywhere() -> None:
    initial = b"\x07IK"
    device = FutureKeys(SMALL, _toy_step, initial)
    for counter in _brute_valid(SMALL):
        resumed = FutureKeys(SMALL, _toy_step, initial, counter)
        assert resumed.registers == device.registers, counter
        assert device.next_key() == (counter, derive_along_counter(_toy_step, SMALL.width, initial, counter))
    assert device.counter is None and device.remaining == 0
    with pytest.raises(CryptoError):
        device.next_key()


@pytest.mark.parametrize("counter", [0, 0x0F, 0x100])  # zero, four ones, does not fit in 8 bits
def test_future_keys_refuse_an_unreachable_counter(counter: int) -> None:
    with pytest.raises(CryptoError):
        FutureKeys(SMALL, _toy_step, b"\x07IK", counter)
