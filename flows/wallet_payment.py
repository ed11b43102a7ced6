"""Wallet QR top-ups in both directions, with the same journal-first money safety as cards.

*Customer-presented*: the cashier scans the customer's payment code (``classify_code`` tells WeChat Pay, Alipay
and EMV consumer-presented codes from anything else); the terminal submits it with its own order id. On "user
paying" (the customer confirms on the phone) it polls every ``poll_interval_s`` until paid, failed, the merchant
timeout or CANCEL, then cancels (which reverses an order that got paid meanwhile).

*Merchant-presented*: the terminal registers the order, shows a dynamic EMVCo QR that names the order (terminal
label + bill number), polls until paid, refused, expired or CANCEL, and cancels what is left open.

Journal states (each written before the step it names)::

    created ─► wallet_intended ─► [wallet_waiting] ─► paid ─► topup_intended ─► completed
                   │                  │                               ├─► topup_pending (followed up)
                   │                  │                               └─► topup_failed ─► reversed (refund)
                   ├─► declined (platform refused: nothing taken)     (refund unanswered: wallet_cancel_pending)
                   └──────────────────┴─► cancelled | reversed (paid meanwhile) | wallet_cancel_pending

The journal keeps the code masked (first 6 / last 4) in ``masked_pan``, the wallet's transaction id in ``rrn``
and the platform's reason in ``response_code``. A ``paid`` counts only for exactly the order's total in CNY
(``believable``; the adapters have checked signature, merchant and order id): anything else is queried, and
cancelled (reversed) when still wrong — never topped up.

>>> [str(classify_code(c).kind) for c in ("134567890123456789", "2812345678901234", "hi")]
['wechat', 'alipay', 'None']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from emv.qr import build_mpm, parse_cpm
from emv.tlv import Tlv, decode
from flows.for_people import pair
from flows.messages import CATALOGUE, Msg, Text, say
from flows.ports import (
    CancelToken,
    CarrierPort,
    CarrierStatus,
    Clock,
    JournalPort,
    TopupResult,
    WalletOrderStatus,
    WalletPort,
    WalletReason,
    WalletResult,
    mask_pan,
)
from flows.pricing import CHANNEL_LABELS
from flows.topup_order import TopupEnd, TopupOrder, TopupOutcome
from flows.txn_state import TxnState
from pos_errors import LinkError, LinkTimeout, PosError, RemoteProtocolError

__all__ = ["classify_code", "WalletKind", "CodeClass", "WalletStep", "WalletProgress", "WalletSettings",
           "WalletTopupService", "NOT_A_PAYMENT_CODE", "wallet_message", "apply_topup", "masked_code", "flatten_cpm",
           "qr_bill_number", "believable"]

NOT_A_PAYMENT_CODE = Msg("wallet.not_a_code")
_WECHAT = re.compile(r"1[0-5]\d{16}")
_ALIPAY = re.compile(r"(2[5-9]|30)\d{14,22}")
_REASONS: Mapping[str, Msg] = {reason: Msg(f"wallet.reason.{reason.value}") for reason in WalletReason}


class WalletKind(StrEnum):
    """What kind of payment code the customer showed; the values are the matching payment channels."""

    WECHAT = "wechat"
    ALIPAY = "alipay"
    EMVQR = "emvqr"  # an EMV consumer-presented QR (EMVCo CPM)


@dataclass(frozen=True)
class CodeClass:
    kind: WalletKind | None  # None: not a payment code (``message`` says so)
    message: Text = ""


def classify_code(text: str) -> CodeClass:
    """What kind of payment code the scanner read; ``kind`` None with a cashier message otherwise."""
    text = text.strip()
    if _WECHAT.fullmatch(text):
        return CodeClass(WalletKind.WECHAT)
    if _ALIPAY.fullmatch(text):
        return CodeClass(WalletKind.ALIPAY)
    try:
        parse_cpm(text)
    except PosError:
        return CodeClass(None, NOT_A_PAYMENT_CODE)
    return CodeClass(WalletKind.EMVQR)


def masked_code(code: str) -> str:
    """What the journal and receipt may keep of a payment code: first 6 / last 4 of a wallet code, of the
    application PAN (tag 5A) for an EMV consumer-presented code.

    >>> masked_code("134567890123456789")
    '134567********6789'
    """
    if code.isdigit():
        return mask_pan(code)
    try:
        pan = next((o.value for o in flatten_cpm(parse_cpm(code)) if o.tag == 0x5A), b"")
    except PosError:
        pan = b""
    digits = pan.hex().upper().rstrip("F")
    return mask_pan(digits) if digits.isdigit() else "EMV QR"


def flatten_cpm(objects: list[Tlv]) -> list[Tlv]:
    """The objects of a consumer-presented code with the application templates (61, 62, 63, 64) opened."""
    out: list[Tlv] = []
    for obj in objects:
        out.append(obj)
        if obj.constructed:
            out.extend(flatten_cpm(list(decode(obj.value))))
    return out


def qr_bill_number(order_id: str, terminal_id: str) -> str:
    """The QR's bill number (62.01, at most 25 characters): the order id without its terminal-id prefix, which
    travels as the terminal label (62.07); the platform joins the two back into the order id.

    >>> qr_bill_number("SIM00001261201101500000007", "SIM00001")
    '261201101500000007'
    """
    return order_id[len(terminal_id):] if terminal_id and order_id.startswith(terminal_id) else order_id


def wallet_message(result: WalletResult) -> Msg:
    """The cashier's text for a refused wallet payment: a known reason, else the platform's own words."""
    if result.reason in _REASONS:
        return _REASONS[result.reason]
    status = f"wstatus.{result.status}"
    return Msg("wallet.platform_said", {"text": pair(result.message)}) if result.message else \
        Msg("wallet.not_completed", {"status": Msg(status) if status in CATALOGUE else str(result.status)})


class WalletStep(StrEnum):
    SUBMITTING = "submitting"
    WAITING = "waiting"  # the customer confirms on the phone
    SHOW_QR = "show_qr"  # ``detail`` carries the payload
    CANCELLING = "cancelling"
    TOPPING_UP = "topping_up"


@dataclass(frozen=True)
class WalletProgress:
    step: WalletStep
    detail: str = ""


@dataclass(frozen=True)
class WalletSettings:
    terminal_id: str
    merchant_id: str
    merchant_name: str = "IOT SIM TOPUP"
    city: str = "SHENZHEN"
    mcc: str = "4814"
    account_gui: str = "D156000000000"
    poll_interval_s: float = 3.0
    merchant_timeout_s: float = 90.0
    qr_expiry_s: int = 120
    status_polls: int = 3


Progress = Callable[[WalletProgress], None]


class WalletTopupService:
    """Runs one wallet top-up end to end. Blocking; run it off the UI thread."""

    def __init__(self, wallet: WalletPort | Mapping[str, WalletPort], carrier: CarrierPort, journal: JournalPort,
                 clock: Clock, settings: WalletSettings) -> None:
        """``wallet``: one platform for every channel, or one per channel (``wechat``, ``alipay``, ``emvqr``)."""
        self.wallets: Mapping[str, WalletPort] | None = wallet if isinstance(wallet, Mapping) else None
        self.wallet: WalletPort = next(iter(wallet.values())) if isinstance(wallet, Mapping) else wallet
        self.carrier, self.journal, self.clock, self.settings = carrier, journal, clock, settings
        self._active: dict[str, WalletPort] = {}  # order id → the platform of the sale in progress

    def port(self, channel: str) -> WalletPort:
        """The platform that serves ``channel`` (raises LinkError when none is configured for it)."""
        if self.wallets is None:
            return self.wallet
        if channel not in self.wallets:
            raise LinkError(f"no wallet platform configured for {channel}")
        return self.wallets[channel]

    def _begin(self, order: TopupOrder) -> tuple[int, str]:
        q = order.quote
        order_id = self.journal.next_order_id(self.settings.terminal_id, self.clock.now())
        txn_id = self.journal.begin(order_id=order_id, iccid=order.iccid, msisdn=order.msisdn,
                                    plan_id=q.plan.plan_id, plan_name=q.plan.name, amount_minor=q.amount_minor,
                                    fee_minor=q.fee_minor, channel=q.channel, cashier_id=order.cashier_id,
                                    plan_name_zh=q.plan.name_zh)
        return txn_id, order_id

    def pay_with_code(self, order: TopupOrder, code: str, progress: Progress, cancel: CancelToken) -> TopupOutcome:
        """Customer-presented: charge ``code`` (already classified), then top up."""
        txn_id, order_id = self._begin(order)
        self.journal.update(txn_id, TxnState.WALLET_INTENDED, masked_pan=masked_code(code))
        progress(WalletProgress(WalletStep.SUBMITTING))
        label = CHANNEL_LABELS.get(order.quote.channel, order.quote.channel)
        wallet = self._active[order_id] = self.port(order.quote.channel)
        try:
            return self._submitted(txn_id, order_id, order, lambda: wallet.micropay(
                order_id, code, order.quote.total_minor, f"IoT SIM top-up {order.quote.plan.name} ({label})"),
                progress, cancel, deadline=self.clock.monotonic() + self.settings.merchant_timeout_s)
        finally:
            self._active.pop(order_id, None)

    def pay_by_qr(self, order: TopupOrder, progress: Progress, cancel: CancelToken) -> TopupOutcome:
        """Merchant-presented: show a dynamic QR for the order, wait for the customer's phone, then top up."""
        txn_id, order_id = self._begin(order)
        self.journal.update(txn_id, TxnState.WALLET_INTENDED)
        s = self.settings
        expiry = min(float(s.qr_expiry_s), s.merchant_timeout_s)
        wallet = self._active[order_id] = self.port(order.quote.channel)
        try:
            return self._submitted(txn_id, order_id, order, lambda: wallet.create_qr_order(
                order_id, order.quote.total_minor, f"IoT SIM top-up {order.quote.plan.name}", s.qr_expiry_s),
                progress, cancel, deadline=self.clock.monotonic() + expiry, show_qr=True)
        finally:
            self._active.pop(order_id, None)

    # --- submit, wait, settle --------------------------------------------------------------------------------

    def _submitted(self, txn_id: int, order_id: str, order: TopupOrder, submit: Callable[[], WalletResult],
                   progress: Progress, cancel: CancelToken, *, deadline: float, show_qr: bool = False) -> TopupOutcome:
        if cancel.cancelled:  # CANCEL (or F1: the other direction) came before the request left
            self.journal.update(txn_id, TxnState.CANCELLED, message="cancelled before sending")
            return TopupOutcome(TopupEnd.CANCELLED, Msg("pay.cancelled"), txn_id, order_id)
        try:
            result = submit()
        except (LinkTimeout, RemoteProtocolError) as exc:  # sent, outcome unknown: ask before anything else
            self.journal.update(txn_id, TxnState.WALLET_INTENDED, message=f"wallet: {exc}")
            queried = self._query(order_id)
            if queried is None or queried.status == WalletOrderStatus.NOT_FOUND:
                return self._cancel(txn_id, order_id, Msg("wallet.no_answer"), progress)
            result = queried
        except PosError as exc:  # not sent (unreachable, refused): nothing can have been taken
            self.journal.update(txn_id, TxnState.FAILED, message=f"wallet: {exc}")
            return TopupOutcome(TopupEnd.FAILED, Msg("wallet.unavailable", {"error": exc}), txn_id, order_id)
        if show_qr and result.status == WalletOrderStatus.WAITING:
            q = order.quote
            payload = result.qr_code or build_mpm(
                                account_gui=self.settings.account_gui, merchant_id=self.settings.merchant_id,
                                mcc=self.settings.mcc, amount_minor=q.total_minor,
                                merchant_name=self.settings.merchant_name, city=self.settings.city,
                                bill_number=qr_bill_number(order_id, self.settings.terminal_id),
                                terminal_label=self.settings.terminal_id)
            progress(WalletProgress(WalletStep.SHOW_QR, payload))
        waiting = False
        while result.status in (WalletOrderStatus.USER_PAYING, WalletOrderStatus.WAITING):
            if not waiting:  # journal and screen once; the polls below change nothing durable
                waiting = True
                self.journal.update(txn_id, TxnState.WALLET_WAITING)
                if not show_qr:
                    progress(WalletProgress(WalletStep.WAITING, result.message))
            if self.clock.monotonic() >= deadline:
                return self._cancel(txn_id, order_id, Msg("wallet.not_paid_in_time"), progress)
            if cancel.wait(self.settings.poll_interval_s):
                return self._cancel(txn_id, order_id, Msg("pay.cancelled"), progress)
            result = self._query(order_id) or result
        return self._settled(txn_id, order_id, order, result, progress)

    def _settled(self, txn_id: int, order_id: str, order: TopupOrder, result: WalletResult,
                 progress: Progress) -> TopupOutcome:
        if result.status == WalletOrderStatus.PAID and not believable(result, order.quote.total_minor):
            platform = result.wallet or order.quote.channel
            wrong = Msg("wallet.wrong_answer", {"platform": Msg(f"channel.{platform}") if f"channel.{platform}"
                                                in CATALOGUE else platform,
                                                "amount": result.amount_minor, "currency": result.currency})
            self.journal.update(txn_id, self.journal.get(txn_id).state, message=say(wrong))
            again = self._query(order_id)  # a wrong "paid" is never believed: ask, and undo what is still wrong
            total = order.quote.total_minor
            if again is None or again.status == WalletOrderStatus.PAID and not believable(again, total):
                return self._cancel(txn_id, order_id, wrong, progress)
            result = again
        if result.status == WalletOrderStatus.PAID:
            self.journal.update(txn_id, TxnState.PAID, rrn=result.transaction_id or None)
            progress(WalletProgress(WalletStep.TOPPING_UP))
            return self._topup(txn_id, order_id, order, progress)
        if result.status in (WalletOrderStatus.CANCELLED, WalletOrderStatus.REFUNDED):
            end = TopupEnd.CANCELLED if result.status == WalletOrderStatus.CANCELLED else TopupEnd.REVERSED
            self.journal.update(txn_id, TxnState(end), response_code=result.reason or None,
                                message=say(wallet_message(result)))
            return TopupOutcome(end, wallet_message(result), txn_id, order_id)
        self.journal.update(txn_id, TxnState.DECLINED, response_code=result.reason or result.status,
                            message=say(wallet_message(result)))
        return TopupOutcome(TopupEnd.DECLINED, wallet_message(result), txn_id, order_id)

    def _wallet(self, order_id: str) -> WalletPort:
        return self._active.get(order_id, self.wallet)

    def _query(self, order_id: str) -> WalletResult | None:
        for i in range(self.settings.status_polls):
            if i:
                self.clock.sleep(min(1.0, self.settings.poll_interval_s))
            try:
                return self._wallet(order_id).query(order_id)
            except (LinkError, RemoteProtocolError):
                continue
        return None

    def _cancel(self, txn_id: int, order_id: str, why: Msg, progress: Progress) -> TopupOutcome:
        """Cancel the order (the platform reverses it if it got paid meanwhile). Journalled first."""
        progress(WalletProgress(WalletStep.CANCELLING))
        self.journal.update(txn_id, TxnState.WALLET_CANCEL_PENDING, message=say(why))
        try:
            result = self._wallet(order_id).cancel(order_id)
        except PosError as exc:
            self.journal.update(txn_id, TxnState.WALLET_CANCEL_PENDING, message=f"{say(why)}; cancel unanswered: {exc}")
            return TopupOutcome(TopupEnd.REVERSAL_PENDING, Msg("wallet.cancel_queued", {"what": why}), txn_id, order_id)
        if result.status == WalletOrderStatus.REFUNDED and why.key != "wallet.wrong_answer":  # paid after all
            why = Msg("wallet.paid_then_reversed")
        end = TopupEnd.REVERSED if result.status == WalletOrderStatus.REFUNDED else TopupEnd.CANCELLED
        self.journal.update(txn_id, TxnState(end), reversal="cancel", response_code=result.reason or None,
                            message=say(why))
        return TopupOutcome(end, why, txn_id, order_id)

    # --- top-up at the carrier -------------------------------------------------------------------------------

    def _topup(self, txn_id: int, order_id: str, order: TopupOrder, progress: Progress) -> TopupOutcome:
        q = order.quote
        self.journal.update(txn_id, TxnState.TOPUP_INTENDED)
        result = apply_topup(self.carrier, self.clock, order_id, order.iccid, q.plan.plan_id, q.amount_minor,
                             polls=self.settings.status_polls, funding_ref=self.journal.get(txn_id).rrn or "")
        if result is not None and result.status == CarrierStatus.APPLIED:
            self.journal.update(txn_id, TxnState.COMPLETED, topup_status=CarrierStatus.APPLIED,
                                balance_after_minor=result.balance_minor)
            return TopupOutcome(TopupEnd.COMPLETED, Msg("topup.applied"), txn_id, order_id, result.balance_minor)
        if result is not None and result.status == CarrierStatus.FAILED:
            self.journal.update(txn_id, TxnState.TOPUP_FAILED, topup_status=CarrierStatus.FAILED,
                                message=result.message)
            return self.refund(txn_id, order_id, q.total_minor,
                               Msg("wallet.topup_refused", {"reason": pair(result.message)}))
        self.journal.update(txn_id, TxnState.TOPUP_PENDING, topup_status=CarrierStatus.PENDING)
        return TopupOutcome(TopupEnd.PENDING, Msg("topup.pending", {"order": order_id}), txn_id, order_id)

    def refund(self, txn_id: int, order_id: str, amount_minor: int, why: Msg) -> TopupOutcome:
        self.journal.update(txn_id, TxnState.WALLET_CANCEL_PENDING, message=say(why))
        try:
            result = self._wallet(order_id).refund(order_id, amount_minor)
        except PosError:
            return TopupOutcome(TopupEnd.REVERSAL_PENDING, Msg("wallet.refund_queued", {"what": why}), txn_id, order_id)
        if result.status != WalletOrderStatus.REFUNDED:
            return TopupOutcome(TopupEnd.REVERSAL_PENDING, Msg("wallet.refund_queued", {"what": why}), txn_id, order_id)
        self.journal.update(txn_id, TxnState.REVERSED, reversal="refund")
        return TopupOutcome(TopupEnd.REVERSED, why, txn_id, order_id)


def believable(result: WalletResult, total_minor: int) -> bool:
    """A "paid" counts only for exactly the amount the terminal asked, in CNY (the adapters have already checked
    the signature, the merchant and the order id)."""
    return result.amount_minor == total_minor and result.currency == "CNY"


def apply_topup(carrier: CarrierPort, clock: Clock, order_id: str, iccid: str, plan_id: str, amount_minor: int,
                *, polls: int = 3, funding_ref: str = "") -> TopupResult | None:
    """Create the top-up (``funding_ref``: the wallet's transaction id that pays it); when the answer is lost ask
    the order's status, and resend only if it never arrived. Returns the carrier's ``TopupResult`` or None when it
    never answered."""
    try:
        return carrier.create_topup(order_id, iccid, plan_id, amount_minor, funding_ref=funding_ref)
    except (LinkError, RemoteProtocolError):
        pass
    for i in range(polls):
        if i:
            clock.sleep(1.0)
        try:
            result = carrier.order_status(order_id)
        except (LinkError, RemoteProtocolError):
            continue
        if result.status == CarrierStatus.NOT_FOUND:
            try:
                return carrier.create_topup(order_id, iccid, plan_id, amount_minor, funding_ref=funding_ref)
            except (LinkError, RemoteProtocolError):
                continue
        if result.status != CarrierStatus.PENDING:
            return result
    return None
