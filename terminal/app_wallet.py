"""The terminal app's wallet screens: scan the customer's code, show the terminal's QR, wait with CANCEL.

A mixin of ``terminal.app.TerminalApp`` (same thread rules: ``_key_*`` and progress handlers run on the app
thread, ``*_work`` in a worker that posts progress through ``_progress_poster``). Kept apart so the card path and
the wallet path can change independently.

>>> WalletScreens._key_show_qr is WalletScreens._key_wallet_waiting
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emv.errors import Cancelled, DeviceError
from flows.money import format_money
from flows.ports import CancelToken
from flows.pricing import CHANNEL_LABELS
from flows.topup import TopupOrder, TopupOutcome
from flows.wallet_payment import WalletProgress, WalletStep, classify_code
from terminal.screens import Key

if TYPE_CHECKING:
    from flows.messages import Text
    from terminal.config import Settings
    from terminal.machine import State
    from terminal.services import Services
    from terminal.views import Session

__all__ = ["WalletScreens"]


class WalletScreens:
    """Wallet key handlers, workers and progress for ``TerminalApp`` (which provides the attributes below)."""

    services: Services
    settings: Settings
    session: Session
    state: State
    _cancel: CancelToken
    _generation: int
    may_trigger: Callable[[str], bool]

    if TYPE_CHECKING:
        def _fire(self, trigger: str) -> None: ...
        def _refresh(self) -> None: ...
        def _spawn(self, kind: str, work: Callable[[], Any]) -> None: ...
        def _recover_all(self) -> list[Text]: ...
        def _fresh_balance(self, order: TopupOrder, outcome: TopupOutcome) -> Any: ...
        def _progress_poster(self, generation: int) -> Callable[[Any], None]: ...

    def _limits_line(self, channel: str) -> str:
        lim = self.settings.fees.limits_for(channel)
        parts = [f"{label} {format_money(v)}" for label, v in (("min", lim.min_minor), ("max", lim.max_minor),
                                                               ("per SIM per day", lim.daily_minor)) if v]
        return f"Limits / 限额: {', '.join(parts)}" if parts else ""


    def _scan_work(self, order: TopupOrder, generation: int) -> Any:
        """Scan until a payment code of the chosen wallet arrives, then pay with it. Runs in a worker."""
        sv, cancel = self.services, self._cancel
        post = self._progress_poster(generation)
        if sv.scanner is None or sv.wallet_topup is None:
            return TopupOutcome("failed", "No scanner or wallet configured / 未配置扫码器或钱包", 0, ""), None
        if sv.journal.open_transactions():
            self._recover_all()
        try:
            while True:
                code = sv.scanner.scan(self.settings.wallet.scan_timeout_s, cancel)
                if code is None:
                    return TopupOutcome("cancelled", "No code scanned in time — nothing charged / "
                                        "未扫到付款码，未扣款", 0, ""), None
                kind = classify_code(code)
                if kind.kind is None:
                    post(kind.message)
                elif kind.kind != order.quote.channel:
                    post(f"That is a {CHANNEL_LABELS[kind.kind]} code; this payment is "
                         f"{CHANNEL_LABELS[order.quote.channel]} — scan again or CANCEL / 付款码与所选支付方式不符")
                else:
                    break
        except Cancelled:
            return TopupOutcome("cancelled", "Cancelled — nothing charged / 已取消，未扣款", 0, ""), None
        except DeviceError as exc:  # the QR direction still works: F1 stays offered until CANCEL or timeout
            post(f"Scanner not available ({exc}) — F1 shows a QR instead / 扫码器不可用，可按 F1 展示收款码")
            cancel.wait(self.settings.wallet.scan_timeout_s)
            return TopupOutcome("cancelled", "Scanner not available — nothing charged / 扫码器不可用，未扣款",
                                0, ""), None
        outcome = sv.wallet_topup.pay_with_code(order, code, post, cancel)
        return outcome, self._fresh_balance(order, outcome)

    def _qr_work(self, order: TopupOrder, generation: int) -> Any:
        sv = self.services
        assert sv.wallet_topup is not None  # noqa: S101 - F1 is offered only when wired
        outcome = sv.wallet_topup.pay_by_qr(order, self._progress_poster(generation), self._cancel)
        return outcome, self._fresh_balance(order, outcome)

    def _on_wallet_progress(self, step: WalletProgress | str) -> None:
        s = self.session
        if isinstance(step, str):
            s.error = step
            self._refresh()
            return
        s.error = None
        texts = {WalletStep.SUBMITTING: "Sending the code to the wallet / 正在提交付款码",
                 WalletStep.WAITING: "Customer is confirming on the phone / 顾客正在手机上确认支付",
                 WalletStep.CANCELLING: "Cancelling the order / 正在撤销订单",
                 WalletStep.TOPPING_UP: "Paid. Topping up at the carrier / 已付款，正在充值"}
        s.progress = texts.get(step.step, "")
        if step.step in (WalletStep.SUBMITTING, WalletStep.TOPPING_UP):
            s.wallet_busy = True
        if step.step is WalletStep.SHOW_QR:
            s.qr_payload, s.progress = step.detail, "Waiting for the customer to pay / 等待顾客支付"
            self._fire("show_qr")
        elif step.step is not WalletStep.CANCELLING and self.may_trigger("wallet_waiting"):
            self._fire("wallet_waiting")
        else:
            self._refresh()

    def _key_scan_code(self, key: Key) -> None:
        s = self.session
        if key is Key.CANCEL:
            self._cancel.cancel()
        elif key is Key.F1 and not s.wallet_busy and s.sim and s.quote and s.user \
                and self.services.wallet_topup is not None:
            self._cancel.cancel()  # stops the scan; its worker's answer is dropped by the generation
            self._cancel = CancelToken()
            s.wallet_busy, s.error = True, None
            order = TopupOrder(s.sim.iccid, s.sim.msisdn, s.quote, s.user.user_id)
            generation = self._generation + 1
            self._spawn("payment", lambda: self._qr_work(order, generation))

    def _key_wallet_waiting(self, key: Key) -> None:
        if key is Key.CANCEL and self.session.progress.startswith("Paid"):
            self.session.error = "Please wait — the carrier is being asked / 请稍候，正在充值"
            self._refresh()
        elif key is Key.CANCEL:
            self._cancel.cancel()

    _key_show_qr = _key_wallet_waiting
