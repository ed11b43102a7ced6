"""The card slot between two sales through the real pty driver and the simulated reader: a card taken out and put
back within milliseconds (the bench's ``reinsert_on_beep`` customer) is a removal and a new insertion, whenever
its two events reach the terminal — together, while nobody waits, or before the wait has even begun.

The timing of a loaded machine is made deterministic: ``_late`` holds the flow thread after the beep until the
driver has seen the whole out-and-in (the flow descheduled for 100 ms); ``_together`` hands the driver the
removal and the insertion under one hold of its lock (the waiting thread wakes only after both)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import pytest

from drivers import card_reader as card_reader_module
from drivers.card_reader import CardReader
from drivers.card_reader_codec import ReaderEventCode
from drivers.link import Event, FrameReceived
from emv.config import STANDARD_AIDS, TerminalConfig
from flows import card_slot
from flows.card_payment import CardPaymentPorts, CardPaymentSettings, PaymentStatus, Step
from flows.magstripe_payment import pay_card_or_stripe
from flows.ports import CancelToken, Plan, TopupResult
from flows.pricing import FeeSchedule, quote
from flows.testing import FakeJournal
from flows.topup import TopupEnd, TopupOrder, TopupService
from flows.txn_state import TxnState
from pos_errors import Cancelled, CardRemoved
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.reader import ReaderSim
from tests.drivers.conftest import FakeApplet
from tests.flows.fakes import FakeCarrier, FakeClock, FakeHost, FakePinPad

CARD = CATALOGUE["unionpay-debit"]
PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)
WAIT_S = 20.0  # no wait below may end by its time-out: each must end on a reader event (or fail the test)


@pytest.fixture
def slot(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ReaderSim, CardReader]]:
    monkeypatch.setattr(card_reader_module, "HEARTBEAT_S", 600.0)  # only events end a wait
    sim = ReaderSim()
    reader = CardReader(sim.start(), response_timeout_s=2.0)
    reader.open()
    yield sim, reader
    reader.close()
    sim.stop()


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def _insert(sim: ReaderSim, reader: CardReader, applet: object) -> None:
    seen = reader.slot_mark()
    sim.insert(applet)  # type: ignore[arg-type]
    _until(lambda: reader.slot_mark() > seen and reader.card_present())


def _late(reader: CardReader) -> None:
    """The flow thread stalls after each beep until the driver has seen the customer's whole out-and-in."""
    beep = reader.beep

    def late_beep(duration_ms: int = 100) -> None:
        before = reader.slot_mark()
        beep(duration_ms)
        _until(lambda: reader.slot_mark() > before and reader.card_present())

    reader.beep = late_beep  # type: ignore[method-assign]


def _together(reader: CardReader) -> None:
    """A CARD_REMOVED event is held back and handled with the next event, under one hold of the driver's lock."""
    handle, held = reader._on_link_event, []

    def together(event: Event) -> None:
        if isinstance(event, FrameReceived) and event.cmd == ReaderEventCode.CARD_REMOVED:
            held.append(event)
            return
        with reader._cond:  # re-entrant: the waiter can look only after both
            for old in held:
                handle(old)
            held.clear()
            handle(event)

    reader._on_link_event = together  # type: ignore[method-assign]


class _Sale:
    """A card top-up (``flows.topup``) on the real reader; fakes for the PIN pad, host, carrier and journal."""

    def __init__(self, reader: CardReader) -> None:
        self.journal, self.carrier = FakeJournal(first_stan=41), FakeCarrier(deque(), deque())
        ports = CardPaymentPorts(reader, FakePinPad(), FakeHost(CARD), self.journal, FakeClock(),
                                 lambda n: b"\x5a" * n)
        emv = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="898440154110001",
                             capks=SIM_TRUST)
        settings = CardPaymentSettings(emv, terminal_id="T0000001", merchant_id="898440154110001",
                                       card_timeout_s=WAIT_S)
        self.service = TopupService(self.carrier, ports, settings, status_polls=1, poll_interval_s=0.0)

    def run(self, started_at: float) -> tuple[TopupEnd, list[Step]]:
        steps: list[Step] = []
        self.carrier.create.append(TopupResult("ignored", "applied", 2250))
        order = TopupOrder("89860424000000000017", "1064900000001",
                           quote(PLAN, "card", FeeSchedule({"card": (0, 0)}), 100_000), "01", started_at=started_at)
        return TopupEnd(self.service.run_card(order, steps.append, CancelToken()).status), steps


def test_an_out_and_in_over_before_the_wait_begins_lets_the_sale_go_on(slot: tuple[ReaderSim, CardReader]) -> None:
    """The hang of the loaded ``make test``: a card left in is refused, the customer takes it out and puts it back
    within 100 ms, and the flow thread looks only after both events — it must not wait for a removal that is
    already over (it waited the whole card time-out, then cancelled the sale)."""
    sim, reader = slot
    applet = CardApplet(CARD)
    _insert(sim, reader, applet)
    sim.reinsert_on_beep = True
    _late(reader)
    sale = _Sale(reader)
    end, steps = sale.run(started_at=time.monotonic())  # the card went in before the sale: refused first
    assert end is TopupEnd.COMPLETED
    assert steps[:2] == [Step.REMOVE_AND_INSERT, Step.WAIT_CARD] and steps[-1] is Step.REMOVE_CARD
    assert len(sim.beeps) == 2  # asked out before the payment, and again after it
    # after the sale's "remove card" the customer was out and in again: a new insertion, not the paid card
    after = time.monotonic()
    assert reader.inserted_at is not None and card_slot.from_before(reader, after)
    with pytest.raises(CardRemoved):
        reader.transmit(bytes.fromhex("00 B2 01 0C 00"))  # the card the kernel talked to has left
    end, steps = sale.run(started_at=after)  # the next sale: that card went in before it, so out and in once more
    assert end is TopupEnd.COMPLETED and steps[0] is Step.REMOVE_AND_INSERT
    assert [sale.journal.get(txn).state for txn in (1, 2)] == [TxnState.COMPLETED] * 2


@pytest.mark.parametrize(("customer", "removed", "now_in"), [
    ("out",             True,  False),
    ("out in",          True,  True),   # out and in again at once
    ("out in out in",   True,  True),   # twice, in one burst
    ("out in out",      True,  False),
], ids=lambda v: v.replace(" ", "-") if isinstance(v, str) else None)
@pytest.mark.parametrize("when", ["while waiting", "before the wait", "together while waiting"])
def test_every_removal_ends_the_wait_and_the_card_in_is_a_new_insertion(
        slot: tuple[ReaderSim, CardReader], customer: str, removed: bool, now_in: bool, when: str) -> None:
    sim, reader = slot
    old = FakeApplet()
    _insert(sim, reader, old)
    reader.power_on()
    mark = card_slot.mark(reader)
    if when == "together while waiting":
        _together(reader)
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(card_slot.wait_removed(reader, WAIT_S, CancelToken(), mark))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome.append(exc)

    def act() -> None:
        for move in customer.split():
            if move == "out":
                sim.remove()
            else:
                sim.insert(FakeApplet())
        if when == "together while waiting" and customer.endswith("out"):
            sim.swipe(track2=b"6229000011112226=3012101000001")  # the next event, with which the removal comes
    waiter = threading.Thread(target=wait, daemon=True)
    if when == "before the wait":  # nobody waits while the events arrive: the driver keeps them
        act()
        count = customer.count("in")
        _until(lambda: reader.slot_mark() == mark + count and reader.card_present() is now_in)
        waiter.start()
    else:
        waiter.start()
        time.sleep(0.05)  # the waiter is inside the wait (if not yet, the events come before it: also covered)
        act()
    waiter.join(timeout=WAIT_S + 5)
    assert outcome == [removed]
    _until(lambda: reader.card_present() is now_in)
    if now_in:  # the card now in is a new insertion: powered afresh, never the old card still present
        assert reader.slot_mark() > mark
        assert reader.inserted_at is not None
        with pytest.raises(CardRemoved):
            reader.transmit(bytes.fromhex("00 B2 01 0C 00"))


def test_a_card_left_in_is_not_a_removal_and_cancel_ends_the_wait(slot: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = slot
    _insert(sim, reader, FakeApplet())
    mark = card_slot.mark(reader)
    assert card_slot.wait_removed(reader, 0.3, CancelToken(), mark) is False  # nothing happened: not removed
    sim.swipe(track2=b"6229000011112226=3012101000001")  # other events do not end it either
    assert card_slot.wait_removed(reader, 0.3, CancelToken(), mark) is False
    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    with pytest.raises(Cancelled):  # woken by the token (the heartbeat is 10 minutes)
        card_slot.wait_removed(reader, WAIT_S, token, mark)
    sim.remove()
    assert card_slot.wait_removed(reader, WAIT_S, CancelToken(), mark)


def test_a_failed_chip_put_back_is_waited_out_once_per_insertion_and_cancel_ends_it(
        slot: tuple[ReaderSim, CardReader]) -> None:
    """After a failed chip the customer must take the card out and swipe it. A card put back instead is waited
    out again (one wait per insertion, never a busy loop on the old mark); CANCEL ends the sale at once with
    the failed chip's result (it was only looked at when the card time-out passed)."""
    sim, reader = slot
    _insert(sim, reader, FakeApplet(atr=b"\x00\x00"))  # a malformed ATR: the chip fails at power-on
    waits: list[int] = []
    ended: list[object] = []  # how each wait ended: True (removed), False (timed out), Cancelled
    waiting = threading.Event()
    wait = reader.wait_for_removal

    def counted(timeout_s: float, cancel: CancelToken | None = None, since: int | None = None) -> bool:
        waits.append(reader.slot_mark())
        waiting.set()
        try:
            ended.append(wait(timeout_s, cancel, since))
        except Cancelled:
            ended.append(Cancelled)
            raise
        return bool(ended[-1])

    reader.wait_for_removal = counted  # type: ignore[method-assign]
    sale = _Sale(reader)
    ports, token, steps = sale.service.card, CancelToken(), []
    result: list[object] = []
    flow = threading.Thread(target=lambda: result.append(pay_card_or_stripe(
        ports, sale.service.settings, txn_id=1, amount_minor=1000, progress=steps.append, cancel=token)),
        daemon=True)
    flow.start()
    for _ in range(2):  # out and in again, twice: each new insertion is waited out once
        assert waiting.wait(WAIT_S)
        waiting.clear()
        sim.remove()
        sim.insert(FakeApplet(atr=b"\x00\x00"))
    assert waiting.wait(WAIT_S)
    token.cancel()
    flow.join(timeout=WAIT_S)
    assert not flow.is_alive()
    assert waits == [1, 2, 3]
    assert ended == [True, True, Cancelled]  # ended by CANCEL, not by the card time-out
    assert Step.SWIPE_FALLBACK in steps
    (paid,) = result
    assert paid.status is PaymentStatus.FAILED and paid.chip_failed  # type: ignore[attr-defined]


# --- the stripe head: a swipe counts by when it happened -----------------------------------------------------

CHIP_STRIPE = b"6229000033334446=3012201000001"  # service code 201: a chip card
PLAIN_STRIPE = b"6229000011112226=3012101000001"  # 101: no chip


class _Flow:
    """``pay_card_or_stripe`` on a worker thread, as the terminal runs it; ``waiting`` is set each time the flow
    sleeps in the reader for a card or a swipe, or for the card to come out."""

    def __init__(self, reader: CardReader, started_at: float) -> None:
        self.reader, self.token, self.steps, self.result = reader, CancelToken(), [], []  # type: ignore[var-annotated]
        self.waiting = threading.Event()
        for name in ("wait_for_card_or_swipe", "wait_for_removal"):
            setattr(reader, name, self._signalling(getattr(reader, name)))
        self.taken: list[object] = []  # every stripe the flow took from the reader
        take = reader.take_stripe
        reader.take_stripe = lambda: self._took(take())  # type: ignore[method-assign]
        service = _Sale(reader).service
        self.thread = threading.Thread(target=lambda: self.result.append(pay_card_or_stripe(
            service.card, service.settings, txn_id=1, amount_minor=1000, progress=self.steps.append,
            cancel=self.token, started_at=started_at)), daemon=True)
        self.thread.start()

    def _signalling(self, wait: Callable[..., object]) -> Callable[..., object]:
        def signalling(*args: object) -> object:
            self.waiting.set()
            return wait(*args)
        return signalling

    def _took(self, stripe: object) -> object:
        if stripe is not None:
            self.taken.append(stripe)
        return stripe

    def cancel(self) -> object:
        self.token.cancel()
        self.thread.join(timeout=WAIT_S)
        assert not self.thread.is_alive()
        return self.result[0]


def _swipe(sim: ReaderSim, reader: CardReader, track2: bytes) -> None:
    seen = threading.Event()
    reader.add_listener(lambda event: seen.set())
    sim.swipe(track2=track2)
    assert seen.wait(5.0)


def test_a_swipe_made_after_the_sale_started_counts_before_the_flow_looks(slot: tuple[ReaderSim, CardReader]) -> None:
    """The customer swipes as the cashier confirms; the swipe reaches the terminal while the sale is still being
    journalled. It was dropped as "from before this sale", and the customer had to swipe again."""
    sim, reader = slot
    started_at = time.monotonic()
    _swipe(sim, reader, CHIP_STRIPE)
    flow = _Flow(reader, started_at)
    try:
        _until(lambda: Step.INSERT_CHIP in flow.steps)  # the swipe was read: a chip card is asked into the slot
    finally:
        paid = flow.cancel()
    assert [stripe.masked_pan for stripe in flow.taken] == ["622900******4446"]  # type: ignore[attr-defined]
    assert paid.status is PaymentStatus.CANCELLED  # type: ignore[attr-defined]


def test_a_swipe_from_before_the_sale_is_never_taken(slot: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = slot
    _swipe(sim, reader, PLAIN_STRIPE)  # the previous customer's
    flow = _Flow(reader, time.monotonic())
    assert flow.waiting.wait(WAIT_S)  # waiting for a card or a swipe: the old swipe was dropped
    paid = flow.cancel()
    assert flow.taken == [] and Step.PIN_ENTRY not in flow.steps
    assert paid.status is PaymentStatus.CANCELLED  # type: ignore[attr-defined]


def test_a_swipe_made_while_the_chip_was_read_is_no_fallback(slot: tuple[ReaderSim, CardReader]) -> None:
    """Fallback to the stripe follows a chip failure (EMV): a swipe that came while the chip was being read (before
    it failed) was taken as the fallback swipe once the card was out."""
    sim, reader = slot
    started_at = time.monotonic()
    _insert(sim, reader, FakeApplet(atr=b"\x00\x00"))  # a malformed ATR: the chip fails at power-on
    power_on = reader.power_on

    def swiped_meanwhile() -> bytes:
        _swipe(sim, reader, CHIP_STRIPE)
        return power_on()

    reader.power_on = swiped_meanwhile  # type: ignore[method-assign]
    flow = _Flow(reader, started_at)
    _until(lambda: Step.SWIPE_FALLBACK in flow.steps)
    _until(flow.waiting.is_set)  # waiting for the failed card to come out
    flow.waiting.clear()
    sim.remove()
    assert flow.waiting.wait(WAIT_S)  # out: waiting for the fallback swipe — the early one is not it
    paid = flow.cancel()
    assert flow.taken == [] and Step.PIN_ENTRY not in flow.steps and paid.chip_failed  # type: ignore[attr-defined]
