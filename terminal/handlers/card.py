"""The card payment screens: insert / swipe, card reading, PIN entry, processing. Progress from the payment flow
(``flows.card_payment.Step``) moves between them; CANCEL stops the payment while nothing has gone online.

>>> SWIPE_MESSAGES[Step.BAD_SWIPE], SWIPE_MESSAGES[Step.REMOVE_AND_INSERT]
('swipe.bad', 'slot.remove_and_insert')
"""

from __future__ import annotations

from typing import Any

from flows.card_payment import Step
from flows.messages import CATALOGUE
from flows.money import format_money
from flows.topup import TopupOrder
from terminal.core import TerminalCore
from terminal.handlers.result import payment_done
from terminal.screens import Key
from terminal.work import pay_card

__all__ = ["CardPayment", "Processing", "start_card", "SWIPE_MESSAGES", "TAP_MESSAGES"]

SWIPE_MESSAGES = {  # magstripe and chip fallback, shown on the "insert or swipe" screen (catalogue keys)
    Step.INSERT_CHIP: "swipe.insert_chip",
    Step.SWIPE_FALLBACK: "swipe.fallback",
    Step.BAD_SWIPE: "swipe.bad",
    Step.REMOVE_AND_INSERT: "slot.remove_and_insert",
}
TAP_MESSAGES = {  # contactless prompts (Entry Point UI requests), shown on the "tap" screen's error line
    Step.TAP_ONE_CARD: "tap.one_card",
    Step.TAP_AGAIN: "tap.again",
    Step.TAP_SEE_PHONE: "tap.see_phone",
    Step.TAP_INSERT: "tap.insert_card",
    Step.TAP_UPDATE: "tap.update",
    Step.TAP_REMOVE: "tap.remove_first",
}
_TRIGGERS = {Step.READING_CARD: "card_reading", Step.PIN_ENTRY: "pin_entry", Step.AUTHORIZING: "authorizing"}


def tap_limits_line(core: TerminalCore) -> str:
    """The contactless limits that apply: ``[contactless]``'s, then each scheme whose ``per_aid`` table makes
    them differ (its name from the catalogue, ``tap.scheme.<RID>``). Over the tap limit the card is inserted
    instead; from the CVM required limit on, the customer verifies (PIN on the PIN pad, or on the phone)."""
    cl = core.settings.contactless
    none = core.say("tap.cvm.n/a")

    def line(limits: dict[str, Any]) -> str:
        limit, cvm = limits["limit_minor"], limits["cvm_required_limit_minor"]
        return core.say("tap.limits", limit=format_money(limit) if limit >= 0 else none,
                        cvm=format_money(cvm) if cvm >= 0 else none)

    common = line(cl.limits_for(""))
    parts = [common]
    for rid in sorted({k.upper() for k in cl.per_aid}):
        own = line(cl.limits_for(rid))
        if own != common:
            scheme = core.say(f"tap.scheme.{rid}") if f"tap.scheme.{rid}" in CATALOGUE else rid
            parts.append(core.say("tap.limits_scheme", scheme=scheme, limits=own))
    return " · ".join(parts)


def start_card(core: TerminalCore, order: TopupOrder) -> None:
    core.start("payment", pay_card(order), payment_done, on_card_progress)


def on_card_progress(core: TerminalCore, step: Any) -> None:
    s = core.session
    trigger = _TRIGGERS.get(step)
    if step is Step.WRONG_PIN:
        s.error, s.hint_code = core.say("pay.wrong_pin"), None
    elif step in SWIPE_MESSAGES or step in TAP_MESSAGES:
        s.error, s.hint_code = core.say(SWIPE_MESSAGES.get(step) or TAP_MESSAGES[step]), step
        if core.may_trigger("card_again"):  # back to "insert or swipe" after a failed chip
            core.fire("card_again")
            return
    elif step in (Step.WAIT_CARD, Step.TAP_CARD):  # the screen changes (its spinner stops): the customer's turn
        s.card_waiting = True
    elif step is Step.REMOVE_CARD:  # the transaction is over: the result screen asks for the card too
        s.remove_card = True
    elif step is Step.READING_CARD and s.hint_code is not None:
        s.error, s.hint_code = None, None  # the card is being read now: the earlier hint is over
    elif step is Step.TOPPING_UP:
        s.progress, s.error, s.hint_code = core.say("pay.topping_up"), None, None
    elif step is Step.REVERSING:
        s.progress = core.say("pay.reversing")
    elif step is Step.AUTHORIZING:
        s.error, s.hint_code = None, None
    if trigger and core.may_trigger(trigger):
        core.fire(trigger)
    else:
        core.refresh()


class CardPayment:
    """Insert card, card reading and PIN entry: CANCEL ends the payment (and the PIN pad's entry)."""

    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.cancel_work(abort_pinpad=True)


class Processing:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.session.error = core.say("pay.wait")
            core.refresh()
