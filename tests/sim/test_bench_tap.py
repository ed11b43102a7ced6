"""``make bench``'s tap measure runs every tap card it names to an approval (a bench that silently measured a
failing tap would report a flattering number). Time is reported by the bench, never asserted here."""

from __future__ import annotations

import pytest

from sim.bench import emv as bench_emv


@pytest.mark.parametrize(("key", "amount"), [("quickpass-debit", 10000), ("paywave-offline", 2000),
                                             ("mastercard-cda", 2000)])
def test_bench_taps_are_approved(key: str, amount: int) -> None:
    assert bench_emv._tap_seconds(key, amount, 1) >= 0


def test_bench_refuses_to_measure_a_tap_that_is_not_approved() -> None:
    with pytest.raises(RuntimeError, match="quickpass-decline ended declined"):
        bench_emv._tap_seconds("quickpass-decline", 2000, 1)
