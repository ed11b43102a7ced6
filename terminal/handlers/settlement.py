"""End of day (supervisor): batch totals → 0500 (→ 0320 upload → 0500) → printed report → new batch.

The totals and the settlement exchange are ``flows.settlement``; recovery and the advice queue are finished first
(``terminal.work.recover_all``) and a batch with open items or unsent advices is not settled.

>>> Settlement().__class__.__name__
'Settlement'
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from flows.messages import Msg, Text, say
from flows.money import format_money
from flows.ports import SettlementHostPort
from flows.reconcile import channel_totals, reconcile_wallets
from flows.sale_checks import settlement_blocker
from flows.settlement import REAPPLYING, SettlementResult, batch_totals, report_lines, settle_day
from pos_errors import DeviceError
from terminal.core import TerminalCore
from terminal.handlers.gate import is_supervisor
from terminal.history import skipped_rows
from terminal.roles import Action
from terminal.screens import Key
from terminal.work import WorkContext, given_back_rows, recover_all

__all__ = ["Settlement", "Settled", "open_settlement"]


def open_settlement(core: TerminalCore) -> None:
    if not is_supervisor(core, "home.settlement"):
        return
    s, journal = core.session, core.services.journal
    batch = journal.current_batch()
    records = journal.batch_records(batch)
    s.settle_totals, s.settlement, s.error = batch_totals(records, batch), None, None
    s.settle_channels = channel_totals(records)
    if rows := skipped_rows(journal):  # rows that cannot be decoded are left out of the totals: say which
        s.error = core.say("journal.rows_skipped", rows=rows)
    core.fire("settlement")


def _settle_work(lang: str, clock: Any) -> Any:
    def run(ctx: WorkContext) -> tuple[SettlementResult, Text | None]:
        sv, term = ctx.services, ctx.services.settings.terminal
        with ctx.money:
            open_left = recover_all(sv, unknown=True).still_open  # drains the advice queue too
            batch = sv.journal.current_batch()
            records = sv.journal.batch_records(batch)
            # a top-up still being put back is the carrier's part only: the sale is counted, it holds no batch
            open_left = max(0, open_left - sum(r.state == REAPPLYING for r in sv.journal.open_transactions()))
            blocker = settlement_blocker(open_left=open_left, advices_left=len(sv.journal.saf_items()))
            if blocker is not None:
                return SettlementResult("failed", batch_totals(records, batch), False, None, None, blocker), None
            result = settle_day(cast(SettlementHostPort, sv.host), _wallets(sv), sv.journal, records, batch=batch)
            result = replace(result, given_back=tuple(given_back_rows(sv)))  # named on the report, never blocking
            failed = tuple(r for r in sv.journal.saf_items(("failed",)) if r.batch == batch)  # named on the report
            result = replace(result, advices_failed=failed)
        host: Any = sv.host
        if result.new_batch is not None and hasattr(host, "batch_number"):  # the next 0200s carry the new batch
            host.batch_number = result.new_batch
        lines = report_lines(result, merchant_name=term.merchant_name, terminal_id=term.id,
                             merchant_id=term.merchant_id, when=clock().strftime("%Y-%m-%d %H:%M"), lang=lang)
        try:
            sv.printer.print_receipt(lines)
        except DeviceError as exc:
            return result, Msg("settle.not_printed", {"error": exc})
        return result, None
    return run


def _settled(core: TerminalCore, done: Any, error: BaseException | None) -> None:
    s = core.session
    result, problem = done if done is not None else (None, Msg("settle.failed", {"error": error}))
    s.settlement, s.error = result, say(problem, s.lang) if problem else None
    tot = result.totals if result else None
    core.audit("settlement", f"batch {tot.batch:06d} {result.status if result else ''} sales {tot.sale_count} "
               f"{format_money(tot.sale_minor)} voids {tot.void_count}" if tot else f"error {error}")
    core.fire("settled")


def _wallets(sv: Any) -> Any:
    """Each wallet channel's own platform (WeChat Pay, Alipay on their APIs), else the one [wallet] platform."""
    return sv.wallet_topup.port if sv.wallet_topup is not None else sv.wallet


def _reconcile_work(batch: int) -> Any:
    def run(ctx: WorkContext) -> Any:
        sv = ctx.services
        return reconcile_wallets(_wallets(sv), sv.journal.batch_records(batch))
    return run


def _reconciled(core: TerminalCore, done: Any, error: BaseException | None) -> None:
    s = core.session
    if done is not None and s.settlement is not None:
        s.settlement = replace(s.settlement, wallets=done)
        core.audit("reconcile", f"batch {s.settlement.totals.batch:06d} differ {len(done.mismatches)}")
    s.error = None if error is None else core.say("settle.failed", error=error)
    s.progress = ""
    core.refresh()


class Settlement:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        if key is Key.CANCEL:
            core.fire("home")
        elif key is Key.ENTER:
            if not core.permit_now(Action.SETTLEMENT):  # the role as it is now
                return
            core.fire("settle")
            core.start("settle", _settle_work(core.session.lang, core.wall_clock), _settled)


class Settled:
    """The outcome. Never a dead end: F1 tries a batch that did not close again, or asks the wallet platforms
    again about orders that differed (after the supervisor followed them up)."""

    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        r = s.settlement
        if key is Key.F1 and r is not None and not r.closed:
            open_settlement(core)
        elif key is Key.F1 and r is not None and r.wallets is not None and not r.wallets.ok:
            s.progress = core.say("settle.reconciling")
            core.refresh()
            core.start("reconcile", _reconcile_work(r.totals.batch), _reconciled)
        elif key in (Key.ENTER, Key.CANCEL):
            s = core.session
            s.settlement, s.settle_totals, s.error = None, None, None
            core.fire("home")
