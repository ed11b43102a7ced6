"""History search, the result list, one transaction's detail with reprint, and the shift summary.

>>> History().__class__.__name__
'History'
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flows.messages import next_lang
from flows.money import format_money, parse_yuan
from flows.ports import ReceiptLine
from flows.pricing import CHANNEL_LABELS
from flows.receipt import receipt_from_json
from flows.refund import refund_receipt
from flows.txn_state import TxnState
from flows.void import void_receipt
from flows.void_wallet import is_settled_refund
from terminal.core import TerminalCore
from terminal.handlers.result import device_error_text
from terminal.history import HistoryFilter, duplicate, search, shift_summary, skipped_rows
from terminal.receipts import facts_for, print_lines
from terminal.roles import Action, Role, allowed
from terminal.screens import Key
from terminal.views import PRINTABLE
from terminal.views_office import channel_numbers

__all__ = ["History", "HistoryList", "HistoryDetail", "Shift", "open_history", "open_shift", "printed_done"]

_LIMITS = (8, 8, 8, 1)  # characters per search field: SIM tail, amount in yuan ("99999.99"), date, channel
_MONEY_BACK = frozenset({TxnState.VOIDED, TxnState.VOID_PENDING, TxnState.REFUNDED, TxnState.REFUND_PENDING})
_REPRINT_STATUS = {"completed": "completed", "topup_pending": "pending", "reversed": "reversed",
                   "reversal_pending": "reversal_pending"}


def open_history(core: TerminalCore) -> None:
    o = core.session.office
    o.history_field, o.history_values, o.history_results = 0, ["", "", "", ""], []
    core.fire("open_history")


def open_shift(core: TerminalCore) -> None:
    o = core.session.office
    o.shift_day = core.wall_clock().date().isoformat()
    mine = "" if allowed(core.role(), Action.SHIFT_ALL) else core.uid()
    o.shift = shift_summary(core.services.journal, o.shift_day, mine)
    _warn_skipped(core)
    core.fire("open_shift")


def _warn_skipped(core: TerminalCore) -> None:
    """Rows that cannot be decoded were left out: say which (instead of "Internal error")."""
    if rows := skipped_rows(core.services.journal):
        core.session.error = core.say("journal.rows_skipped", rows=rows)


def printed_done(done: str) -> Any:
    """A done callback for a print job started from an office screen: a green line, or the printer's error."""
    def on_done(core: TerminalCore, _result: Any, error: BaseException | None) -> None:
        if error is None:
            core.session.office.info = core.say(done)
        else:
            core.session.error = device_error_text(core, error)
        core.refresh()
    return on_done


def _search(core: TerminalCore) -> list[Any] | None:
    s, o = core.session, core.session.office
    tail, amount, date, channel = o.history_values
    day = ""
    if date:
        try:
            day = dt.datetime.strptime(date, "%Y%m%d").date().isoformat()
        except ValueError:
            s.error = core.say("history.field_date")
            return None
    amount_minor = parse_yuan(amount) if amount else None
    if amount and amount_minor is None:
        s.error = core.say("history.bad_amount")
        return None
    channels = list(CHANNEL_LABELS)
    if channel and not 1 <= int(channel) <= len(channels):
        s.error = core.say("history.field_channel", channels=channel_numbers())
        return None
    mine = "" if core.role() == Role.SUPERVISOR else core.uid()
    return search(core.services.journal, HistoryFilter(
        sim_tail=tail, amount_minor=amount_minor, day=day,
        channel=channels[int(channel) - 1] if channel else "", cashier_id=mine))


class History:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        value = o.history_values[o.history_field]
        if key.digit is not None and len(value) < _LIMITS[o.history_field]:
            o.history_values[o.history_field] = value + key.digit
        elif key is Key.F2 and o.history_field == 1 and "." not in value and len(value) < _LIMITS[1]:
            o.history_values[1] = value + "."  # the amount is keyed in yuan: F2 is the decimal point
        elif key is Key.CLEAR:
            o.history_values[o.history_field] = value[:-1]
        elif key is Key.F1:
            o.history_field = (o.history_field + 1) % 4
        elif key is Key.CANCEL and value:
            o.history_values[o.history_field] = ""
        elif key is Key.CANCEL:
            core.go_home()
            return
        elif key is Key.ENTER:
            found = _search(core)
            if found is not None:
                o.history_results, s.error = found, None
                _warn_skipped(core)
                core.fire("searched")
                return
        core.refresh()


class HistoryList:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        o = core.session.office
        if key is Key.CANCEL:
            core.fire("back")
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(o.history_results)):
            o.history_pick, o.detail_lang, o.info = int(key.digit) - 1, "", None
            core.fire("open_detail")


class HistoryDetail:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        if key is Key.CANCEL:
            s.error, o.info = None, None
            core.fire("back")
        elif key is Key.F1:
            o.detail_lang = next_lang(o.detail_lang or s.lang)
            core.refresh()
        elif key is Key.ENTER and core.permit(Action.REPRINT):
            rec = o.history_results[o.history_pick]
            lines = self._reprint_lines(core, rec)
            if lines is None:
                s.error = core.say("history.no_receipt")
                core.refresh()
                return
            core.audit("reprint", f"txn {rec.txn_id} order {rec.order_id}")
            s.error, o.info = None, None
            core.start("reprint", lambda ctx: ctx.services.printer.print_receipt(lines),
                       printed_done("history.reprinted"))
            core.refresh()

    @staticmethod
    def _reprint_lines(core: TerminalCore, rec: Any) -> tuple[ReceiptLine, ...] | None:
        """The stored receipt word for word; rebuilt from the journal when another language was chosen or the
        receipt was never printed (only for outcomes that have a receipt)."""
        o, lang = core.session.office, core.session.lang
        if rec.state in _MONEY_BACK:  # the void/refund receipt, from the row: what became of the top-up, as now
            term, lang = core.settings.terminal, o.detail_lang or lang
            build = void_receipt if rec.state in (TxnState.VOIDED, TxnState.VOID_PENDING) \
                and not is_settled_refund(rec) else refund_receipt
            return duplicate(build(rec, merchant_name=term.merchant_name, terminal_id=term.id,
                                   when=rec.created_at[:16].replace("T", " "), lang=lang), lang)
        if rec.receipt and not o.detail_lang:
            return duplicate(receipt_from_json(rec.receipt), lang)
        if _REPRINT_STATUS.get(rec.state) not in PRINTABLE:
            return None
        lang = o.detail_lang or lang
        return duplicate(print_lines(facts_for(core.settings, rec, None, lang=lang)), lang)


class Shift:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        o = core.session.office
        if key is Key.CANCEL:
            core.go_home()
        elif key is Key.ENTER:
            lines = [ReceiptLine(core.say("shift.title", day=o.shift_day), bold=True)]
            lines += [ReceiptLine(line) for line in self._lines(core)]
            core.start("shift_print", lambda ctx: ctx.services.printer.print_receipt(lines),
                       printed_done("shift.printed"))

    @staticmethod
    def _lines(core: TerminalCore) -> list[str]:
        return [core.say("shift.line", cashier=r.cashier_id, count=r.sales, total=format_money(r.sales_minor),
                         reversed=r.reversed) for r in core.session.office.shift] or [core.say("shift.none")]
