"""The one money-moving step of every card payment (chip, stripe, tap), journal first: ``authorize_journaled``.

``auth_intended`` is written with the reversal armed before the 0200 leaves, and the host's answer after. Each
way the host can fail says whether it may have acted:

=====================================  ===========================  ============================================
host port raised / answered            journal                      what follows
=====================================  ===========================  ============================================
an answer (approved or declined)       ``approved`` / ``declined``  the kernel finishes with it
LinkTimeout, RemoteProtocolError       ``auth_unknown``, reversal   the caller reverses this STAN
                                       pending
AnswerMismatch (another amount, code,  ``auth_unknown``, reversal   the same; the cashier is told why
currency or ids than asked), or a      pending                      (``Unknown.message``): the host may have
partial approval (10)                                               taken money the terminal never asked for
UnmacedKeyError (a key error A0        ``auth_unknown``, reversal   the same; the cashier reads that the bank's
without a MAC that verifies)           pending                      key error could not be verified, the keys
                                                                    are renewed and the payment reversed
StanInUse (94: the host already has    ``declined`` (94), nothing   once: the same request under the journal's
this STAN from an older message)       to reverse                   next STAN — the client asked the host's view
                                                                    first (echo), which moved our counters past
                                                                    the host's last STAN; a second 94 ends the
                                                                    payment, nothing charged
LinkError (refused before sending)     ``auth_failed``              ``on_refused`` is told why
=====================================  ===========================  ============================================

The retry under a new STAN is safe because a 94 is the host refusing *this* message unprocessed: the terminal
never sends one purchase twice under one STAN, so the STAN the host has is an older transaction's (counters gone
back: a journal restored from an old backup). A reversal of the refused STAN would name that older transaction;
none is armed, and a cut before ``declined`` is written leaves a reversal the host matches on the original's
transmission time too (field 90), so it finds nothing to undo. The card's ARQC, the PIN block and the KSN are
sent again unchanged: the host never decided the refused message.

>>> from flows.testing import FakeJournal
>>> FakeJournal().next_stan()
1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from flows.messages import Msg
from flows.ports import PARTIAL_APPROVAL, AuthRequest, AuthResponse, HostPort, JournalPort
from flows.txn_state import TxnState
from pos_errors import AnswerMismatch, LinkError, LinkTimeout, RemoteProtocolError, StanInUse, UnmacedKeyError

__all__ = ["AuthorizePorts", "Unknown", "authorize_journaled"]

NO_ANSWER = Msg("pay.no_answer")


@dataclass(frozen=True)
class Unknown:
    """Why an authorisation's outcome is unknown (the caller reverses it), and what the cashier is told."""

    reason: str
    message: Msg = NO_ANSWER

    def __str__(self) -> str:
        return self.reason


def _unknown(exc: RemoteProtocolError | LinkTimeout) -> Unknown:
    if isinstance(exc, UnmacedKeyError):  # an A0 nobody can vouch for: keys renewed, reversed (not "no answer")
        return Unknown(str(exc), Msg("pay.key_error_unverified"))
    if not isinstance(exc, AnswerMismatch):
        return Unknown(str(exc))
    return Unknown(str(exc), Msg("pay.partial_approval" if exc.tag == "39" else "pay.answer_mismatch"))

_STAN_TRIES = 2  # the first STAN, and one fresh one after the host's view came in


class AuthorizePorts(Protocol):
    @property
    def host(self) -> HostPort: ...

    @property
    def journal(self) -> JournalPort: ...


def authorize_journaled(ports: AuthorizePorts, txn_id: int, request: AuthRequest,
                        on_refused: Callable[[LinkError], None] | None = None,
                        ) -> tuple[AuthRequest, AuthResponse | None, Unknown | None]:
    """Returns (the request as last sent, its answer, None), (request, None, why the outcome is unknown: reverse
    it) or (request, None, None) when nothing was processed; then ``on_refused`` (if given) is told why, so the
    cashier can be shown a refused TLS handshake, sign-on or a STAN the host already had."""
    journal = ports.journal
    for attempt in range(_STAN_TRIES):
        # Write-ahead: if power fails from here on, recovery reverses this STAN.
        journal.update(txn_id, TxnState.AUTH_INTENDED, stan=request.stan, masked_pan=request.masked_pan,
                       auth_time=request.local_time.isoformat(timespec="seconds"), reversal="armed",
                       entry_mode=request.pos_entry_mode)  # the reversal quotes it (field 22)
        try:
            answer = ports.host.authorize(request)
        except StanInUse as exc:  # not processed: nothing to reverse (see the module docstring)
            journal.update(txn_id, TxnState.DECLINED, response_code="94", reversal=None, message=str(exc))
            if attempt + 1 < _STAN_TRIES:
                request = replace(request, stan=journal.next_stan(durable=False))  # rides with auth_intended
                continue
            if on_refused is not None:
                on_refused(exc)
            return request, None, None
        except (LinkTimeout, RemoteProtocolError) as exc:
            unknown = _unknown(exc)
            code = {"response_code": PARTIAL_APPROVAL} if unknown.message.key == "pay.partial_approval" else {}
            journal.update(txn_id, TxnState.AUTH_UNKNOWN, reversal="pending", message=str(exc), **code)
            return request, None, unknown
        except LinkError as exc:  # refused before sending: nothing reached the host
            journal.update(txn_id, TxnState.AUTH_FAILED, reversal=None, message=str(exc))
            if on_refused is not None:
                on_refused(exc)
            return request, None, None
        if answer.response_code == PARTIAL_APPROVAL:  # a host port that passes a 10 on: never approved, reversed
            why = AnswerMismatch("partial approval (10), which this terminal never offers: reversed", tag="39")
            journal.update(txn_id, TxnState.AUTH_UNKNOWN, response_code=answer.response_code, reversal="pending",
                           message=str(why))
            return request, None, _unknown(why)
        approved = answer.approved
        journal.update(txn_id, TxnState.APPROVED if approved else "declined", response_code=answer.response_code,
                       auth_code=answer.auth_code, rrn=answer.rrn, reversal="armed" if approved else None)
        return request, answer, None
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns
