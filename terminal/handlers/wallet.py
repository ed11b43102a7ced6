"""The wallet screens: scan the customer's code, show the terminal's QR (F1), wait with CANCEL.

>>> WalletWaiting().__class__.__name__
'WalletWaiting'
"""

from __future__ import annotations

from typing import Any

from flows.messages import say
from flows.topup import TopupOrder
from flows.wallet_payment import WalletProgress, WalletStep
from terminal.core import TerminalCore
from terminal.handlers.result import payment_done
from terminal.screens import Key
from terminal.work import pay_by_qr, scan_and_pay

__all__ = ["ScanCode", "WalletWaiting", "start_scan", "on_wallet_progress"]

_STEP_TEXTS = {WalletStep.SUBMITTING: "wallet.step_submitting", WalletStep.WAITING: "wallet.step_waiting",
               WalletStep.CANCELLING: "wallet.step_cancelling", WalletStep.TOPPING_UP: "pay.topping_up"}


def start_scan(core: TerminalCore, order: TopupOrder) -> None:
    core.session.topping_up = False
    core.start("payment", scan_and_pay(order), payment_done, on_wallet_progress)


def on_wallet_progress(core: TerminalCore, step: Any) -> None:
    s = core.session
    if not isinstance(step, WalletProgress):  # a message for the cashier (not a payment code, wrong wallet …)
        s.error = say(step, s.lang)
        core.refresh()
        return
    s.error = None
    s.progress = core.say(_STEP_TEXTS[step.step]) if step.step in _STEP_TEXTS else ""
    s.topping_up = step.step is WalletStep.TOPPING_UP
    if step.step in (WalletStep.SUBMITTING, WalletStep.TOPPING_UP):
        s.wallet_busy = True
    if step.step is WalletStep.SHOW_QR:
        s.qr_payload, s.progress = step.detail, core.say("wallet.step_qr")
        core.fire("show_qr")
    elif step.step is not WalletStep.CANCELLING and core.may_trigger("wallet_waiting"):
        core.fire("wallet_waiting")
    else:
        core.refresh()


class ScanCode:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key is Key.CANCEL:
            core.cancel_work()
        elif key is Key.F1 and not s.wallet_busy and s.sim and s.quote and s.user \
                and core.services.wallet_topup is not None:
            core.cancel_work()  # stops the scan; its answer is dropped (a newer work replaces it)
            s.wallet_busy, s.error = True, None
            order = TopupOrder(s.sim.iccid, s.sim.msisdn, s.quote, s.user.user_id)
            core.start("payment", pay_by_qr(order), payment_done, on_wallet_progress)


class WalletWaiting:
    """Show QR and waiting for the customer: CANCEL cancels the order, refused once the top-up runs."""

    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL and core.session.topping_up:
            core.session.error = core.say("wallet.wait_carrier")
            core.refresh()
        elif key is Key.CANCEL:
            core.cancel_work()
