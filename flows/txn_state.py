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

Writing the same state again (to add a message or the receipt) is always allowed. States this table does not
know (a new payment channel's own) are allowed in and out, so channels can be added without editing it; the
journal still refuses to move a known final state back to an open one.

>>> allowed("completed", "reversal_pending"), allowed("auth_intended", "approved")
(False, True)
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TRANSITIONS", "FINAL", "allowed", "path_to"]

_NO_MONEY = ("cancelled", "failed", "abandoned")
_REVERSE = ("reversal_pending",)

TRANSITIONS: Mapping[str, frozenset[str]] = {
    # created → paid: the card approved offline (TC at the first GENERATE AC, under the floor limit)
    "created": frozenset({"auth_intended", "wallet_intended", "declined", "paid", *_NO_MONEY}),
    "auth_intended": frozenset({"approved", "declined", "auth_unknown", "auth_failed", *_REVERSE}),
    "declined": frozenset({"auth_intended", "cancelled", "failed"}),  # a wrong PIN starts the next try
    "auth_failed": frozenset({"failed", "cancelled", "declined"}),
    "auth_unknown": frozenset({*_REVERSE, "failed"}),
    "approved": frozenset({"paid", "card_declined_after_approval", "card_removed_after_approval", *_REVERSE}),
    "card_declined_after_approval": frozenset(_REVERSE),
    "card_removed_after_approval": frozenset(_REVERSE),
    "paid": frozenset({"topup_intended", "completed", "topup_failed", "topup_pending"}),
    "topup_intended": frozenset({"completed", "topup_failed", "topup_pending"}),
    "topup_pending": frozenset({"completed", "topup_failed"}),
    "topup_failed": frozenset({*_REVERSE, "wallet_cancel_pending"}),  # a wallet refunds instead of reversing
    "reversal_pending": frozenset({"reversed", "reversal_refused"}),
    # the host refused the reversal: the money stays taken until a supervisor refunds it (flows.refund)
    "reversal_refused": frozenset({"refund_pending"}),
    "refund_pending": frozenset({"refunded", "reversal_refused"}),
    "refunded": frozenset(),
    "completed": frozenset({"void_pending"}),
    "void_pending": frozenset({"voided", "completed"}),
    # wallet QR (flows.wallet_payment): the order is journalled before the code or QR order is sent
    "wallet_intended": frozenset({"wallet_waiting", "paid", "declined", "wallet_cancel_pending", *_NO_MONEY}),
    "wallet_waiting": frozenset({"paid", "declined", "wallet_cancel_pending", *_NO_MONEY}),
    "wallet_cancel_pending": frozenset({"cancelled", "reversed", "paid", "failed"}),
    "reversed": frozenset(),
    "voided": frozenset(),
    **{state: frozenset() for state in _NO_MONEY},
}

# Nothing left for recovery to do (declined and auth_failed may still move inside the running flow: PIN retry).
FINAL = frozenset({"completed", "declined", "reversed", "cancelled", "failed", "auth_failed", "abandoned",
                   "voided", "refunded"})


def allowed(current: str, new: str) -> bool:
    """May a row in ``current`` be written as ``new``?"""
    if current == new or current not in TRANSITIONS:
        return True
    if new not in TRANSITIONS:  # another channel's own state: fine, but never out of a final one
        return current not in FINAL
    return new in TRANSITIONS[current]


def path_to(state: str, start: str = "created", through: str | None = None) -> list[str]:
    """The shortest legal sequence of states after ``start`` that ends in ``state``, passing ``through`` if given
    (for tests and docs).

    >>> path_to("topup_failed")
    ['paid', 'topup_failed']
    >>> path_to("topup_failed", through="auth_intended")
    ['auth_intended', 'approved', 'paid', 'topup_failed']
    """
    if through is not None:
        return path_to(through, start) + path_to(state, through)
    paths: dict[str, list[str]] = {start: []}
    frontier = [start]
    while frontier and state not in paths:
        nxt = []
        for current in frontier:
            for new in sorted(TRANSITIONS.get(current, ())):
                if new not in paths:
                    paths[new] = [*paths[current], new]
                    nxt.append(new)
        frontier = nxt
    if state not in paths:
        raise ValueError(f"{state!r} cannot be reached from {start!r}")
    return paths[state]
