"""Void (supervisor): pick a completed payment of the open batch, F1 confirms, the carrier is asked to take the
top-up back, then the host, and a receipt printed. When the carrier keeps the top-up the confirm screen comes back
with its reason: CANCEL keeps the sale, F1 gives the money back anyway (audited; "top-up NOT reversed" printed).

Which payments may be voided is ``flows.void.voidable``; the void itself is ``flows.void.void_payment``.

>>> VoidSelect().__class__.__name__
'VoidSelect'
"""

from __future__ import annotations

from typing import Any, cast

from flows.duplicate import window_start
from flows.messages import Msg, Text, say, state_label
from flows.ports import RefundHostPort
from flows.pricing import WALLET_CHANNELS
from flows.refund import RefundResult, refund_payment, refund_receipt, settled_sales
from flows.void import VoidResult, void_payment, void_receipt, voidable
from flows.void_wallet import is_settled_refund, void_wallet_payment
from pos_errors import DeviceError
from terminal.core import TerminalCore
from terminal.handlers.gate import audit_what, is_supervisor
from terminal.office_state import VOID_PAGE
from terminal.roles import Action
from terminal.screens import Key
from terminal.work import WorkContext

__all__ = ["VoidSelect", "VoidConfirm", "VoidDone", "open_void"]


def open_void(core: TerminalCore) -> None:
    if not is_supervisor(core, "home.void"):
        return
    _fill_list(core)
    core.fire("void")


def _fill_list(core: TerminalCore) -> None:
    journal, s = core.services.journal, core.session
    batch = journal.current_batch()
    # the open batch's sales (void) first, then the sales of closed batches within the refund window (refund:
    # card by the acquirer, wallet by its platform)
    days = max(0, core.settings.terminal.refund_window_days)
    since = window_start(core.wall_clock(), days * 86400.0)
    records, settled = journal.batch_records(batch), journal.completed_since(since)
    picks = voidable(records, batch, len(records)) + settled_sales(settled, batch, len(settled))
    s.void_list, s.void_pick, s.void_result, s.error = picks, None, None, None  # all: paged by VOID_PAGE
    s.void_refusal, s.void_batch, s.void_page = "", batch, 0


def _void_work(txn_id: int, supervisor_id: str, lang: str, when: str, anyway: bool) -> Any:
    def run(ctx: WorkContext) -> tuple[VoidResult, Text | None]:
        sv, term = ctx.services, ctx.services.settings.terminal
        record = sv.journal.get(txn_id)
        with ctx.money:
            if record.channel in WALLET_CHANNELS:  # WeChat Pay / Alipay / EMV QR: the platform refunds it
                wallets = sv.wallet_topup
                if wallets is None:
                    return VoidResult("refused", Msg("void.failed", {"error": Msg("wallet.not_configured")}),
                                      record), None
                settled = record.batch is not None and record.batch < sv.journal.current_batch()
                result = void_wallet_payment(wallets.port, sv.journal, sv.carrier, record,
                                             supervisor_id=supervisor_id, anyway=anyway, settled=settled)
            elif record.batch is not None and record.batch < sv.journal.current_batch():  # settled: refund
                refund = refund_payment(cast(RefundHostPort, sv.host), sv.journal, record, terminal_id=term.id,
                                        merchant_id=term.merchant_id, supervisor_id=supervisor_id,
                                        carrier=sv.carrier, settled_batch=sv.journal.current_batch(),
                                        anyway=anyway)
                return _refund_printed(ctx, refund, when, lang)
            else:
                result = void_payment(sv.host, sv.journal, record, batch=sv.journal.current_batch(),
                                      supervisor_id=supervisor_id, terminal_id=term.id,
                                      merchant_id=term.merchant_id, carrier=sv.carrier, anyway=anyway)
        if result.record is None or result.status in ("refused", "carrier_refused", "declined"):
            return result, None
        build = refund_receipt if is_settled_refund(result.record) else void_receipt  # closed batch: a refund
        lines = build(result.record, merchant_name=term.merchant_name, terminal_id=term.id, when=when, lang=lang)
        try:
            sv.printer.print_receipt(lines)
        except DeviceError as exc:
            return result, Msg("void.not_printed", {"error": exc})
        return result, None
    return run


def _refund_printed(ctx: WorkContext, result: RefundResult, when: str, lang: str) -> tuple[Any, Text | None]:
    sv, term = ctx.services, ctx.services.settings.terminal
    if result.record is None or result.status in ("refused", "carrier_refused", "declined"):
        return result, None
    lines = refund_receipt(result.record, merchant_name=term.merchant_name, terminal_id=term.id, when=when,
                           lang=lang)
    try:
        sv.printer.print_receipt(lines)
    except DeviceError as exc:
        return result, Msg("refund.not_printed", {"error": exc})
    return result, None


def _voided(core: TerminalCore, done: Any, error: BaseException | None) -> None:
    s = core.session
    result, problem = done if done is not None else (None, Msg("void.failed", {"error": error}))
    s.void_result, s.error = result, say(problem, s.lang) if problem else None
    what = audit_what(result.record, result.status) if result and result.record else f"error {error}"
    if result is not None and result.carrier_reason:
        what += (f"; top-up NOT reversed ({result.carrier_reason})" if result.status != "carrier_refused"
                 else f"; carrier kept the top-up ({result.carrier_reason})")
    settled = isinstance(result, RefundResult) or (result is not None and result.record is not None
                                                   and is_settled_refund(result.record))
    kind = "refund" if settled else "void"  # a settled sale is refunded
    core.audit(f"{kind}_anyway" if result and result.carrier_reason and result.status != "carrier_refused"
               else kind, what)
    if result is not None and result.status == "carrier_refused":
        s.void_refusal, s.error = result.carrier_reason, say(result.message, s.lang)
        core.fire("carrier_refused")
        return
    core.fire("voided")


def _no_meaning(core: TerminalCore, hint: str) -> None:
    """A key with no meaning on this screen: said (with the keys that have one), nothing changed."""
    core.session.error = core.say("keys.no_meaning", hint=Msg(hint))
    core.refresh()


def _changed_meanwhile(core: TerminalCore, listed: Any) -> bool:
    """The picked sale as the journal has it now differs from the list on the screen (voided, refunded, its top-up
    put back … meanwhile): said, and the list is made again; nothing else changes."""
    now = core.services.journal.get(listed.txn_id)
    if now.state == listed.state:
        return False
    _fill_list(core)  # the list as it is now (on the void list)
    core.session.error = core.say("void.pick_changed", sim=f"…{now.iccid[-4:]}", state=state_label(now.state))
    core.refresh()
    return True


class VoidSelect:
    """Nine payments a page, newest first; F1 older, F2 newer (as the audit log pages)."""

    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        first = s.void_page * VOID_PAGE
        if key is Key.CANCEL:
            core.fire("home")
        elif key is Key.F1 and len(s.void_list) > first + VOID_PAGE:
            s.void_page, s.error = s.void_page + 1, None
            core.refresh()
        elif key is Key.F2 and s.void_page:
            s.void_page, s.error = s.void_page - 1, None
            core.refresh()
        elif key.digit is not None and 1 <= int(key.digit) <= len(s.void_list[first:first + VOID_PAGE]):
            pick = s.void_list[first + int(key.digit) - 1]
            if not _changed_meanwhile(core, pick):
                s.void_pick, s.error = pick, None
                core.fire("void_chosen")
        elif key.digit is not None:
            s.error = core.say("open.no_item", number=key.digit)
            core.refresh()
        else:  # ENTER, CLEAR, F3, F4; F1 / F2 with no page that way
            _no_meaning(core, "void.select_hint_pages" if len(s.void_list) > VOID_PAGE else "void.select_hint")


class VoidConfirm:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        if key is Key.CANCEL:
            s.void_refusal, s.error = "", None  # the sale is kept; choosing it again asks the carrier again
            core.fire("back")
        elif key is Key.F1 and s.void_pick is not None:  # not ENTER: a bounce must not void
            if not core.permit_now(Action.VOID):  # the role as it is now, not as it was when the screen opened
                return
            if core.services.journal.get(s.void_pick.txn_id).state != s.void_pick.state:  # resolved meanwhile
                s.void_refusal = ""
                core.fire("back")
                _changed_meanwhile(core, s.void_pick)
                return
            when = core.wall_clock().strftime("%Y-%m-%d %H:%M")
            anyway, s.void_refusal = bool(s.void_refusal), ""  # F1 after the carrier's refusal: the explicit choice
            work = _void_work(s.void_pick.txn_id, core.uid() or "?", s.lang, when, anyway)
            core.fire("voiding")
            core.start("void", work, _voided)
        else:  # ENTER included: a bounced key must not give money back
            settled = s.void_pick is not None and s.void_pick.batch is not None and s.void_pick.batch < s.void_batch
            _no_meaning(core, "reverse.anyway_hint" if s.void_refusal else
                        "refund.confirm_hint" if settled else "void.confirm_hint")


class VoidDone:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key in (Key.ENTER, Key.CANCEL):
            s = core.session
            s.void_list, s.void_pick, s.void_result, s.error = [], None, None, None
            core.fire("home")
        else:
            _no_meaning(core, "nav.home")
