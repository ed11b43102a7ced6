"""End-of-day settlement: close the batch with the host (0500), upload it when the totals differ (0320), close
again, print the report, start a new batch.

The terminal's totals come from the journal: every ``completed`` transaction of the batch is a captured sale,
every ``voided`` one is listed as a void (the host already took it out). Open transactions must be finished
first (recovery), so the totals cannot change while the batch closes. A power cut during settlement is harmless:
the batch stays open in the journal until the host said ``00``, and closing the same batch again is idempotent at
the host.

>>> from flows.ports import TxnRecord
>>> rows = [TxnRecord(1, "completed", "O1", "8986", "1064", "P", "p", 3000, 0, "card", "01", "t", stan=5),
...         TxnRecord(2, "reversed", "O2", "8986", "1064", "P", "p", 1097, 0, "card", "01", "t", stan=6)]
>>> batch_totals(rows, 1)
BatchTotals(batch=1, sale_count=1, sale_minor=3000, void_count=0, void_minor=0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from flows.messages import CATALOGUE, Msg, Text, say, state_label
from flows.messages import t as _t
from flows.money import format_money
from flows.ports import (
    BatchTotals,
    BatchUploadItem,
    ReceiptLine,
    SettlementHostPort,
    SettlementRequest,
    TxnRecord,
)
from flows.pricing import WALLET_CHANNELS, channel_label
from flows.reconcile import (
    ChannelTotals,
    Reconciliation,
    WalletMismatch,
    WalletPorts,
    channel_totals,
    reconcile_wallets,
)
from flows.saf import SafRow
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["SettlementJournal", "SettlementResult", "batch_totals", "settle_batch", "settle_day", "report_lines",
           "mismatch_line", "SALE_STATES", "REAPPLYING", "reapplying", "reapply_line"]

# Captured at the host: completed sales (online or advised offline approvals), and sales whose reversal the host
# refused (still captured; a refund is its own message and does not change the sale totals), and sales whose void
# or refund the bank refused while their top-up is being put back on the SIM (``topup_reapply``: the money was
# taken and stays taken; the sale stands — only the carrier's part is still open, and it does not hold the batch).
SALE_STATES = frozenset({"completed", "reversal_refused", "refund_pending", "refunded", "topup_reapply"})
REAPPLYING = "topup_reapply"

BALANCED = "00"
RECONCILE_ERROR = "95"


class SettlementJournal(Protocol):
    def next_stan(self) -> int: ...

    def close_batch(self, totals: BatchTotals, *, uploaded: bool, report: str) -> int:
        """Record the closed batch and start the next one, atomically; returns the new batch number."""


@dataclass(frozen=True)
class SettlementResult:
    """``status``: closed | failed. ``uploaded``: a batch upload was needed (first totals differed)."""

    status: str
    totals: BatchTotals
    uploaded: bool
    response_code: str | None
    new_batch: int | None
    message: Text  # a catalogue Msg, shown in the screen's language
    channels: tuple[ChannelTotals, ...] = ()  # every channel's captured sales (card and wallets)
    wallets: Reconciliation | None = None  # the wallet platforms' word on each wallet order (None: not asked)
    reapplying: tuple[TxnRecord, ...] = ()  # sales counted whose top-up is still being put back (named)
    given_back: tuple[TxnRecord, ...] = ()  # sales given back while the carrier was unreachable: top-up maybe on
    advices_failed: tuple[SafRow, ...] = ()  # offline approvals whose advice the host never took (flows.saf)

    @property
    def closed(self) -> bool:
        return self.status == "closed"


def batch_totals(records: Sequence[TxnRecord], batch: int) -> BatchTotals:
    """The acquirer's batch: card sales only (wallet sales are reconciled with their platforms, ``settle_day``)."""
    cards = [r for r in records if r.channel not in WALLET_CHANNELS]
    sales = [r.total_minor for r in cards if r.state in SALE_STATES]
    voids = [r.total_minor for r in cards if r.state == "voided"]
    return BatchTotals(batch, len(sales), sum(sales), len(voids), sum(voids))


def settle_batch(host: SettlementHostPort, journal: SettlementJournal, records: Sequence[TxnRecord], *,
                 batch: int, report: str = "") -> SettlementResult:
    """Close ``batch`` (``records`` are its journal rows). Never raises for a host problem: see the result."""
    totals = batch_totals(records, batch)
    uploaded = False
    try:
        code = host.settle(SettlementRequest(journal.next_stan(), totals))
        if code == RECONCILE_ERROR:
            uploaded = True
            for r in records:
                if r.state in SALE_STATES and r.stan is not None and r.channel not in WALLET_CHANNELS:
                    host.upload(BatchUploadItem(journal.next_stan(), r.stan, r.total_minor, r.auth_code or "",
                                                r.rrn or "", batch))
            code = host.settle(SettlementRequest(journal.next_stan(), totals, after_upload=True))
    except (LinkError, RemoteProtocolError) as exc:
        return SettlementResult("failed", totals, uploaded, None, None,
                                Msg("settle.unreachable", {"batch": batch, "error": exc}))
    if code != BALANCED:
        return SettlementResult("failed", totals, uploaded, code, None,
                                Msg("settle.refused", {"batch": batch, "code": code}))
    new_batch = journal.close_batch(totals, uploaded=uploaded, report=report)
    return SettlementResult("closed", totals, uploaded, code, new_batch,
                            Msg("settle.closed_upload" if uploaded else "settle.closed",
                                {"batch": batch, "count": totals.sale_count, "money": format_money(totals.sale_minor)}))


def settle_day(host: SettlementHostPort, wallet: WalletPorts, journal: SettlementJournal,
               records: Sequence[TxnRecord], *, batch: int, report: str = "") -> SettlementResult:
    """The whole end of day: the wallet orders reconciled with their platform first (while the batch is open),
    then the card batch closed with the acquirer. A wallet difference never keeps the card batch open: it is
    named on the screen and the report, and ``reconcile_wallets`` may be asked again later."""
    wallets = reconcile_wallets(wallet, records)
    result = settle_batch(host, journal, records, batch=batch, report=report)
    return replace(result, channels=channel_totals(records), wallets=wallets, reapplying=reapplying(records))


def reapplying(records: Sequence[TxnRecord]) -> tuple[TxnRecord, ...]:
    """Sales of the batch whose void/refund the bank or platform refused and whose top-up is still being put back:
    counted as sales, named on the screen and the report (open items follows them up)."""
    return tuple(r for r in records if r.state == REAPPLYING)


def reapply_line(r: TxnRecord) -> Msg:
    return Msg("settle.reapply_line", {"sim": f"…{r.iccid[-4:]}", "money": format_money(r.total_minor),
                                       "order": r.order_id})


def _channel_lines(result: SettlementResult, lang: str) -> list[ReceiptLine]:
    lines: list[ReceiptLine] = []
    for c in result.channels:
        label = channel_label(c.channel, lang)
        if len(label) > 14:  # a long (bilingual) name on its own line, the figures under it
            lines.append(ReceiptLine(label))
            label = ""
        lines.append(ReceiptLine(f"{label:<14}{c.count:3d}  {format_money(c.amount_minor):>12}"))
    w = result.wallets
    if w is None or not any(c.channel in WALLET_CHANNELS for c in result.channels) and w.ok:
        return lines
    lines.append(ReceiptLine(_t("srpt.wallets_ok" if w.ok else "srpt.wallets_differ", lang), bold=True))
    lines.extend(ReceiptLine(say(mismatch_line(m), lang)) for m in w.mismatches)
    return lines


def mismatch_line(m: WalletMismatch) -> Msg:
    """One differing wallet order, for the screen and the report (states in the reader's language)."""
    theirs = f"wstatus.{m.theirs}"
    return Msg("settle.mismatch_line", {"order": m.order_id, "channel": Msg(f"channel.{m.channel}"),
                                        "money": format_money(m.total_minor), "ours": state_label(m.ours),
                                        "theirs": Msg(theirs) if theirs in CATALOGUE else m.theirs})


def report_lines(result: SettlementResult, *, merchant_name: str, terminal_id: str, merchant_id: str,
                 when: str, lang: str = "both") -> tuple[ReceiptLine, ...]:
    t = result.totals
    status = _t("srpt.balanced" if result.closed and not result.uploaded else
                "srpt.after_upload" if result.closed else "srpt.not_closed", lang)
    return (
        ReceiptLine(merchant_name, align="center", bold=True),
        ReceiptLine(_t("srpt.title", lang), align="center", bold=True, double=True),
        ReceiptLine(f"TID {terminal_id}  MID {merchant_id}"),
        ReceiptLine(f"BATCH {t.batch:06d}  {when}"),
        ReceiptLine("-" * 32),
        ReceiptLine(f"{_t('srpt.sales', lang):<14}{t.sale_count:3d}  {format_money(t.sale_minor):>12}"),
        ReceiptLine(f"{_t('srpt.voids', lang):<14}{t.void_count:3d}  {format_money(t.void_minor):>12}"),
        ReceiptLine(f"{_t('srpt.net', lang):<19}{format_money(t.sale_minor):>12}", bold=True),
        ReceiptLine("-" * 32),
        *_channel_lines(result, lang),
        *((ReceiptLine("-" * 32),) if result.channels else ()),
        *((ReceiptLine(_t("srpt.reapplying", lang, count=len(result.reapplying)), bold=True),) if result.reapplying
          else ()),
        *(ReceiptLine(say(reapply_line(r), lang)) for r in result.reapplying),
        *((ReceiptLine(_t("srpt.given_back", lang, count=len(result.given_back)), bold=True),) if result.given_back
          else ()),
        *(ReceiptLine(say(reapply_line(r), lang)) for r in result.given_back),
        *_failed_advice_lines(result.advices_failed, lang),
        ReceiptLine(status, align="center", bold=True),
        ReceiptLine(f"NEXT BATCH {result.new_batch:06d}" if result.new_batch else "", align="center"),
    )


def _failed_advice_lines(rows: Sequence[SafRow], lang: str) -> tuple[ReceiptLine, ...]:
    """Offline approvals whose advice stopped ``failed``: named for the supervisor (the batch upload carries them)."""
    if not rows:
        return ()
    return (ReceiptLine(_t("srpt.advices_failed", lang, count=len(rows)), bold=True),
            *(ReceiptLine(f"{r.stan:06d} {format_money(r.amount_minor)} {r.masked_pan}") for r in rows))
