"""Open items (supervisor): what recovery still follows up, the store-and-forward queue, ENTER follows up now,
F2 refunds a payment whose reversal the host refused (``flows.refund``).

>>> OpenItems().__class__.__name__
'OpenItems'
"""

from __future__ import annotations

from typing import Any, cast

from flows.messages import CATALOGUE, Msg, say, state_label
from flows.money import format_money
from flows.ports import RefundHostPort
from flows.recovery import RecoveryReport
from flows.refund import RefundResult, refund_payment, refund_receipt, refundable
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
    s.open_items = core.services.journal.open_transactions()
    s.notice = ((say(result.message, s.lang),) if result else ()) + _saf_lines(core)
    s.error = problem
    core.refresh()


def _start_refund(core: TerminalCore) -> None:
    s = core.session
    if not core.permit_now(Action.REFUND) or s.user is None:  # the role as it is now
        return
    todo = refundable(core.services.journal.open_transactions())
    if not todo:
        s.error = say(Msg("refund.none"), s.lang)
        core.refresh()
        return
    s.notice, s.error = (say(Msg("refund.busy"), s.lang),), None
    core.refresh()
    when = core.wall_clock().strftime("%Y-%m-%d %H:%M")
    core.start("refund", _refund_work(todo[0].txn_id, s.user.user_id, s.lang, when), _refunded)


class OpenItems:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key is Key.CANCEL:
            s.open_items, s.notice = [], ()
            core.fire("home")
        elif key is Key.ENTER:
            s.notice = (core.say("open.following_up"),)
            core.refresh()
            core.start("open_items", _follow_up_now, _followed_up)
        elif key is Key.F2:
            _start_refund(core)
