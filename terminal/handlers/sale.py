"""Plan choice, payment channel, the read-back confirmation and the duplicate warning; then the payment starts.

The rules live in ``flows``: pricing and the spending limits (``flows.pricing.quote``, what was spent counted as
``flows.sale_checks.spent_today`` counts it: summed by the journal), the duplicate guard
(``flows.duplicate``). This module types, asks them and moves between screens.

>>> Confirm().__class__.__name__
'Confirm'
"""

from __future__ import annotations

import datetime as dt
import logging

from flows.duplicate import describe, find_duplicate, window_start
from flows.messages import say
from flows.pricing import TAP_CHANNEL, WALLET_CHANNELS, quote
from flows.sale_checks import NOT_SPENT_STATES, spent_today
from flows.topup import TopupOrder
from terminal.core import TerminalCore
from terminal.handlers import card, wallet
from terminal.handlers.advice import open_advice, pick_plan
from terminal.screens import Key
from terminal.views import keyed_kind, limits_parts

__all__ = ["PlanSelect", "ChannelSelect", "Confirm", "DuplicateWarning", "pick_plan", "start_payment"]

log = logging.getLogger("terminal.sale")


def _limits_line(core: TerminalCore, channel: str) -> str:
    parts = limits_parts(core.settings.fees, channel)
    line = core.say("wallet.limits", parts=parts) if parts else ""
    if channel == TAP_CHANNEL:  # the contactless limits (Book B §3.1.1), in the cashier's language
        line = " · ".join(filter(None, (line, card.tap_limits_line(core))))
    return line


def start_payment(core: TerminalCore) -> None:
    s = core.session
    if s.sim is None or s.quote is None or s.user is None:
        return
    s.remove_card = s.card_waiting = False  # busy until the reader waits for the card
    order = TopupOrder(s.sim.iccid, s.sim.msisdn, s.quote, s.user.user_id, started_at=core.now)
    if s.quote.channel in WALLET_CHANNELS:
        core.fire("scan_code")
        wallet.start_scan(core, order)
    else:
        core.fire("confirmed")
        card.start_card(core, order)


def _earlier_same_sale(core: TerminalCore) -> bool:
    s = core.session
    if s.sim is None or s.quote is None:
        return False
    now, window = core.wall_clock(), core.settings.terminal.duplicate_window_s
    damaged: dict[str, str] = {}  # this SIM's rows in the window that cannot be decoded: maybe an earlier payment
    recent = core.services.journal.for_sim_since(s.sim.iccid, window_start(now, window), into=damaged)
    earlier = find_duplicate(recent, iccid=s.sim.iccid, total_minor=s.quote.total_minor, now=now, window_s=window,
                             amount_minor=s.quote.amount_minor)
    skipped = sorted(damaged, key=lambda row: (len(row), row))  # "txn 7", "txn 12"
    core.services.journal.quarantined.update(damaged)
    s.duplicate = tuple(say(line, s.lang) for line in describe(earlier, now, skipped)) if earlier or skipped else ()
    s.duplicate_rows = ", ".join(skipped)
    return earlier is not None or bool(skipped)


def _spent_today(core: TerminalCore, channel: str, today: dt.date) -> int:
    """What the SIM already paid today on ``channel``: summed by the journal; when a row of it does not read as
    written, from the rows it can decode (that row quarantined), as ``flows.sale_checks.spent_today`` counts."""
    journal, sim = core.services.journal, core.session.sim
    if sim is None:
        return 0
    spent = journal.spent_on(sim.iccid, today.isoformat(), channel, tuple(sorted(NOT_SPENT_STATES)))
    if spent is None:
        spent = spent_today(journal.for_sim_on(sim.iccid, today.isoformat()), channel=channel, day=today)
    return spent


class PlanSelect:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key is Key.CANCEL:
            s.error = None
            core.fire("back")
        elif key is Key.D0 and s.plans:
            open_advice(core)
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(s.plans)):
            pick_plan(core, s.plans[int(key.digit) - 1])


class ChannelSelect:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, cfg = core.session, core.settings
        channels = list(s.channels)
        if key is Key.CANCEL:
            core.fire("back")
        elif key.digit is not None and 1 <= int(key.digit) <= len(channels) and s.quote is not None:
            channel = channels[int(key.digit) - 1]
            today = core.wall_clock().date()
            q = quote(s.quote.plan, channel, cfg.fees, cfg.terminal.max_amount_minor,
                      spent_today_minor=_spent_today(core, channel, today))
            if q.error:
                s.error = say(q.error, s.lang)
                core.refresh()
            else:
                s.quote, s.error, s.limits_line = q, None, _limits_line(core, channel)
                core.fire("channel_chosen")


class Confirm:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key.digit is not None and len(s.confirm_digits) < 4:
            s.confirm_digits, s.error = s.confirm_digits + key.digit, None
            core.refresh()
        elif key is Key.CLEAR:
            s.confirm_digits = s.confirm_digits[:-1]
            core.refresh()
        elif key is Key.CANCEL:
            s.confirm_digits, s.error = "", None
            core.fire("back")
        elif key is Key.ENTER and s.sim is not None and s.quote is not None and s.user is not None:
            keyed = s.sim.msisdn if keyed_kind(s) == "msisdn" else s.sim.iccid
            if s.confirm_digits != keyed[-4:]:  # the cashier read the number back: a misdirected top-up stops here
                s.confirm_digits, s.error = "", core.say("confirm.mismatch")
                core.refresh()
            elif _earlier_same_sale(core):
                core.fire("duplicate")
            else:
                start_payment(core)


class DuplicateWarning:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.session.duplicate = ()
            core.fire("back")
        elif key is Key.F1:  # deliberately not ENTER: a bounced ENTER must never pay twice
            log.info("duplicate confirmed by %s", core.uid() or "?")
            if core.session.duplicate_rows:  # for the supervisor: paid although damaged rows could not be checked
                core.audit("duplicate_unchecked", f"skipped {core.session.duplicate_rows}")
            start_payment(core)
