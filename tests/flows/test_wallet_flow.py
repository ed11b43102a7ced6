"""The wallet top-up (``flows.wallet_payment``, customer-presented code) on fakes for every port: a scripted
wallet platform and carrier, a clock that never waits, and ``FakeJournal`` enforcing the journal's state rules.
The loopback-HTTP version of these paths is ``test_wallet_payment.py``; here each test pins the states journalled,
in order, and the exact calls made to the platforms."""

from __future__ import annotations

from collections import deque

from flows.messages import Msg
from flows.ports import CancelToken, Plan, TopupResult, WalletOrderStatus, WalletResult
from flows.pricing import FeeSchedule, quote
from flows.testing import FakeJournal
from flows.topup import TopupEnd, TopupOrder
from flows.txn_state import TxnState as S
from flows.wallet_payment import WalletProgress, WalletSettings, WalletStep, WalletTopupService
from pos_errors import LinkTimeout
from tests.flows.fakes import FakeCarrier, FakeClock, FakeWallet

PLAN = Plan("D1G-1M", "1 GB monthly data", "1GB 月包", 1, 1000, 1024)
CODE = "134567890123456789"  # a WeChat Pay payment code (test value)


class World:
    def __init__(self, *micropay: object, query: tuple[object, ...] = (), cancel: tuple[object, ...] = (),
                 create: tuple[object, ...] = ()) -> None:
        self.journal, self.clock = FakeJournal(), FakeClock()
        self.wallet = FakeWallet(deque(micropay), deque(query), deque(cancel))
        self.carrier = FakeCarrier(deque(create))
        settings = WalletSettings(terminal_id="T1", merchant_id="898440154110001", poll_interval_s=0.0,
                                  merchant_timeout_s=60.0, status_polls=2)
        self.service = WalletTopupService(self.wallet, self.carrier, self.journal, self.clock, settings)
        self.progress: list[WalletProgress] = []
        self.cancel = CancelToken()
        self.cancel_on: WalletStep | None = None  # the cashier presses CANCEL when this screen shows

    def _progress(self, progress: WalletProgress) -> None:
        self.progress.append(progress)
        if progress.step is self.cancel_on:
            self.cancel.cancel()

    def pay(self):  # type: ignore[no-untyped-def]
        order = TopupOrder("89860424000000000017", "1064900000001",
                           quote(PLAN, "wechat", FeeSchedule({"wechat": (0, 38)}), 100_000), "01")
        return self.service.pay_with_code(order, CODE, self._progress, self.cancel)

    @property
    def order_id(self) -> str:
        return self.journal.get(1).order_id

    @property
    def steps(self) -> list[WalletStep]:
        return [p.step for p in self.progress]


def _w(status: str, **kw: object) -> WalletResult:
    if status == "paid":  # a "paid" states what it is for: the order's total (￥10.00 + 0.38 % fee), in CNY
        kw = {"amount_minor": 1004, "currency": "CNY", **kw}
    return WalletResult("ignored", status, **kw)  # type: ignore[arg-type]


APPLIED = TopupResult("ignored", "applied", 2250)


def test_paid_at_once_tops_up_and_keeps_only_the_masked_code() -> None:
    world = World(_w("paid", transaction_id="4200001"), create=(APPLIED,))
    outcome = world.pay()
    assert outcome.status is TopupEnd.COMPLETED and outcome.balance_minor == 2250
    assert world.journal.states(1) == [S.CREATED, S.WALLET_INTENDED, S.PAID, S.TOPUP_INTENDED, S.COMPLETED]
    assert world.wallet.calls == [("micropay", world.order_id)]
    assert world.carrier.calls == [("create_topup", world.order_id)]
    assert world.carrier.funding_refs == ["4200001"]  # the top-up names the wallet payment that funds it
    record = world.journal.get(1)
    assert record.rrn == "4200001" and record.masked_pan == "134567********6789" and CODE not in str(record)
    assert world.steps == [WalletStep.SUBMITTING, WalletStep.TOPPING_UP]


def test_user_paying_is_queried_until_paid() -> None:
    world = World(_w("user_paying", message="waiting for the customer"),
                  query=(_w("user_paying"), _w("paid", transaction_id="4200002")), create=(APPLIED,))
    outcome = world.pay()
    assert outcome.status is TopupEnd.COMPLETED
    # wallet_waiting is journalled once, however many polls follow
    assert world.journal.states(1) == [S.CREATED, S.WALLET_INTENDED, S.WALLET_WAITING, S.PAID, S.TOPUP_INTENDED,
                                       S.COMPLETED]
    assert world.wallet.calls == [("micropay", world.order_id), ("query", world.order_id),
                                  ("query", world.order_id)]
    assert world.steps == [WalletStep.SUBMITTING, WalletStep.WAITING, WalletStep.TOPPING_UP]
    assert world.progress[1].detail == "waiting for the customer"


def test_cancel_while_the_customer_confirms_cancels_the_order_journal_first() -> None:
    world = World(_w("user_paying"), cancel=(_w("cancelled"),))
    world.cancel_on = WalletStep.WAITING  # CANCEL pressed while the customer looks at the phone
    outcome = world.pay()
    assert outcome.status is TopupEnd.CANCELLED and not outcome.money_moved
    assert outcome.message == Msg("pay.cancelled")
    assert world.journal.states(1) == [S.CREATED, S.WALLET_INTENDED, S.WALLET_WAITING, S.WALLET_CANCEL_PENDING,
                                       S.CANCELLED]
    assert world.wallet.calls == [("micropay", world.order_id), ("cancel", world.order_id)]
    assert world.carrier.calls == [] and world.steps[-1] is WalletStep.CANCELLING


def test_paid_just_before_the_cancel_is_reversed_by_it() -> None:
    world = World(_w("user_paying"), cancel=(_w("refunded"),))
    world.cancel_on = WalletStep.WAITING
    outcome = world.pay()
    assert outcome.status is TopupEnd.REVERSED and outcome.message == Msg("wallet.paid_then_reversed")
    assert world.journal.states(1)[-2:] == [S.WALLET_CANCEL_PENDING, S.REVERSED]
    assert world.journal.get(1).reversal == "cancel" and world.carrier.calls == []


def test_refused_payment_keeps_the_platform_reason_as_a_code() -> None:
    world = World(_w("failed", reason="insufficient_balance", message="余额不足"))
    outcome = world.pay()
    assert outcome.status is TopupEnd.DECLINED
    assert outcome.message == Msg("wallet.reason.insufficient_balance")  # chosen by code, not by its words
    assert world.journal.states(1) == [S.CREATED, S.WALLET_INTENDED, S.DECLINED]
    assert world.journal.get(1).response_code == "insufficient_balance" and world.carrier.calls == []


def test_cancel_before_the_code_leaves_sends_nothing() -> None:
    world = World()
    world.cancel.cancel()
    outcome = world.pay()
    assert outcome.status is TopupEnd.CANCELLED
    assert world.journal.states(1) == [S.CREATED, S.WALLET_INTENDED, S.CANCELLED]
    assert world.wallet.calls == [] and world.carrier.calls == []


def test_lost_answer_is_queried_before_anything_else() -> None:
    world = World(LinkTimeout("wallet silent"), query=(_w("paid"),), create=(APPLIED,))
    outcome = world.pay()
    assert outcome.status is TopupEnd.COMPLETED
    assert world.wallet.calls == [("micropay", world.order_id), ("query", world.order_id)]
    assert world.journal.states(1) == [S.CREATED, S.WALLET_INTENDED, S.WALLET_INTENDED, S.PAID, S.TOPUP_INTENDED,
                                       S.COMPLETED]


def test_wallet_statuses_from_the_wire_become_enum_members() -> None:
    assert _w("user_paying").status is WalletOrderStatus.USER_PAYING
    assert TopupResult("O", "not_found").status == "not_found"


def test_paid_for_another_amount_is_queried_and_undone_never_topped_up() -> None:
    wrong = _w("paid", transaction_id="4200009", amount_minor=1)
    world = World(wrong, query=(wrong,), cancel=(_w("refunded"),))
    outcome = world.pay()
    assert outcome.status is TopupEnd.REVERSED and world.carrier.calls == []
    assert world.wallet.calls == [("micropay", world.order_id), ("query", world.order_id),
                                  ("cancel", world.order_id)]
    assert world.journal.states(1)[-2:] == [S.WALLET_CANCEL_PENDING, S.REVERSED]
    assert outcome.message.key == "wallet.wrong_answer" and "amount" in world.journal.get(1).message


def test_paid_in_another_currency_is_not_believed_but_a_right_answer_on_query_is() -> None:
    world = World(_w("paid", transaction_id="4200010", currency="USD"),
                  query=(_w("paid", transaction_id="4200010"),), create=(APPLIED,))
    outcome = world.pay()
    assert outcome.status is TopupEnd.COMPLETED
    assert world.wallet.calls == [("micropay", world.order_id), ("query", world.order_id)]


def test_boot_recovery_never_tops_up_a_paid_for_another_amount_and_asks_the_sales_own_platform() -> None:
    from flows.wallet_recovery import recover_wallet
    world = World()
    txn = world.journal.begin(order_id="O-CUT", iccid="89860424000000000017", msisdn="1064900000001",
                              plan_id="D1G-1M", plan_name="1 GB", amount_minor=1000, fee_minor=4, channel="alipay",
                              cashier_id="01")
    world.journal.update(txn, S.WALLET_INTENDED)
    alipay = FakeWallet(deque(), deque([_w("paid", transaction_id="2026X", amount_minor=1)]),
                        deque([_w("refunded")]))
    lines, still_open = recover_wallet(world.journal, {"wechat": world.wallet, "alipay": alipay}, world.carrier,
                                       world.clock)
    assert world.journal.get(txn).state == S.REVERSED and still_open == 0
    assert alipay.calls == [("query", "O-CUT"), ("cancel", "O-CUT")] and world.wallet.calls == []
    assert world.carrier.calls == [] and lines[0].key == "wrecovery.refunded"
