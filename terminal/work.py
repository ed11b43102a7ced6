"""The work the core asks for (``StartWork``): functions that run on a worker thread and may block on the world.

Each takes a ``WorkContext`` from the shell (progress poster, cancel token, the money lock, the device-check lock)
and returns a value the asking handler receives in its done callback. None of them touches the ``Session``: what
they need from it is captured by the handler when it asks.

The money lock: one money movement at a time (payment, void, refund, settlement, recovery); recovery never touches
a transaction that is still in flight.

>>> WorkContext.__name__
'WorkContext'
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from flows.duplicate import window_start
from flows.messages import Msg
from flows.money import format_money
from flows.ports import AdviceHostPort, CancelToken, SimInfo, TxnRecord
from flows.pricing import WALLET_CHANNELS
from flows.recovery import RecoveryReport, recover
from flows.saf import drain
from flows.topup_back import GIVEN_BACK_OPEN, ask_what_became, take_back_late, unknown_topup
from flows.topup_order import TopupOrder, TopupOutcome
from flows.txn_state import TxnState
from pos_errors import Cancelled, DeviceError, PosError
from terminal.diagnostics import DISK_STOP_MB, Check, free_mb, run_checks
from terminal.services import Services

__all__ = ["WorkContext", "recover_all", "drain_saf", "refuse_new_sale", "pay_card", "scan_and_pay", "pay_by_qr",
           "check_devices", "fresh_balance", "journal_writable", "unknown_rows", "given_back_rows"]

log = logging.getLogger("terminal.work")


@dataclass
class WorkContext:
    services: Services
    progress: Callable[[Any], None]
    cancel: CancelToken
    money: threading.Lock
    device_check: threading.Lock


def drain_saf(sv: Services) -> list[Msg]:
    """Send queued advices (the caller holds the money lock); what was sent or stopped, for the cashier."""
    term, host_cfg = sv.settings.terminal, sv.settings.host
    if sv.saf_sealer is None or not hasattr(sv.host, "advise") or not sv.journal.saf_items():
        return []
    report = drain(cast(AdviceHostPort, sv.host), sv.journal, sv.saf_sealer, terminal_id=term.id,
                   merchant_id=term.merchant_id, max_attempts=host_cfg.saf_max_attempts,
                   expiry_s=host_cfg.saf_expiry_s)
    lines = [Msg("saf.sent", {"count": report.sent})] if report.sent else []
    return lines + [Msg("saf.stopped", {"stan": f"{r.stan:06d}", "money": format_money(r.amount_minor),
                                        "status": r.status}) for r in report.stopped]


def unknown_rows(sv: Services, now: dt.datetime) -> list[TxnRecord]:
    """Kept sales whose carrier reversal was never answered (``flows.topup_back.unknown_topup``): a void's are in
    the open batch, a refund's within the refund window — the only sales a void or refund can touch."""
    journal = sv.journal
    since = window_start(now, max(0, sv.settings.terminal.refund_window_days) * 86400.0)
    rows = {r.txn_id: r for r in (*journal.batch_records(journal.current_batch()), *journal.completed_since(since))}
    return [r for r in rows.values() if unknown_topup(r)]


def given_back_rows(sv: Services) -> list[TxnRecord]:
    """Sales given back (voided / refunded) "anyway" while the carrier could not be asked, whose top-up may still be
    on the SIM (``flows.topup_back.given_back_unknown``): any batch, until the carrier has answered."""
    return sv.journal.given_back_with_topup(GIVEN_BACK_OPEN)


def recover_all(sv: Services, *, unknown: bool = False, given_back: bool = False) -> RecoveryReport:
    """Finish or undo every open card and wallet transaction, then drain SAF (the caller holds the money lock).
    ``unknown``: also ask the carrier what became of top-ups whose reversal was never answered, and take back those
    of sales given back while it was unreachable (boot, open items, settlement: not before every sale, where a
    carrier outage would hold up the cashier). ``given_back`` (the background follow-up): only the latter, and
    only what changed is told (a carrier still unreachable is not repeated every round)."""
    report = recover(sv.journal, sv.host, sv.carrier, terminal_id=sv.settings.terminal.id,
                     merchant_id=sv.settings.terminal.merchant_id)
    if unknown:
        rows = unknown_rows(sv, dt.datetime.now())
        asked = [ask_what_became(sv.carrier, sv.journal, r) for r in rows]
        reapplying = sum(sv.journal.get(r.txn_id).state == TxnState.TOPUP_REAPPLY for r in rows)  # open, as recover
        asked += [take_back_late(sv.carrier, sv.journal, r) for r in given_back_rows(sv)]  # named, never blocking
        report = replace(report, lines=(*report.lines, *asked), still_open=report.still_open + reapplying)
    elif given_back:
        taken = [take_back_late(sv.carrier, sv.journal, r) for r in given_back_rows(sv)]
        report = replace(report, lines=(*report.lines, *(m for m in taken if m.key != "givenback.still")))
    report = replace(report, lines=(*report.lines, *drain_saf(sv)))  # after reversals: see flows.saf
    wallet_rows = any(r.channel in WALLET_CHANNELS for r in sv.journal.open_transactions())
    if wallet_rows and sv.wallet_topup is not None:  # every platform set up, the [wallet] one or WeChat Pay / Alipay
        from flows.wallet_recovery import recover_wallet  # the wallet flows: only with a wallet row to finish

        lines, still_open = recover_wallet(sv.journal, sv.wallet_topup.wallets or sv.wallet_topup.wallet, sv.carrier,
                                           sv.wallet_topup.clock)
        report = replace(report, lines=(*report.lines, *lines), still_open=report.still_open + still_open)
    return report


def journal_writable(sv: Services) -> bool:
    """True unless the last journal write failed and a small real write (the batch counter written again as it
    is: one commit, only after a failure) still fails. The background follow-up and every new sale ask."""
    journal = sv.journal
    if not getattr(journal, "write_error", None):
        return True
    try:
        journal.advance_counters(batch=journal.current_batch())  # type: ignore[attr-defined]
    except PosError as exc:
        log.warning("journal still not writable: %s", exc)
        return False
    return True


def refuse_new_sale(sv: Services) -> TopupOutcome | None:
    """Before taking new money: the journal must be writable with room to spare (a sale it cannot record is
    never started); finish what is open; while the bank still owes a reversal, no new sale."""
    if not journal_writable(sv):
        return TopupOutcome("failed", Msg("journal.write_failed"), 0, "")
    if (free := free_mb(sv.journal.path)) is not None and free < DISK_STOP_MB:
        return TopupOutcome("failed", Msg("pay.disk_low", {"mb": free}), 0, "")
    if sv.journal.open_transactions() and recover_all(sv).reversals_open:
        return TopupOutcome("failed", Msg("pay.reversal_open"), 0, "")
    return None


def fresh_balance(sv: Services, order: TopupOrder, outcome: TopupOutcome) -> SimInfo | None:
    if outcome.status != "completed":
        return None
    try:  # what the customer now has, straight from the carrier
        return sv.carrier.lookup_sim(order.iccid)
    except PosError as exc:
        log.info("balance refresh failed: %s", exc)
        return None


def pay_card(order: TopupOrder) -> Callable[[WorkContext], tuple[TopupOutcome, SimInfo | None]]:
    def run(ctx: WorkContext) -> tuple[TopupOutcome, SimInfo | None]:
        sv = ctx.services
        with ctx.money:
            with ctx.device_check:  # let a background device check finish before the devices are used
                pass
            refused = refuse_new_sale(sv)
            if refused is not None:
                return refused, None
            outcome = sv.topup.run_card(order, ctx.progress, ctx.cancel)
            return outcome, fresh_balance(sv, order, outcome)
    return run


def scan_and_pay(order: TopupOrder) -> Callable[[WorkContext], tuple[TopupOutcome, SimInfo | None]]:
    """Scan until a payment code of the chosen wallet arrives, then pay with it."""
    def run(ctx: WorkContext) -> tuple[TopupOutcome, SimInfo | None]:
        with ctx.money:
            return _scan_and_pay(ctx, order)
    return run


def _scan_and_pay(ctx: WorkContext, order: TopupOrder) -> tuple[TopupOutcome, SimInfo | None]:
    sv, cancel, post = ctx.services, ctx.cancel, ctx.progress
    if sv.scanner is None or sv.wallet_topup is None:
        return TopupOutcome("failed", Msg("wallet.not_configured"), 0, ""), None
    refused = refuse_new_sale(sv)
    if refused is not None:
        return refused, None
    from flows.wallet_payment import classify_code  # the wallet flow (loaded with sv.wallet_topup above)

    scan_timeout = sv.settings.wallet.scan_timeout_s
    try:
        while True:
            code = sv.scanner.scan(scan_timeout, cancel)
            if code is None:
                return TopupOutcome("cancelled", Msg("wallet.no_code"), 0, ""), None
            kind = classify_code(code)
            if kind.kind is None:
                post(kind.message)
            elif kind.kind != order.quote.channel:
                post(Msg("wallet.wrong_kind", {"got": Msg(f"channel.{kind.kind}"),
                                               "want": Msg(f"channel.{order.quote.channel}")}))
            else:
                break
    except Cancelled:
        return TopupOutcome("cancelled", Msg("pay.cancelled"), 0, ""), None
    except DeviceError as exc:  # the QR direction still works: F1 stays offered until CANCEL or timeout
        post(Msg("wallet.scanner_down", {"error": exc}))
        cancel.wait(scan_timeout)
        return TopupOutcome("cancelled", Msg("wallet.scanner_down_end"), 0, ""), None
    outcome = sv.wallet_topup.pay_with_code(order, code, post, cancel)
    return outcome, fresh_balance(sv, order, outcome)


def pay_by_qr(order: TopupOrder) -> Callable[[WorkContext], tuple[TopupOutcome, SimInfo | None]]:
    def run(ctx: WorkContext) -> tuple[TopupOutcome, SimInfo | None]:
        sv = ctx.services
        with ctx.money:
            if sv.wallet_topup is None:
                return TopupOutcome("failed", Msg("wallet.not_configured"), 0, ""), None
            refused = refuse_new_sale(sv)
            if refused is not None:
                return refused, None
            outcome = sv.wallet_topup.pay_by_qr(order, ctx.progress, ctx.cancel)
            return outcome, fresh_balance(sv, order, outcome)
    return run


def check_devices(ctx: WorkContext) -> list[Check]:
    with ctx.device_check:
        return run_checks(ctx.services)
