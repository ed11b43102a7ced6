"""The outcome of a payment, the receipt (print, retry, skip) and the printer's errors in the cashier's words.

>>> Result().__class__.__name__
'Result'
"""

from __future__ import annotations

import logging
from typing import Any

from flows.for_people import explain_key
from flows.messages import Msg, next_lang
from flows.receipt import receipt_to_json
from flows.topup import TopupOutcome
from pos_errors import DeviceError, DeviceFault, PosError
from terminal.core import TerminalCore
from terminal.receipts import facts_for, print_lines
from terminal.screens import Key
from terminal.views import PRINTABLE, retriable

__all__ = ["Result", "Receipt", "payment_done", "device_error_text", "FAULT_MESSAGES"]

log = logging.getLogger("terminal.result")

# A printer fault code → its catalogue key; any other fault shows the driver's own (engineer's) message.
FAULT_MESSAGES: dict[DeviceFault, str] = {fault: f"printer.{fault.value}" for fault in (
    DeviceFault.PAPER_OUT, DeviceFault.COVER_OPEN, DeviceFault.PRINTER_ERROR, DeviceFault.OFFLINE,
    DeviceFault.NO_ANSWER, DeviceFault.PORT, DeviceFault.GARBLED)}


def device_error_text(core: TerminalCore, error: BaseException) -> str:
    """A device's error in the cashier's language, chosen by its fault code (never by its English text)."""
    fault = getattr(error, "fault", None)
    if isinstance(error, DeviceError) and fault in FAULT_MESSAGES:
        return core.say(FAULT_MESSAGES[fault])
    log.info("shown as %s: %r", explain_key(error), error)
    return core.say(explain_key(error))


def payment_done(core: TerminalCore, done: Any, error: BaseException | None) -> None:
    """The card or wallet payment finished (or crashed): show the outcome."""
    s = core.session
    result, fresh = done if done is not None else (None, None)
    if fresh is not None:
        s.sim_after = fresh
    s.outcome, s.progress = result, ""
    if result is not None and result.status in ("cancelled", "declined", "failed"):
        s.error = None
    if error is not None:  # never a blank result: what happened, and what to do
        log.error("payment flow crashed: %s", type(error).__name__)
        storage = getattr(core.services.journal, "write_error", None) is not None
        s.outcome = TopupOutcome("failed", Msg("journal.write_failed") if storage else Msg(
            "result.no_outcome", {"error": error}), 0, "")
        s.error = core.say("journal.write_action" if storage else "pay.crashed", error=error)
    core.fire("finished")


def _start_printing(core: TerminalCore) -> None:
    s, journal = core.session, core.services.journal
    if s.outcome is None or s.sim is None:
        return
    record = journal.get(s.outcome.txn_id)
    lines = print_lines(facts_for(core.settings, record, s.outcome, lang=s.receipt_lang or s.lang))
    try:
        journal.update(record.txn_id, record.state, receipt=receipt_to_json(lines))
    except PosError as exc:  # the journal cannot take the copy (disk full): the customer still gets the receipt
        log.warning("receipt copy not journalled: %s", exc)
    core.start("print", lambda ctx: ctx.services.printer.print_receipt(lines), _printed)


def _printed(core: TerminalCore, _result: Any, error: BaseException | None) -> None:
    if error is None:
        core.session.error = None
        core.fire("printed")
    else:
        core.session.error = core.say("receipt.printer_error", error=device_error_text(core, error))
        core.refresh()


class Result:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        printable = s.outcome is not None and s.outcome.status in PRINTABLE
        if key is Key.F1 and printable:  # this receipt's language, whatever the screen's
            s.receipt_lang = next_lang(s.receipt_lang or s.lang)
            core.refresh()
        elif key is Key.ENTER and printable:
            core.fire("print_receipt")
            _start_printing(core)
        elif key is Key.F2 and retriable(s):  # declined / cancelled / failed: SIM, plan, amount kept
            core.audit("retry", f"{s.outcome.order_id if s.outcome else ''}")
            s.keep_for_retry()
            core.fire("retry")
        elif key in (Key.ENTER, Key.CANCEL):
            s.reset_sale()
            core.fire("home")


class Receipt:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if core.session.error and key is Key.ENTER:
            core.session.error = None
            core.refresh()
            _start_printing(core)
        elif key is Key.CANCEL:
            core.abandon_work()
            core.session.reset_sale()
            core.fire("home")
