"""Supervisor screens of the terminal app: void a payment of the open batch, end-of-day settlement, open items
(with the store-and-forward queue) and refund of a payment whose reversal the host refused. Void, refund and
settlement each write an audit row (who, what; the audit log adds when).

A mixin of ``TerminalApp`` (same thread rules: key handlers run on the app thread, host work in ``_spawn``ed
workers that hold the money lock, so recovery never runs beside them). Both are gated on the logged-in user's
role: a cashier sees neither menu entry and gets a clear message if the key is pressed anyway.

>>> SupervisorScreens.__name__
'SupervisorScreens'
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any, cast

from flows.messages import CATALOGUE, Msg, Text, say, t
from flows.money import format_money
from flows.ports import AdviceHostPort, RefundHostPort, SettlementHostPort
from flows.recovery import RecoveryReport
from flows.refund import RefundResult, refund_payment, refund_receipt, refundable
from flows.saf import STOPPED, drain
from flows.settlement import SettlementResult, batch_totals, report_lines, settle_batch
from flows.void import VoidResult, void_payment, void_receipt, voidable
from pos_errors import DeviceError
from terminal.roles import Action, allowed
from terminal.screens import Key
from terminal.services import Services
from terminal.views import Session

__all__ = ["SupervisorScreens", "SUPERVISOR_ROLE"]

SUPERVISOR_ROLE = "supervisor"


class SupervisorScreens:
    """Void and settlement; needs the attributes and helpers ``TerminalApp`` provides."""

    services: Services
    session: Session
    _money: threading.Lock
    _fire: Callable[[str], None]
    _spawn: Callable[[str, Callable[[], Any]], None]
    _refresh: Callable[[], None]
    _recover: Callable[[], RecoveryReport]
    _audit: Callable[..., None]

    def _is_supervisor(self, what: str) -> bool:
        s = self.session
        if s.user is not None and s.user.role == SUPERVISOR_ROLE:
            return True
        s.error = t("super.required", s.lang, what=Msg(what) if what in CATALOGUE else what)
        self._refresh()
        return False

    # --- void -----------------------------------------------------------------------------------------------

    def _open_void(self) -> None:
        if not self._is_supervisor("home.void"):
            return
        journal = self.services.journal
        batch = journal.current_batch()
        s = self.session
        s.void_list, s.void_pick, s.void_result, s.error = voidable(journal.batch_records(batch), batch), None, \
            None, None
        self._fire("void")

    def _key_void_select(self, key: Key) -> None:
        s = self.session
        if key is Key.CANCEL:
            self._fire("home")
        elif key.digit is not None and 1 <= int(key.digit) <= len(s.void_list):
            s.void_pick, s.error = s.void_list[int(key.digit) - 1], None
            self._fire("void_chosen")

    def _key_void_confirm(self, key: Key) -> None:
        if key is Key.CANCEL:
            self._fire("back")
        elif key is Key.F1 and self.session.void_pick is not None:  # not ENTER: a bounce must not void
            record, supervisor = self.session.void_pick, self.session.user
            self._fire("voiding")
            self._spawn("void", lambda: self._void_work(record, supervisor.user_id if supervisor else "?"))

    def _void_work(self, record: Any, supervisor_id: str) -> tuple[VoidResult, Text | None]:
        sv, term = self.services, self.services.settings.terminal
        with self._money:
            result = void_payment(sv.host, sv.journal, sv.journal.get(record.txn_id),
                                  batch=sv.journal.current_batch(), supervisor_id=supervisor_id,
                                  terminal_id=term.id, merchant_id=term.merchant_id)
        if result.record is None or result.status == "refused":
            return result, None
        lines = void_receipt(result.record, merchant_name=term.merchant_name, terminal_id=term.id,
                             when=dt.datetime.now().strftime("%Y-%m-%d %H:%M"), lang=self.session.lang)
        try:
            sv.printer.print_receipt(lines)
        except DeviceError as exc:
            return result, Msg("void.not_printed", {"error": exc})
        return result, None

    def _done_void(self, done: tuple[VoidResult, Text | None] | None, error: BaseException | None) -> None:
        s = self.session
        result, problem = done if done is not None else (None, Msg("void.failed", {"error": error}))
        s.void_result, s.error = result, say(problem, s.lang) if problem else None
        self._audit("void", _what(result.record, result.status) if result and result.record else f"error {error}")
        self._fire("voided")

    def _key_void_done(self, key: Key) -> None:
        if key in (Key.ENTER, Key.CANCEL):
            s = self.session
            s.void_list, s.void_pick, s.void_result, s.error = [], None, None, None
            self._fire("home")

    # --- open items ---------------------------------------------------------------------------------------

    def _open_open_items(self) -> None:
        if not self._is_supervisor("home.open_items"):
            return
        s = self.session
        s.open_items, s.notice, s.error = self.services.journal.open_transactions(), self._saf_lines(), None
        self._fire("open_items")

    def _key_open_items(self, key: Key) -> None:
        if key is Key.CANCEL:
            self.session.open_items, self.session.notice = [], ()
            self._fire("home")
        elif key is Key.ENTER:
            self.session.notice = (t("open.following_up", self.session.lang),)
            self._refresh()
            self._spawn("open_items", self._follow_up_now)
        elif key is Key.F2:
            self._start_refund()

    def _follow_up_now(self) -> RecoveryReport:
        with self._money:
            return self._recover()

    def _done_open_items(self, report: RecoveryReport | None, error: BaseException | None) -> None:
        s = self.session
        s.open_items = self.services.journal.open_transactions()
        s.notice = tuple(say(line, s.lang) for line in report.lines) if report is not None else ()
        s.notice = (*s.notice, *self._saf_lines())
        s.error = None if error is None else t("open.failed", s.lang, error=error)
        self._refresh()

    # --- store-and-forward ----------------------------------------------------------------------------------

    def _drain_saf(self) -> list[Msg]:
        """Send queued advices (the caller holds ``_money``); what was sent or stopped, for the cashier."""
        sv, term, host_cfg = self.services, self.services.settings.terminal, self.services.settings.host
        if sv.saf_sealer is None or not hasattr(sv.host, "advise") or not sv.journal.saf_items():
            return []
        report = drain(cast(AdviceHostPort, sv.host), sv.journal, sv.saf_sealer, terminal_id=term.id,
                       merchant_id=term.merchant_id, max_attempts=host_cfg.saf_max_attempts,
                       expiry_s=host_cfg.saf_expiry_s)
        lines = [Msg("saf.sent", {"count": report.sent})] if report.sent else []
        return lines + [Msg("saf.stopped", {"stan": f"{r.stan:06d}", "money": format_money(r.amount_minor),
                                            "status": r.status}) for r in report.stopped]

    def _saf_lines(self) -> tuple[str, ...]:
        """The supervisor's view of the advice queue: waiting and stopped advices, then the refund hint."""
        s, journal = self.session, self.services.journal
        lines = tuple(say(Msg("saf.queued", {"stan": f"{r.stan:06d}", "money": format_money(r.amount_minor),
                                             "pan": r.masked_pan, "status": r.status, "tries": r.attempts}), s.lang)
                      for r in journal.saf_items(("queued", *STOPPED)))
        if refundable(journal.open_transactions()):
            lines = (*lines, say(Msg("refund.hint"), s.lang))
        return lines

    # --- refund ---------------------------------------------------------------------------------------------

    def _start_refund(self) -> None:
        s = self.session
        if s.user is None or not allowed(s.user.role, Action.REFUND):
            s.error = t("super.required", s.lang, what=Msg("refund.action"))
            self._refresh()
            return
        todo = refundable(self.services.journal.open_transactions())
        if not todo:
            s.error = say(Msg("refund.none"), s.lang)
            self._refresh()
            return
        s.notice, s.error = (say(Msg("refund.busy"), s.lang),), None
        self._refresh()
        record, who = todo[0], s.user.user_id
        self._spawn("refund", lambda: self._refund_work(record.txn_id, who))

    def _refund_work(self, txn_id: int, supervisor_id: str) -> tuple[RefundResult, str | None]:
        sv, term = self.services, self.services.settings.terminal
        with self._money:
            result = refund_payment(cast(RefundHostPort, sv.host), sv.journal, sv.journal.get(txn_id),
                                    terminal_id=term.id, merchant_id=term.merchant_id, supervisor_id=supervisor_id)
        if result.record is None or result.status in ("refused", "declined"):
            return result, None
        lines = refund_receipt(result.record, merchant_name=term.merchant_name, terminal_id=term.id,
                               when=dt.datetime.now().strftime("%Y-%m-%d %H:%M"), lang=self.session.lang)
        try:
            sv.printer.print_receipt(lines)
        except DeviceError as exc:
            return result, say(Msg("refund.not_printed", {"error": exc}))
        return result, None

    def _done_refund(self, done: tuple[RefundResult, str | None] | None, error: BaseException | None) -> None:
        s = self.session
        result, problem = done if done is not None else (None, say(Msg("refund.failed", {"error": error}), s.lang))
        self._audit("refund", _what(result.record, result.status) if result and result.record else f"error {error}")
        s.open_items = self.services.journal.open_transactions()
        s.notice = ((say(result.message, s.lang),) if result else ()) + self._saf_lines()
        s.error = problem
        self._refresh()

    # --- settlement -----------------------------------------------------------------------------------------

    def _open_settlement(self) -> None:
        s = self.session
        if not self._is_supervisor("home.settlement"):
            return
        journal = self.services.journal
        batch = journal.current_batch()
        s.settle_totals, s.settlement, s.error = batch_totals(journal.batch_records(batch), batch), None, None
        self._fire("settlement")

    def _key_settlement(self, key: Key) -> None:
        if key is Key.CANCEL:
            self._fire("home")
        elif key is Key.ENTER:
            self._fire("settle")
            self._spawn("settle", self._settle_work)

    def _settle_work(self) -> tuple[SettlementResult, Text | None]:
        sv, term = self.services, self.services.settings.terminal
        with self._money:
            open_left = self._recover().still_open  # drains the advice queue too
            batch = sv.journal.current_batch()
            records = sv.journal.batch_records(batch)
            advices_left = len(sv.journal.saf_items())
            if advices_left:
                return SettlementResult("failed", batch_totals(records, batch), False, None, None,
                                        say(Msg("saf.not_drained", {"count": advices_left}))), None
            if open_left:
                return SettlementResult("failed", batch_totals(records, batch), False, None, None,
                                        Msg("settle.open_left", {"count": open_left})), None
            result = settle_batch(cast(SettlementHostPort, sv.host), sv.journal, records, batch=batch)
        host: Any = sv.host
        if result.new_batch is not None and hasattr(host, "batch_number"):  # the next 0200s carry the new batch
            host.batch_number = result.new_batch
        lines = report_lines(result, merchant_name=term.merchant_name, terminal_id=term.id,
                             merchant_id=term.merchant_id, when=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                             lang=self.session.lang)
        try:
            sv.printer.print_receipt(lines)
        except DeviceError as exc:
            return result, Msg("settle.not_printed", {"error": exc})
        return result, None

    def _done_settle(self, done: tuple[SettlementResult, Text | None] | None, error: BaseException | None) -> None:
        s = self.session
        result, problem = done if done is not None else (None, Msg("settle.failed", {"error": error}))
        s.settlement, s.error = result, say(problem, s.lang) if problem else None
        tot = result.totals if result else None
        self._audit("settlement", f"batch {tot.batch:06d} {result.status if result else ''} sales {tot.sale_count} "
                    f"{format_money(tot.sale_minor)} voids {tot.void_count}" if tot else f"error {error}")
        self._fire("settled")

    def _key_settled(self, key: Key) -> None:
        if key in (Key.ENTER, Key.CANCEL):
            self.session.settlement, self.session.settle_totals, self.session.error = None, None, None
            self._fire("home")


def _what(record: Any, status: str) -> str:
    """An audit detail: which payment, how much, what happened (no PAN beyond the masked one)."""
    return (f"txn {record.txn_id} order {record.order_id} {format_money(record.total_minor)} "
            f"SIM …{record.iccid[-4:]} {status}")
