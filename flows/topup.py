"""The top-up transaction: pay, then apply the top-up at the carrier exactly once, or give the money back.

Journal states of one row (each written before the external step it names, and again after its answer)::

    created ─► auth_intended ─► approved ─► paid ─► topup_intended ─► completed
                   │               │                     ├─► topup_pending (carrier silent: followed up)
                   │               │                     └─► topup_failed ─► reversal_pending ─► reversed
                   │               └─► card_declined_after_approval / card_removed_after_approval ─► reversal…
                   ├─► declined / auth_failed (nothing charged)
                   └─► auth_unknown ─► reversal_pending ─► reversed
    created ─► cancelled / failed (no money moved)

The carrier has no idempotency of its own, so the order id is the terminal's, stored at ``created``; before any
retry the order's status is asked first. The value types (``TopupOrder``, ``TopupEnd``, ``TopupOutcome``) live in
``flows.topup_order``, which imports no card machinery; they are re-exported here.

>>> TopupOutcome(TopupEnd.CANCELLED, "x", 1, "O1").money_moved
False
"""

from __future__ import annotations

from collections.abc import Callable

from flows import card_slot
from flows.card_payment import CardPaymentPorts, CardPaymentResult, CardPaymentSettings, PaymentStatus, Step
from flows.contactless_payment import TapSettings, pay_by_tap
from flows.for_people import pair
from flows.magstripe_payment import pay_card_or_stripe
from flows.messages import Msg, Text, say
from flows.ports import (
    CancelToken,
    CarrierPort,
    CarrierStatus,
    ContactlessReaderPort,
    JournalPort,
    TopupResult,
    TxnRecord,
)
from flows.reversal import reverse_payment
from flows.topup_order import MONEY_MOVED, TopupEnd, TopupEndName, TopupOrder, TopupOutcome
from flows.txn_state import TxnState
from pos_errors import LinkError, LinkTimeout, RemoteProtocolError

__all__ = ["TopupOrder", "TopupEnd", "TopupEndName", "TopupOutcome", "MONEY_MOVED", "TopupService", "Step"]


_NOT_PAID = {PaymentStatus.DECLINED: TopupEnd.DECLINED, PaymentStatus.CANCELLED: TopupEnd.CANCELLED}


class TopupService:
    """Runs one card top-up end to end. Blocking; run it off the UI thread."""

    def __init__(self, carrier: CarrierPort, card: CardPaymentPorts, settings: CardPaymentSettings, *,
                 status_polls: int = 3, poll_interval_s: float = 1.0,
                 tap: tuple[ContactlessReaderPort, TapSettings] | None = None) -> None:
        self.carrier = carrier
        self.tap = tap  # the reader's contactless side and its settings; None: the reader has none
        self.card = card
        self.settings = settings
        self.status_polls = status_polls
        self.poll_interval_s = poll_interval_s

    @property
    def journal(self) -> JournalPort:
        return self.card.journal

    def run_card(self, order: TopupOrder, progress: Callable[[Step], None], cancel: CancelToken) -> TopupOutcome:
        """Pay by card and apply the top-up; then, whatever the outcome, a card still in the slot is asked out."""
        outcome = self._run_card(order, progress, cancel)
        if self.card.reader.card_present():
            progress(Step.REMOVE_CARD)
            card_slot.beep(self.card.reader)
        return outcome

    def _run_card(self, order: TopupOrder, progress: Callable[[Step], None], cancel: CancelToken) -> TopupOutcome:
        q = order.quote
        order_id = self.journal.next_order_id(self.settings.terminal_id, self.card.clock.now())
        txn_id = self.journal.begin(order_id=order_id, iccid=order.iccid, msisdn=order.msisdn,
                                    plan_id=q.plan.plan_id, plan_name=q.plan.name, amount_minor=q.amount_minor,
                                    fee_minor=q.fee_minor, channel=q.channel, cashier_id=order.cashier_id,
                                    plan_name_zh=q.plan.name_zh)
        paid = self._pay(txn_id, q.channel, q.total_minor, progress, cancel, order.started_at)
        if paid.status in (PaymentStatus.UNKNOWN, PaymentStatus.REVERSE):
            progress(Step.REVERSING)
            return self._reverse(txn_id, order_id, paid, paid.message)
        if not paid.approved:
            end = _NOT_PAID.get(paid.status, TopupEnd.FAILED)
            self.journal.update(txn_id, TxnState(end), response_code=paid.response_code, message=say(paid.message))
            return TopupOutcome(end, paid.message, txn_id, order_id, payment=paid)
        progress(Step.TOPPING_UP)
        return self._apply(txn_id, order_id, order, paid)

    def _pay(self, txn_id: int, channel: str, amount_minor: int, progress: Callable[[Step], None],
             cancel: CancelToken, started_at: float | None = None) -> CardPaymentResult:
        """Tap when the channel is ``tap`` (Try Another Interface: the card goes in the slot), else chip/stripe."""
        if channel == "tap" and self.tap is not None:
            reader, tap = self.tap
            paid = pay_by_tap(self.card, reader, self.settings, tap, txn_id=txn_id, amount_minor=amount_minor,
                              progress=progress, cancel=cancel)
            if not paid.try_contact:
                return paid
            # Try Another Interface: nothing was charged; the same sale goes on in the slot, recorded as a chip sale
            self.journal.update(txn_id, TxnState.CREATED, channel="card")
            progress(Step.TAP_INSERT)
        return pay_card_or_stripe(self.card, self.settings, txn_id=txn_id, amount_minor=amount_minor,
                                  progress=progress, cancel=cancel, started_at=started_at)

    def _apply(self, txn_id: int, order_id: str, order: TopupOrder, paid: CardPaymentResult) -> TopupOutcome:
        q = order.quote
        self.journal.update(txn_id, TxnState.TOPUP_INTENDED)
        try:
            rrn = paid.auth.rrn if paid.auth else ""  # names the payment that funds it
            result: TopupResult | None = self.carrier.create_topup(order_id, order.iccid, q.plan.plan_id,
                                                                   q.amount_minor, funding_ref=rrn)
        except (LinkTimeout, RemoteProtocolError, LinkError) as exc:
            self.journal.update(txn_id, TxnState.TOPUP_INTENDED, message=f"carrier: {exc}")
            result = self.follow_up(order_id)
            if result is not None and result.status == CarrierStatus.NOT_FOUND:
                result = self._resend(order_id, order)
        return self._settle(txn_id, order_id, result, paid)

    def _resend(self, order_id: str, order: TopupOrder) -> TopupResult | None:
        """The order never arrived: sending the same order id again is safe."""
        q = order.quote
        try:
            return self.carrier.create_topup(order_id, order.iccid, q.plan.plan_id, q.amount_minor)
        except (LinkError, RemoteProtocolError):
            return self.follow_up(order_id)

    def follow_up(self, order_id: str) -> TopupResult | None:
        """Ask the carrier for the order's status a few times; None when it never answered."""
        for i in range(self.status_polls):
            if i:
                self.card.clock.sleep(self.poll_interval_s)
            try:
                result = self.carrier.order_status(order_id)
            except (LinkError, RemoteProtocolError):
                continue
            if result.status != CarrierStatus.PENDING:
                return result
        return None

    def _settle(self, txn_id: int, order_id: str, result: TopupResult | None,
                paid: CardPaymentResult) -> TopupOutcome:
        if result is not None and result.status == CarrierStatus.APPLIED:
            self.journal.update(txn_id, TxnState.COMPLETED, topup_status=CarrierStatus.APPLIED,
                                balance_after_minor=result.balance_minor)
            return TopupOutcome(TopupEnd.COMPLETED, Msg("topup.applied"), txn_id, order_id,
                                result.balance_minor, paid)
        if result is not None and result.status == CarrierStatus.FAILED:
            self.journal.update(txn_id, TxnState.TOPUP_FAILED, topup_status=CarrierStatus.FAILED,
                                message=result.message)
            return self._reverse(txn_id, order_id, paid,
                                 Msg("topup.refused", {"reason": pair(result.message)}))
        self.journal.update(txn_id, TxnState.TOPUP_PENDING, topup_status=CarrierStatus.PENDING)
        return TopupOutcome(TopupEnd.PENDING, Msg("topup.pending", {"order": order_id}), txn_id, order_id, None, paid)

    def _reverse(self, txn_id: int, order_id: str, paid: CardPaymentResult, message: Text) -> TopupOutcome:
        record: TxnRecord = self.journal.get(txn_id)
        ok = reverse_payment(self.card.host, self.journal, record, terminal_id=self.settings.terminal_id,
                             merchant_id=self.settings.merchant_id)
        if ok:
            return TopupOutcome(TopupEnd.REVERSED, message, txn_id, order_id, payment=paid)
        refused = self.journal.get(txn_id).state == TxnState.REVERSAL_REFUSED  # the host said no: a supervisor refunds
        key = "topup.reversal_refused" if refused else "topup.reversal_queued"
        return TopupOutcome(TopupEnd.REVERSAL_PENDING, Msg(key, {"what": message}), txn_id, order_id, payment=paid)
