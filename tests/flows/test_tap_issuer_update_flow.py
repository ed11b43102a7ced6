"""The issuer update's second tap in the contactless flow, over the real reader driver and pty with a real
SQLite journal: whatever the card does the second time, the host's approval stands and the journal says paid."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from drivers.card_reader import CardReader
from emv.capk import TEST_CAPKS
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.contactless import Combination, ReaderLimits
from flows.card_payment import CardPaymentPorts, CardPaymentResult, CardPaymentSettings, PaymentStatus, Step
from flows.contactless_payment import TapSettings, pay_by_tap
from flows.ports import CancelToken
from sim.devices.contactless_cards import CONTACTLESS_CATALOGUE, ContactlessCard
from sim.devices.reader import ReaderSim
from terminal.journal import Journal
from tests.flows.fakes import FakeHost, FakePinPad

LIMITS = ReaderLimits(contactless_limit=100000, floor_limit=0, cvm_required_limit=100000)
COMBOS = (Combination(bytes.fromhex("A000000333"), 7, LIMITS),)


class Clock:
    """Real monotonic time: the second presentation waits on the reader for real."""

    def now(self) -> dt.datetime:
        return dt.datetime(2026, 12, 3, 10, 0, 0)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _pay(tmp_path: Path, sim: ReaderSim, driver: CardReader, card: ContactlessCard, leave_after: int | None,
         ) -> tuple[CardPaymentResult, Journal, int, list[Step]]:
    journal = Journal(tmp_path / "j.db")
    txn = journal.begin(order_id="O1", iccid="89860112345678901237", msisdn="1064912345678", plan_id="P",
                        plan_name="p", amount_minor=1700, fee_minor=0, channel="tap", cashier_id="01")
    ports = CardPaymentPorts(driver, FakePinPad(), FakeHost(card.profile.card), journal, Clock(),
                             lambda n: bytes(range(1, n + 1)))
    settings = CardPaymentSettings(TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001",
                                                  merchant_id="898440154110001"), "T0000001", "898440154110001")
    steps: list[Step] = []
    sim.tap(card, leave_after=leave_after)
    result = pay_by_tap(ports, driver, settings, TapSettings(COMBOS, TEST_CAPKS, tap_timeout_s=5.0,
                                                             update_timeout_s=0.6),
                        txn_id=txn, amount_minor=1700, progress=steps.append, cancel=CancelToken())
    return result, journal, txn, steps


@pytest.mark.parametrize(("leave_after", "authenticated", "tsi"), [
    (None, True, "1400"),  # the card stays on the reader: the update is done at once
    (6, None, None),  # taken away once read, never presented again: the update is not done
    (7, None, None),  # presented again, taken away after SELECT: the update is interrupted
])
def test_the_host_approval_stands_whatever_the_second_tap(tmp_path: Path, reader: tuple[ReaderSim, CardReader],
                                                          leave_after: int | None, authenticated: bool | None,
                                                          tsi: str | None) -> None:
    sim, driver = reader
    card = ContactlessCard(CONTACTLESS_CATALOGUE["quickpass-update"])
    result, journal, txn, steps = _pay(tmp_path, sim, driver, card, leave_after)
    assert result.status is PaymentStatus.APPROVED and result.response_code == "00"
    assert journal.get(txn).state == "paid" and journal.get(txn).reversal is None
    assert Step.TAP_UPDATE in steps and steps.index(Step.TAP_UPDATE) > steps.index(Step.AUTHORIZING)
    assert card.issuer_authenticated is authenticated
    assert result.emv_receipt.get("tsi") == tsi
