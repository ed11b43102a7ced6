"""The card top-up (``flows.topup``) end to end on fakes for every port: the real EMV kernel and card applet in
memory, a fake acquirer, carrier, PIN pad and clock, and ``FakeJournal`` enforcing the journal's state rules.
Each test asserts the states journalled, in order, and the calls the flow made to the world."""

from __future__ import annotations

from collections import deque

import pytest

from emv.config import STANDARD_AIDS, TerminalConfig
from flows.card_payment import CardPaymentPorts, CardPaymentSettings, PaymentStatus, Step
from flows.messages import Msg
from flows.ports import CancelToken, CarrierStatus, Plan, TopupResult
from flows.pricing import FeeSchedule, quote
from flows.testing import FakeJournal
from flows.topup import TopupEnd, TopupOrder, TopupService
from flows.txn_state import TxnState as S
from pos_errors import LinkTimeout
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.flows.fakes import FakeCarrier, FakeClock, FakeHost, FakePinPad, FakeReader

CARD = CATALOGUE["unionpay-debit"]  # online PIN, ARQC, TC after approval
PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)
ICCID = "89860424000000000017"
PAID = [S.CREATED, S.AUTH_INTENDED, S.APPROVED, S.PAID, S.TOPUP_INTENDED]


class World:
    def __init__(self, *, code: str = "00", host_error: BaseException | None = None,
                 create: list[object] = (), status: list[object] = ()) -> None:  # type: ignore[assignment]
        self.journal = FakeJournal(first_stan=41)
        self.host = FakeHost(CARD, code=code, error=host_error)
        self.carrier = FakeCarrier(deque(create), deque(status))
        self.reader, self.pinpad, self.clock = FakeReader(CardApplet(CARD)), FakePinPad(), FakeClock()
        ports = CardPaymentPorts(self.reader, self.pinpad, self.host, self.journal, self.clock,
                                 lambda n: b"\x5a" * n)
        emv = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="898440154110001",
                             capks=SIM_TRUST)
        settings = CardPaymentSettings(emv, terminal_id="T0000001", merchant_id="898440154110001")
        self.service = TopupService(self.carrier, ports, settings, status_polls=2, poll_interval_s=0.5)
        self.steps: list[Step] = []

    def run(self):  # type: ignore[no-untyped-def]
        order = TopupOrder(ICCID, "1064900000001", quote(PLAN, "card", FeeSchedule({"card": (0, 0)}), 100_000), "01")
        return self.service.run_card(order, self.steps.append, CancelToken())

    def applied(self, order_id: str) -> TopupResult:
        return TopupResult(order_id, "applied", 2250)


def _order_id(world: World) -> str:
    return world.journal.get(1).order_id


def test_approved_payment_applies_the_top_up_once() -> None:
    world = World()
    world.carrier.create.append(TopupResult("ignored", "applied", 2250))
    outcome = world.run()
    assert outcome.status is TopupEnd.COMPLETED and outcome.balance_minor == 2250 and outcome.money_moved
    assert outcome.payment is not None and outcome.payment.status is PaymentStatus.APPROVED
    assert world.journal.states(1) == [*PAID, S.COMPLETED]
    record = world.journal.get(1)
    assert (record.stan, record.response_code, record.topup_status, record.reversal) == (41, "00", "applied", None)
    assert record.masked_pan is not None and CARD.pan not in record.masked_pan  # only ever masked
    assert world.carrier.calls == [("create_topup", outcome.order_id)]
    assert world.carrier.funding_refs == ["000000000001"]  # the acquirer's RRN names the payment that funds it
    assert [r.stan for r in world.host.authorized] == [41] and world.host.reversed_ == []
    assert world.pinpad.calls == ["online_pin 1000"] and world.reader.calls[0] == "power_on"
    assert world.steps == [Step.WAIT_CARD, Step.READING_CARD, Step.PIN_ENTRY, Step.AUTHORIZING, Step.TOPPING_UP,
                           Step.REMOVE_CARD]  # the card is still in: asked out


def test_declined_payment_never_reaches_the_carrier() -> None:
    world = World(code="05")
    outcome = world.run()
    assert outcome.status is TopupEnd.DECLINED and not outcome.money_moved
    assert outcome.message == Msg("resp.05")
    assert world.journal.states(1) == [S.CREATED, S.AUTH_INTENDED, S.DECLINED, S.DECLINED]
    assert world.journal.get(1).response_code == "05" and world.journal.get(1).reversal is None
    assert world.carrier.calls == [] and world.host.reversed_ == []


def test_host_timeout_is_reversed_with_the_same_stan_and_no_top_up() -> None:
    world = World(host_error=LinkTimeout("no 0210 within 30 s"))
    outcome = world.run()
    assert outcome.status is TopupEnd.REVERSED and not outcome.money_moved
    assert outcome.payment is not None and outcome.payment.status is PaymentStatus.UNKNOWN
    assert world.journal.states(1) == [S.CREATED, S.AUTH_INTENDED, S.AUTH_UNKNOWN, S.REVERSAL_PENDING, S.REVERSED]
    assert [r.original.stan for r in world.host.reversed_] == [41]
    assert world.host.reversed_[0].stan != 41  # the reversal has a trace number of its own
    assert world.journal.get(1).reversal == "done" and world.carrier.calls == []
    assert world.steps[-2:] == [Step.REVERSING, Step.REMOVE_CARD]


def test_lost_carrier_answer_is_followed_by_a_status_query_not_a_second_order() -> None:
    world = World(create=[LinkTimeout("carrier silent")])
    world.carrier.status.append(TopupResult("x", "applied", 2250))
    outcome = world.run()
    order_id = _order_id(world)
    assert outcome.status is TopupEnd.COMPLETED and outcome.balance_minor == 2250
    assert world.carrier.calls == [("create_topup", order_id), ("order_status", order_id)]
    # the lost answer is noted on the row (topup_intended again) before the status query
    assert world.journal.states(1) == [*PAID, S.TOPUP_INTENDED, S.COMPLETED]
    assert "carrier" in str(world.journal.events(1)[-2][1]["message"])
    assert world.host.reversed_ == []


def test_order_the_carrier_never_got_is_sent_again_with_the_same_order_id() -> None:
    world = World(create=[LinkTimeout("carrier silent"), TopupResult("x", "applied", 2250)],
                  status=[TopupResult("x", "not_found")])
    outcome = world.run()
    order_id = _order_id(world)
    assert outcome.status is TopupEnd.COMPLETED
    assert world.carrier.calls == [("create_topup", order_id), ("order_status", order_id),
                                   ("create_topup", order_id)]
    assert world.journal.states(1) == [*PAID, S.TOPUP_INTENDED, S.COMPLETED]


def test_carrier_still_pending_leaves_the_row_for_follow_up() -> None:
    world = World(create=[LinkTimeout("carrier silent")],
                  status=[TopupResult("x", "pending"), TopupResult("x", "pending")])
    outcome = world.run()
    assert outcome.status is TopupEnd.PENDING and outcome.money_moved
    assert world.journal.states(1) == [*PAID, S.TOPUP_INTENDED, S.TOPUP_PENDING]
    assert world.clock.slept == [0.5]  # two polls, one pause between them
    assert world.journal.get(1).topup_status == CarrierStatus.PENDING and world.host.reversed_ == []


def test_carrier_refusal_reverses_the_payment() -> None:
    world = World(create=[TopupResult("x", "failed", message="SIM suspended")])
    outcome = world.run()
    assert outcome.status is TopupEnd.REVERSED
    assert world.journal.states(1) == [*PAID, S.TOPUP_FAILED, S.REVERSAL_PENDING, S.REVERSED]
    assert [r.original.stan for r in world.host.reversed_] == [41]


def test_reversal_the_host_refuses_waits_for_a_supervisor() -> None:
    world = World(create=[TopupResult("x", "failed", message="SIM suspended")])
    world.host.reversals.append("12")
    outcome = world.run()
    assert outcome.status is TopupEnd.REVERSAL_PENDING and outcome.money_moved
    assert outcome.message == Msg("topup.reversal_refused", {"what": Msg("topup.refused",
                                                                          {"reason": "SIM suspended"})})
    assert world.journal.states(1) == [*PAID, S.TOPUP_FAILED, S.REVERSAL_PENDING, S.REVERSAL_REFUSED]


@pytest.mark.parametrize("state", [S.COMPLETED, S.VOIDED])
def test_fake_journal_refuses_what_the_sqlite_journal_refuses(state: S) -> None:
    world = World(create=[TopupResult("x", "applied", 2250)])
    world.run()
    with pytest.raises(Exception, match="cannot go from completed to"):
        world.journal.update(1, S.TOPUP_INTENDED if state is S.COMPLETED else S.PAID)
    with pytest.raises(Exception, match="unknown transaction state"):
        world.journal.update(1, "topup_done")
    assert world.journal.states(1)[-1] is S.COMPLETED
