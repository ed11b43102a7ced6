"""Open items (supervisor): what recovery still follows up, the store-and-forward queue, ENTER follows up now,
1-9 picks an item of the list and F2 refunds it when its reversal was refused (``flows.refund``); with one such
payment listed, F2 alone refunds it. A key with no meaning here, a number with no item, a pick that is not a
refused reversal or that was resolved meanwhile is said in the supervisor's language and changes nothing.

>>> OpenItems().__class__.__name__
'OpenItems'
"""

from __future__ import annotations

from typing import Any, cast

from flows.messages import CATALOGUE, Msg, say, state_label
from flows.money import format_money
from flows.ports import RefundHostPort
from flows.recovery import RecoveryReport
from flows.refund import REFUNDABLE, RefundResult, refund_payment, refund_receipt, refundable
from flows.saf import STOPPED
from flows.topup_back import carrier_order
from pos_errors import DeviceError
from terminal.core import TerminalCore
from terminal.handlers.gate import audit_what, is_supervisor
from terminal.roles import Action
from terminal.screens import Key
from terminal.work import WorkContext, given_back_rows, recover_all, unknown_rows

__all__ = ["OpenItems", "open_open_items"]


def word(text: str) -> Msg | str:
    """A status word in the reader's language when the catalogue has it (``word.<text>``)."""
    return Msg(f"word.{text}") if f"word.{text}" in CATALOGUE else text


def _saf_lines(core: TerminalCore) -> tuple[str, ...]:
    """The supervisor's view of the advice queue: waiting and stopped advices, then the refund hint."""
    s, journal = core.session, core.services.journal
    lines = tuple(say(Msg("saf.queued", {"stan": f"{r.stan:06d}", "money": format_money(r.amount_minor),
                                         "pan": r.masked_pan, "status": word(r.status), "tries": r.attempts}), s.lang)
                  for r in journal.saf_items(("queued", *STOPPED)))
    if refundable(journal.open_transactions()):
        lines = (*lines, say(Msg("refund.hint"), s.lang))
    unknown = tuple(say(Msg("open.unknown", {"sim": f"…{r.iccid[-4:]}", "order": carrier_order(r)}), s.lang)
                    for r in unknown_rows(core.services, core.wall_clock()))  # kept sales: what became of the top-up
    given = tuple(say(Msg("open.given_back", {"sim": f"…{r.iccid[-4:]}", "order": carrier_order(r),
                                              "what": state_label(r.state)}), s.lang)
                  for r in given_back_rows(core.services))  # given back anyway: the top-up maybe still on the SIM
    return (*lines, *unknown, *given)


def open_open_items(core: TerminalCore) -> None:
    if not is_supervisor(core, "home.open_items"):
        return
    s = core.session
    s.open_items, s.notice, s.error = core.services.journal.open_transactions(), _saf_lines(core), None
    s.open_pick = None
    core.fire("open_items")


def _follow_up_now(ctx: WorkContext) -> RecoveryReport:
    with ctx.money:
        return recover_all(ctx.services, unknown=True)


def _followed_up(core: TerminalCore, report: RecoveryReport | None, error: BaseException | None) -> None:
    s = core.session
    s.open_items = core.services.journal.open_transactions()
    s.notice = tuple(say(line, s.lang) for line in report.lines) if report is not None else ()
    s.notice = (*s.notice, *_saf_lines(core))
    s.error = None if error is None else core.say("open.failed", error=error)
    core.refresh()


def _refund_work(txn_id: int, supervisor_id: str, lang: str, when: str) -> Any:
    def run(ctx: WorkContext) -> tuple[RefundResult, str | None]:
        sv, term = ctx.services, ctx.services.settings.terminal
        with ctx.money:
            result = refund_payment(cast(RefundHostPort, sv.host), sv.journal, sv.journal.get(txn_id),
                                    terminal_id=term.id, merchant_id=term.merchant_id, supervisor_id=supervisor_id)
        if result.record is None or result.status in ("refused", "declined"):
            return result, None
        lines = refund_receipt(result.record, merchant_name=term.merchant_name, terminal_id=term.id, when=when,
                               lang=lang)
        try:
            sv.printer.print_receipt(lines)
        except DeviceError as exc:
            return result, say(Msg("refund.not_printed", {"error": exc}))
        return result, None
    return run


def _refunded(core: TerminalCore, done: Any, error: BaseException | None) -> None:
    s = core.session
    result, problem = done if done is not None else (None, say(Msg("refund.failed", {"error": error}), s.lang))
    core.audit("refund", audit_what(result.record, result.status) if result and result.record else f"error {error}")
    s.open_items, s.open_pick = core.services.journal.open_transactions(), None
    s.notice = ((say(result.message, s.lang),) if result else ()) + _saf_lines(core)
    s.error = problem
    core.refresh()


def _refund_target(core: TerminalCore) -> int | None:
    """The txn id F2 refunds: the picked item (read again: it may have been resolved meanwhile), or the only
    refundable one when nothing is picked. None, with the reason on the error line, when there is none."""
    s, journal = core.session, core.services.journal
    if s.open_pick is not None:
        now = journal.get(s.open_pick)
        if now.state in REFUNDABLE:
            return now.txn_id
        listed = next((r for r in s.open_items if r.txn_id == now.txn_id), None)
        key = "open.pick_resolved" if listed is None or listed.state != now.state else "open.pick_not_refundable"
        s.error = say(Msg(key, {"state": state_label(now.state), "sim": f"…{now.iccid[-4:]}"}), s.lang)
        return None
    todo = refundable(journal.open_transactions())
    if len(todo) == 1:
        return todo[0].txn_id
    s.error = say(Msg("refund.none" if not todo else "open.pick_first", {"count": len(todo)}), s.lang)
    return None


def _start_refund(core: TerminalCore) -> None:
    s = core.session
    if not core.permit_now(Action.REFUND) or s.user is None:  # the role as it is now
        return
    txn_id = _refund_target(core)
    if txn_id is None:
        s.open_pick, s.open_items = None, core.services.journal.open_transactions()  # the list as it is now
        core.refresh()
        return
    s.notice, s.error = (say(Msg("refund.busy"), s.lang),), None
    core.refresh()
    when = core.wall_clock().strftime("%Y-%m-%d %H:%M")
    core.start("refund", _refund_work(txn_id, s.user.user_id, s.lang, when), _refunded)


def _pick(core: TerminalCore, digit: int) -> None:
    s = core.session
    if not 1 <= digit <= len(s.open_items[:9]):
        s.error = say(Msg("open.no_item", {"number": digit}), s.lang)
    else:
        s.open_pick, s.error = s.open_items[digit - 1].txn_id, None
    core.refresh()


class OpenItems:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key is Key.CANCEL:
            s.open_items, s.notice, s.open_pick = [], (), None
            core.fire("home")
        elif key is Key.ENTER:
            s.notice = (core.say("open.following_up"),)
            core.refresh()
            core.start("open_items", _follow_up_now, _followed_up)
        elif key is Key.F2:
            _start_refund(core)
        elif key.digit is not None:
            _pick(core, int(key.digit))
        elif key is Key.CLEAR and s.open_pick is not None:
            s.open_pick, s.error = None, None
            core.refresh()
        else:  # F1, F3, F4, CLEAR with nothing picked: no meaning here
            s.error = core.say("open.key_unknown")
            core.refresh()
