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

from flows.messages import Msg, say
from flows.money import format_money
from flows.ports import CancelToken
from flows.topup import TopupOrder, TopupOutcome
from flows.wallet_payment import WalletProgress, WalletStep, classify_code
from pos_errors import Cancelled, DeviceError
from terminal.screens import Key

if TYPE_CHECKING:
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
        def _refuse_new_sale(self) -> TopupOutcome | None: ...
        def _locked(self, work: Callable[[TopupOrder, int], Any], order: TopupOrder, generation: int) -> Any: ...
        def _fresh_balance(self, order: TopupOrder, outcome: TopupOutcome) -> Any: ...
        def _progress_poster(self, generation: int) -> Callable[[Any], None]: ...
        def _say(self, key: str, **args: Any) -> str: ...

    def _limits_line(self, channel: str) -> str:
        lim = self.settings.fees.limits_for(channel)
        parts = [Msg(key, {"money": format_money(v)}) for key, v in (
            ("wallet.limit_min", lim.min_minor), ("wallet.limit_max", lim.max_minor),
            ("wallet.limit_daily", lim.daily_minor)) if v]
        return self._say("wallet.limits", parts=tuple(parts)) if parts else ""


    def _scan_work(self, order: TopupOrder, generation: int) -> Any:
        """Scan until a payment code of the chosen wallet arrives, then pay with it. Runs in a worker."""
        sv, cancel = self.services, self._cancel
        post = self._progress_poster(generation)
        if sv.scanner is None or sv.wallet_topup is None:
            return TopupOutcome("failed", Msg("wallet.not_configured"), 0, ""), None
        if sv.journal.open_transactions():
            refused = self._refuse_new_sale()
            if refused is not None:
                return refused, None
        try:
            while True:
                code = sv.scanner.scan(self.settings.wallet.scan_timeout_s, cancel)
                if code is None:
                    return TopupOutcome("cancelled", Msg("wallet.no_code"), 0, ""), None
                kind = classify_code(code)
                if kind.kind is None:
                    post(kind.message)
                elif kind.kind != order.quote.channel:
                    post(Msg("wallet.wrong_kind", {"got": Msg(f"channel.{kind.kind}"),
                                                   "want": Msg(f"channel.{order.quote.channel}")}))
                else:
                    break
        except Cancelled:
            return TopupOutcome("cancelled", Msg("pay.cancelled"), 0, ""), None
        except DeviceError as exc:  # the QR direction still works: F1 stays offered until CANCEL or timeout
            post(Msg("wallet.scanner_down", {"error": exc}))
            cancel.wait(self.settings.wallet.scan_timeout_s)
            return TopupOutcome("cancelled", Msg("wallet.scanner_down_end"), 0, ""), None
        outcome = sv.wallet_topup.pay_with_code(order, code, post, cancel)
        return outcome, self._fresh_balance(order, outcome)

    def _qr_work(self, order: TopupOrder, generation: int) -> Any:
        sv = self.services
        assert sv.wallet_topup is not None  # noqa: S101 - F1 is offered only when wired
        outcome = sv.wallet_topup.pay_by_qr(order, self._progress_poster(generation), self._cancel)
        return outcome, self._fresh_balance(order, outcome)

    def _on_wallet_progress(self, step: WalletProgress | Msg | str) -> None:
        s = self.session
        if not isinstance(step, WalletProgress):
            s.error = say(step, s.lang)
            self._refresh()
            return
        s.error = None
        texts = {WalletStep.SUBMITTING: "wallet.step_submitting", WalletStep.WAITING: "wallet.step_waiting",
                 WalletStep.CANCELLING: "wallet.step_cancelling", WalletStep.TOPPING_UP: "pay.topping_up"}
        s.progress = self._say(texts[step.step]) if step.step in texts else ""
        if step.step in (WalletStep.SUBMITTING, WalletStep.TOPPING_UP):
            s.wallet_busy = True
        if step.step is WalletStep.SHOW_QR:
            s.qr_payload, s.progress = step.detail, self._say("wallet.step_qr")
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
            self._spawn("payment", lambda: self._locked(self._qr_work, order, generation))

    def _key_wallet_waiting(self, key: Key) -> None:
        if key is Key.CANCEL and self.session.progress == self._say("pay.topping_up"):
            self.session.error = self._say("wallet.wait_carrier")
            self._refresh()
        elif key is Key.CANCEL:
            self._cancel.cancel()

    _key_show_qr = _key_wallet_waiting
