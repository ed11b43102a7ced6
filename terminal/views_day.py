"""End-of-day and supervisor screens: settlement per channel (card batch, wallets reconciled), void, open items.

>>> from terminal.views import Session
>>> render_settlement(Session(lang="en")).title
'Settlement'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows.messages import CATALOGUE, Msg, say, state_label, t
from flows.money import format_money
from flows.ports import BatchTotals, TxnRecord
from flows.pricing import WALLET_CHANNELS, channel_label
from flows.settlement import mismatch_line, reapply_line
from terminal.machine import State
from terminal.office_state import VOID_PAGE
from terminal.screens import MenuItem, Screen
from terminal.views import Session

__all__ = ["DAY_RENDERERS"]


def _t(s: Session, key: str, **args: Any) -> str:
    return t(key, s.lang, **args)


def _totals_lines(s: Session, totals: BatchTotals | None) -> tuple[str, ...]:
    if totals is None:
        return ()
    return (f"{_t(s, 'settle.batch')}: {totals.batch:06d}",
            f"{_t(s, 'settle.sales')}: {totals.sale_count} · {format_money(totals.sale_minor)}",
            f"{_t(s, 'settle.voids')}: {totals.void_count} · {format_money(totals.void_minor)}")


def _channel_lines(s: Session, channels: tuple[Any, ...]) -> tuple[str, ...]:
    if not channels:
        return ()
    return (_t(s, "settle.channels"), *(
        "  " + _t(s, "settle.channel_line", channel=_channel_name(c.channel, s.lang), count=c.count,
                  money=format_money(c.amount_minor)) for c in channels))


def _channel_name(channel: str, lang: str) -> Msg | str:
    """The channel's name as a catalogue Msg, so each half of a bilingual line names it once in its language."""
    key = f"channel.{channel}"
    return Msg(key) if key in CATALOGUE else channel_label(channel, lang)


def render_settlement(s: Session) -> Screen:
    return Screen(State.SETTLEMENT.value, _t(s, "settle.title"),
                  (*_totals_lines(s, s.settle_totals), *_channel_lines(s, s.settle_channels)), error=s.error,
                  hint=_t(s, "settle.hint"))


def render_settling(s: Session) -> Screen:
    return Screen(State.SETTLING.value, _t(s, "settle.busy_title"), (_t(s, "settle.busy"),), busy=True,
                  error=s.error)


def render_settled(s: Session) -> Screen:
    r = s.settlement
    lines: list[str] = [say(r.message, s.lang), *_totals_lines(s, r.totals), *_channel_lines(s, r.channels)] \
        if r else []
    w = r.wallets if r else None
    if w is not None and (w.checked or w.mismatches):
        lines.append(_t(s, "settle.wallets_ok", count=w.checked) if w.ok else
                     _t(s, "settle.wallets_differ", count=len(w.mismatches)))
        lines.extend("  " + say(mismatch_line(m), s.lang) for m in w.mismatches)
    if r is not None and r.reapplying:  # counted as sales; the carrier's part still open (open items)
        lines.append(_t(s, "settle.reapplying", count=len(r.reapplying)))
        lines.extend("  " + say(reapply_line(x), s.lang) for x in r.reapplying)
    if r is not None and r.given_back:  # given back while the carrier was unreachable: still not answered
        lines.append(_t(s, "settle.given_back", count=len(r.given_back)))
        lines.extend("  " + say(reapply_line(x), s.lang) for x in r.given_back)
    if s.progress:
        lines.append(s.progress)
    hint = (_t(s, "settle.retry_hint") if r is not None and not r.closed else
            _t(s, "settle.reconcile_hint") if w is not None and not w.ok else _t(s, "nav.home"))
    return Screen(State.SETTLED.value, _t(s, "settle.title"), tuple(lines), error=s.error, hint=hint,
                  extra={"status": r.status if r else "", "wallets": "" if w is None else
                         "ok" if w.ok else "differ"})


def _void_label(r: TxnRecord) -> str:
    return f"{r.created_at[11:16]} SIM …{r.iccid[-4:]} {format_money(r.total_minor)} {r.masked_pan or ''}".rstrip()


def render_void_select(s: Session) -> Screen:
    first, pages = s.void_page * VOID_PAGE, max(1, -(-len(s.void_list) // VOID_PAGE))
    menu = tuple(MenuItem(str(i + 1), _void_label(r)) for i, r in enumerate(s.void_list[first:first + VOID_PAGE]))
    lines = () if menu else (_t(s, "void.none"),)
    title = _t(s, "void.select_title") if pages == 1 else _t(s, "void.select_page", page=s.void_page + 1,
                                                               pages=pages)
    return Screen(State.VOID_SELECT.value, title, lines, menu=menu, error=s.error,
                  hint=_t(s, "void.select_hint" if pages == 1 else "void.select_hint_pages"))


def render_void_confirm(s: Session) -> Screen:
    r = s.void_pick
    lines = () if r is None else (
        _void_label(r), f"{_t(s, 'label.order')}: {r.order_id}",
        f"{_t(s, 'rcpt.wallet_txn')}: {r.rrn or '-'}" if r.channel in WALLET_CHANNELS else  # no STAN of ours
        f"STAN {r.stan or 0:06d} · {_t(s, 'label.auth')} {r.auth_code or '-'}",
        _t(s, "wvoid.effect" if r.channel in WALLET_CHANNELS else "refund.effect" if _refund(s, r)
           else "void.effect"))
    kind = "refund" if r is not None and _refund(s, r) else "void"  # a sale of a closed batch is refunded
    return Screen(State.VOID_CONFIRM.value, _t(s, f"{kind}.confirm_title"), lines, error=s.error,
                  hint=_t(s, "reverse.anyway_hint" if s.void_refusal else f"{kind}.confirm_hint"))


def _refund(s: Session, r: TxnRecord) -> bool:
    return r.batch is not None and 0 < s.void_batch and r.batch < s.void_batch


def render_voiding(s: Session) -> Screen:
    return Screen(State.VOIDING.value, _t(s, "void.busy_title"), (_t(s, "reverse.busy"),), busy=True)


def render_void_done(s: Session) -> Screen:
    r = s.void_result
    title = "refund.action" if s.void_pick is not None and _refund(s, s.void_pick) else "void.title"
    return Screen(State.VOID_DONE.value, _t(s, title), (say(r.message, s.lang),) if r else (), error=s.error,
                  hint=_t(s, "nav.home"), extra={"status": r.status if r else ""})


def render_open_items(s: Session) -> Screen:
    """The open rows as a numbered list (1-9 picks one: ``►`` marks it, F2 refunds it), then the notices."""
    menu = tuple(MenuItem(str(i), f"{'► ' if r.txn_id == s.open_pick else ''}{r.created_at[11:16]} "
                                  f"{say(state_label(r.state), s.lang)} SIM …{r.iccid[-4:]} "
                                  f"{format_money(r.total_minor)} {r.order_id}")
                 for i, r in enumerate(s.open_items[:9], 1))
    lines = () if menu else (_t(s, "open.none"),)
    more = (_t(s, "open.more", count=len(s.open_items) - 9),) if len(s.open_items) > 9 else ()
    return Screen(State.OPEN_ITEMS.value, _t(s, "home.open_items"), (*lines, *more, *s.notice), menu=menu,
                  error=s.error, hint=_t(s, "open.hint_pick"))


DAY_RENDERERS: Mapping[State, Callable[[Session], Screen]] = {
    State.SETTLEMENT: render_settlement, State.SETTLING: render_settling, State.SETTLED: render_settled,
    State.VOID_SELECT: render_void_select, State.VOID_CONFIRM: render_void_confirm, State.VOIDING: render_voiding,
    State.VOID_DONE: render_void_done, State.OPEN_ITEMS: render_open_items,
}
