"""Reversals: give the money back when an authorisation's outcome is unknown or must be undone.

The reversal's own STAN is journalled before the first 0400 leaves, so after a power cut the same reversal is
repeated (0401) rather than a second one invented. Reversals carry no PAN: the acquirer finds the original by
terminal id and the original STAN in field 90, so the journal never needs the full PAN. They carry the original's
POS entry mode (field 22: chip 051, tap 071, stripe 901, fallback 801 — journalled with the 0200), which the
acquirer matches and risk-checks; a row journalled before the entry mode was kept goes with 071 for a tap and
051 otherwise, as such rows always did.

>>> original_from_record.__name__
'original_from_record'
"""

from __future__ import annotations

import datetime as dt

from flows.ports import AuthRequest, HostPort, JournalPort, ReversalRequest, TxnRecord
from flows.pricing import TAP_CHANNEL
from flows.txn_state import TxnState
from pos_errors import LinkError, RemoteProtocolError

__all__ = ["original_from_record", "reverse_payment", "REVERSAL_REFUSED"]

REVERSAL_REFUSED = TxnState.REVERSAL_REFUSED
_TAKEN = ("00", "25")  # done, or no such original (nothing to undo): either way the reversal has ended


def original_from_record(record: TxnRecord, terminal_id: str, merchant_id: str) -> AuthRequest:
    """The original authorisation as far as the journal knows it (no PAN, no track, no PIN)."""
    when = dt.datetime.fromisoformat(record.auth_time) if record.auth_time else dt.datetime.now()
    entry_mode = record.entry_mode or ("071" if record.channel == TAP_CHANNEL else "051")
    return AuthRequest(stan=record.stan or 0, amount_minor=record.total_minor, local_time=when, pan="",
                       expiry_yymm="", pos_entry_mode=entry_mode, terminal_id=terminal_id, merchant_id=merchant_id)


def reverse_payment(host: HostPort, journal: JournalPort, record: TxnRecord, *, terminal_id: str,
                    merchant_id: str, attempts: int = 3, reason_code: str = "68",
                    pending_state: str = TxnState.REVERSAL_PENDING, final_state: str = TxnState.REVERSED,
                    refused_state: str = REVERSAL_REFUSED) -> bool:
    """Send the reversal for ``record`` until acknowledged or ``attempts`` run out.

    Returns True when the host acknowledged it (state ``final_state``, ``reversed`` by default); False leaves
    the row in ``pending_state`` for the next try (before the next sale, and at boot), or in ``refused_state``
    when the host answered but refused it (repeating cannot help: a supervisor refunds it, ``flows.refund``).
    A void is the same message with reason 17 (customer cancellation) and the states ``void_pending`` /
    ``voided``.
    """
    repeat = record.reversal_stan is not None
    stan = record.reversal_stan if record.reversal_stan is not None else journal.next_stan()
    journal.update(record.txn_id, pending_state, reversal="pending", reversal_stan=stan)
    original = original_from_record(record, terminal_id, merchant_id)
    for _ in range(attempts):
        try:
            code = host.reverse(ReversalRequest(stan=stan, original=original, reason_code=reason_code,
                                                repeat=repeat))
        except (LinkError, RemoteProtocolError) as exc:
            repeat = True
            journal.update(record.txn_id, pending_state, message=f"reversal not acknowledged: {exc}")
            continue
        if code not in _TAKEN:
            journal.update(record.txn_id, refused_state, reversal="refused", message=f"reversal refused ({code})")
            return False
        journal.update(record.txn_id, final_state, reversal="done", message=f"reversal acknowledged ({code})")
        return True
    return False
