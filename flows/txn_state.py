"""The per-transaction state machine the journal enforces: which state may follow which.

Each state is written **before** the external step it names (``*_intended``, ``reversal_pending``) or right after
the answer (``approved``, ``completed`` …), so the row alone tells recovery what may have happened outside::

    created ─► auth_intended ─► approved ─► paid ─► topup_intended ─► completed ─► void_pending ─► voided
       │            │  ▲            │                    ├─► topup_pending ─► completed / topup_failed
       │            │  └ declined (wrong PIN: next try)  └─► topup_failed ─► reversal_pending ─► reversed
       │            │               └─► card_declined_after_approval / card_removed_after_approval ─► reversal…
       │            ├─► declined / auth_failed (nothing charged)
       │            └─► auth_unknown ─► reversal_pending ─► reversed
       └─► cancelled / failed / abandoned (no money moved)
    reversal_pending ─► reversal_refused (host said no) ─► refund_pending ─► refunded (supervisor refund)

Every state any channel writes (chip card, magstripe, wallet QR, store-and-forward, void, refund, recovery) is a
``TxnState`` and has a row in ``TRANSITIONS``. Writing the same state again (to add a message or the receipt) is
always allowed; an unknown state or a move the table does not list raises ``IllegalTransition``. ``TxnState``
is a ``StrEnum``, so a journal row's plain string compares equal to its member.

>>> allowed(TxnState.COMPLETED, TxnState.REVERSAL_PENDING), allowed("auth_intended", "approved")
(False, True)
>>> check("completed", "qr_paid")
Traceback (most recent call last):
...
flows.txn_state.IllegalTransition: unknown transaction state 'qr_paid'
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pos_errors import LocalProtocolError

__all__ = ["TxnState", "TRANSITIONS", "FINAL", "NO_MONEY", "IllegalTransition", "allowed", "check", "parse",
           "path_to"]


class TxnState(StrEnum):
    """One journal row's state (``txn.state``). Values are what the SQLite journal stores."""

    CREATED = "created"
    AUTH_INTENDED = "auth_intended"
    APPROVED = "approved"
    DECLINED = "declined"
    AUTH_FAILED = "auth_failed"
    AUTH_UNKNOWN = "auth_unknown"
    CARD_DECLINED_AFTER_APPROVAL = "card_declined_after_approval"
    CARD_REMOVED_AFTER_APPROVAL = "card_removed_after_approval"
    PAID = "paid"
    TOPUP_INTENDED = "topup_intended"
    TOPUP_PENDING = "topup_pending"
    TOPUP_FAILED = "topup_failed"
    COMPLETED = "completed"
    REVERSAL_PENDING = "reversal_pending"
    REVERSED = "reversed"
    REVERSAL_REFUSED = "reversal_refused"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
    VOID_PENDING = "void_pending"
    VOIDED = "voided"
    WALLET_INTENDED = "wallet_intended"
    WALLET_WAITING = "wallet_waiting"
    WALLET_CANCEL_PENDING = "wallet_cancel_pending"
    CANCELLED = "cancelled"
    FAILED = "failed"
    ABANDONED = "abandoned"
    # a void or refund the bank/platform refused after the carrier had taken the top-up back: the top-up is put
    # back on the SIM (a new carrier order, ``flows.topup_back``) before the row is completed again
    TOPUP_REAPPLY = "topup_reapply"


class IllegalTransition(LocalProtocolError):
    """A state this table does not know, or a move it does not allow: a programming error, nothing written."""


S = TxnState
NO_MONEY = frozenset({S.CANCELLED, S.FAILED, S.ABANDONED})  # ended before any money moved
_REVERSE = frozenset({S.REVERSAL_PENDING})

TRANSITIONS: Mapping[TxnState, frozenset[TxnState]] = {
    # created → paid: the card approved offline (TC at the first GENERATE AC, under the floor limit)
    S.CREATED: frozenset({S.AUTH_INTENDED, S.WALLET_INTENDED, S.DECLINED, S.PAID, *NO_MONEY}),
    S.AUTH_INTENDED: frozenset({S.APPROVED, S.DECLINED, S.AUTH_UNKNOWN, S.AUTH_FAILED, *_REVERSE}),
    S.DECLINED: frozenset({S.AUTH_INTENDED, S.CANCELLED, S.FAILED}),  # a wrong PIN starts the next try
    S.AUTH_FAILED: frozenset({S.FAILED, S.CANCELLED, S.DECLINED}),
    S.AUTH_UNKNOWN: frozenset({*_REVERSE, S.FAILED}),
    S.APPROVED: frozenset({S.PAID, S.CARD_DECLINED_AFTER_APPROVAL, S.CARD_REMOVED_AFTER_APPROVAL, *_REVERSE}),
    S.CARD_DECLINED_AFTER_APPROVAL: _REVERSE,
    S.CARD_REMOVED_AFTER_APPROVAL: _REVERSE,
    S.PAID: frozenset({S.TOPUP_INTENDED, S.COMPLETED, S.TOPUP_FAILED, S.TOPUP_PENDING}),
    S.TOPUP_INTENDED: frozenset({S.COMPLETED, S.TOPUP_FAILED, S.TOPUP_PENDING}),
    S.TOPUP_PENDING: frozenset({S.COMPLETED, S.TOPUP_FAILED}),
    S.TOPUP_FAILED: frozenset({*_REVERSE, S.WALLET_CANCEL_PENDING}),  # a wallet refunds instead of reversing
    S.REVERSAL_PENDING: frozenset({S.REVERSED, S.REVERSAL_REFUSED}),
    # the host refused the reversal: the money stays taken until a supervisor refunds it (flows.refund)
    S.REVERSAL_REFUSED: frozenset({S.REFUND_PENDING}),
    # a settled sale's refund declined: completed, or topup_reapply when the carrier had taken the top-up back
    S.REFUND_PENDING: frozenset({S.REFUNDED, S.REVERSAL_REFUSED, S.COMPLETED, S.TOPUP_REAPPLY}),
    S.REFUNDED: frozenset(),
    # refund: a sale of a settled batch (flows.refund); topup_reapply: a kept sale whose carrier reversal had been
    # sent without an answer turns out to have reached the carrier (flows.topup_back.ask_what_became)
    S.COMPLETED: frozenset({S.VOID_PENDING, S.REFUND_PENDING, S.TOPUP_REAPPLY}),
    S.VOID_PENDING: frozenset({S.VOIDED, S.COMPLETED, S.TOPUP_REAPPLY}),
    S.TOPUP_REAPPLY: frozenset({S.COMPLETED}),
    # wallet QR (flows.wallet_payment): the order is journalled before the code or QR order is sent
    S.WALLET_INTENDED: frozenset({S.WALLET_WAITING, S.PAID, S.DECLINED, S.WALLET_CANCEL_PENDING, *NO_MONEY}),
    S.WALLET_WAITING: frozenset({S.PAID, S.DECLINED, S.WALLET_CANCEL_PENDING, *NO_MONEY}),
    S.WALLET_CANCEL_PENDING: frozenset({S.CANCELLED, S.REVERSED, S.PAID, S.FAILED}),
    S.REVERSED: frozenset(),
    S.VOIDED: frozenset(),
    **{state: frozenset() for state in NO_MONEY},
}

# Nothing left for recovery to do (declined and auth_failed may still move inside the running flow: PIN retry).
FINAL: frozenset[TxnState] = frozenset({S.COMPLETED, S.DECLINED, S.REVERSED, S.CANCELLED, S.FAILED, S.AUTH_FAILED,
                                        S.ABANDONED, S.VOIDED, S.REFUNDED})


def parse(state: str) -> TxnState:
    """The member for a stored state; ``IllegalTransition`` for a string no channel may write."""
    try:
        return TxnState(state)
    except ValueError:
        raise IllegalTransition(f"unknown transaction state {state!r}") from None


def check(current: str, new: str) -> TxnState:
    """The new state as a member when a row in ``current`` may be written as ``new``; raises otherwise."""
    old, nxt = parse(current), parse(new)
    if old is not nxt and nxt not in TRANSITIONS[old]:
        raise IllegalTransition(f"cannot go from {old} to {nxt}")
    return nxt


def allowed(current: str, new: str) -> bool:
    """May a row in ``current`` be written as ``new``? Unknown states never may."""
    try:
        check(current, new)
    except IllegalTransition:
        return False
    return True


def path_to(state: str, start: str = S.CREATED, through: str | None = None) -> list[TxnState]:
    """The shortest legal sequence of states after ``start`` that ends in ``state``, passing ``through`` if given
    (for tests and docs).

    >>> [str(s) for s in path_to("topup_failed")]
    ['paid', 'topup_failed']
    >>> [str(s) for s in path_to("topup_failed", through="auth_intended")]
    ['auth_intended', 'approved', 'paid', 'topup_failed']
    """
    if through is not None:
        return path_to(through, start) + path_to(state, through)
    goal, first = parse(state), parse(start)
    paths: dict[TxnState, list[TxnState]] = {first: []}
    frontier = [first]
    while frontier and goal not in paths:
        nxt = []
        for current in frontier:
            for new in sorted(TRANSITIONS[current]):
                if new not in paths:
                    paths[new] = [*paths[current], new]
                    nxt.append(new)
        frontier = nxt
    if goal not in paths:
        raise ValueError(f"{state!r} cannot be reached from {start!r}")
    return paths[goal]
