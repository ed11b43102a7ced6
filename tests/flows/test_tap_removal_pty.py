"""A card or phone left on the reader after a tap is never read (and charged) again for the next sale: EMV Book D's
main loop takes the card removal before the next poll. Over the real reader driver and pty, a real SQLite journal;
a card taken away and held out again in the same instant is a new presentation, read afresh."""

from __future__ import annotations

import threading
from pathlib import Path

from drivers.card_reader import CardReader
from emv.capk import TEST_CAPKS
from emv.config import STANDARD_AIDS, TerminalConfig
from flows.card_payment import CardPaymentPorts, CardPaymentResult, CardPaymentSettings, PaymentStatus, Step
from flows.contactless_payment import TapSettings, pay_by_tap
from flows.messages import Msg
from flows.ports import CancelToken
from sim.devices.contactless_cards import CONTACTLESS_CATALOGUE, ContactlessCard
from sim.devices.reader import ReaderSim
from terminal.journal import Journal
from tests.flows.fakes import FakeHost, FakePinPad
from tests.flows.test_tap_issuer_update_flow import COMBOS, Clock

WAIT_S = 20.0  # the waits below end on the customer's move or CANCEL, never on this


class _Till:
    """Tap sales one after another on one reader, journal and host."""

    def __init__(self, tmp_path: Path, driver: CardReader, card: ContactlessCard) -> None:
        self.journal, self.host, self.driver = Journal(tmp_path / "j.db"), FakeHost(card.profile.card), driver
        self.ports = CardPaymentPorts(driver, FakePinPad(), self.host, self.journal, Clock(),
                                      lambda n: bytes(range(1, n + 1)))
        self.settings = CardPaymentSettings(TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001",
                                                           merchant_id="898440154110001"), "T0000001",
                                            "898440154110001")
        self.sales = 0

    def pay(self, steps: list[Step], cancel: CancelToken, timeout_s: float = WAIT_S) -> CardPaymentResult:
        self.sales += 1
        txn = self.journal.begin(order_id=f"O{self.sales}", iccid="89860112345678901237", msisdn="1064912345678",
                                 plan_id="P", plan_name="p", amount_minor=1700, fee_minor=0, channel="tap",
                                 cashier_id="01")
        return pay_by_tap(self.ports, self.driver, self.settings, TapSettings(COMBOS, TEST_CAPKS,
                                                                             tap_timeout_s=timeout_s),
                          txn_id=txn, amount_minor=1700, progress=steps.append, cancel=cancel)

    def in_background(self, steps: list[Step], cancel: CancelToken, timeout_s: float = WAIT_S,
                      ) -> tuple[threading.Thread, list[CardPaymentResult]]:
        result: list[CardPaymentResult] = []
        thread = threading.Thread(target=lambda: result.append(self.pay(steps, cancel, timeout_s)), daemon=True)
        thread.start()
        return thread, result


def _first_sale(tmp_path: Path, sim: ReaderSim, driver: CardReader) -> tuple[_Till, ContactlessCard]:
    card = ContactlessCard(CONTACTLESS_CATALOGUE["quickpass-update"])
    till = _Till(tmp_path, driver, card)
    sim.tap(card)
    assert till.pay([], CancelToken()).status is PaymentStatus.APPROVED
    assert len(till.host.authorized) == 1
    return till, card


def _until(condition: object) -> None:
    event = threading.Event()
    for _ in range(2000):
        if condition():  # type: ignore[operator]
            return
        event.wait(0.01)
    raise AssertionError("condition not met in time")


def test_the_card_left_on_the_reader_is_not_charged_again_until_taken_away_and_presented(
        tmp_path: Path, reader: tuple[ReaderSim, CardReader]) -> None:
    sim, driver = reader
    till, card = _first_sale(tmp_path, sim, driver)  # the customer leaves the card on the reader
    apdus = sim.apdus
    steps: list[Step] = []
    thread, result = till.in_background(steps, CancelToken())
    _until(lambda: Step.TAP_REMOVE in steps)  # "a card is still on the reader — take it away, then tap"
    assert sim.apdus == apdus and len(till.host.authorized) == 1  # not read, not sent
    sim.take_away()
    sim.tap(card)  # and held out again at once: a new presentation (the removal procedure saw it leave)
    thread.join(timeout=WAIT_S)
    assert not thread.is_alive()
    assert result[0].status is PaymentStatus.APPROVED and len(till.host.authorized) == 2
    assert steps.index(Step.TAP_REMOVE) < steps.index(Step.TAP_CARD) < steps.index(Step.READING_CARD)


def test_a_card_never_taken_away_ends_the_sale_and_cancel_ends_the_wait(
        tmp_path: Path, reader: tuple[ReaderSim, CardReader]) -> None:
    sim, driver = reader
    till, _ = _first_sale(tmp_path, sim, driver)
    apdus = sim.apdus
    steps: list[Step] = []
    paid = till.pay(steps, CancelToken(), timeout_s=0.3)  # it stays on the reader
    assert (paid.status, paid.message) == (PaymentStatus.CANCELLED, Msg("tap.never_removed"))
    token, steps = CancelToken(), []
    thread, result = till.in_background(steps, token)
    _until(lambda: Step.TAP_REMOVE in steps)
    token.cancel()  # the cashier's CANCEL
    thread.join(timeout=WAIT_S)
    assert not thread.is_alive()
    assert (result[0].status, result[0].message) == (PaymentStatus.CANCELLED, Msg("pay.cancelled"))
    assert sim.apdus == apdus and len(till.host.authorized) == 1  # the card was never read again


def test_a_new_card_on_the_reader_is_read_at_once(tmp_path: Path, reader: tuple[ReaderSim, CardReader]) -> None:
    """Removal is asked of the card last activated only: the next customer's card, already held out, is read."""
    sim, driver = reader
    till, _ = _first_sale(tmp_path, sim, driver)
    sim.take_away()
    sim.tap(ContactlessCard(CONTACTLESS_CATALOGUE["quickpass-update"]))
    steps: list[Step] = []
    assert till.pay(steps, CancelToken()).status is PaymentStatus.APPROVED
    assert Step.TAP_REMOVE not in steps and len(till.host.authorized) == 2
