"""SIM lookup decisions: what the carrier's answer (or its silence) means for the sale.

The terminal asks the carrier about the keyed SIM; this module decides, from the answer alone, which screen comes
next and which message (a catalogue key with its arguments) the cashier sees. No I/O: the answer is given.

>>> decide(None, None, purpose="topup")
LookupDecision(outcome=<LookupOutcome.UNKNOWN: 'unknown'>, message=Msg(key='sim.unknown', args={}))
>>> needs_plans(SimInfo("8986", "1064", "active", "P", 0, 0, ""), purpose="topup")
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flows.messages import CATALOGUE, Msg
from flows.ports import SimInfo
from pos_errors import LinkError, PosError

__all__ = ["LookupOutcome", "LookupDecision", "decide", "needs_plans", "ACTIVE"]

ACTIVE = "active"


class LookupOutcome(StrEnum):
    FOUND = "found"  # an active SIM: go on to its details and plans
    STATUS = "status"  # a balance query: show the status whatever it is
    UNKNOWN = "unknown"  # the carrier does not know the number: re-enter
    NOT_ACTIVE = "not_active"  # known but not active (suspended, cancelled …): cannot be topped up
    UNREACHABLE = "unreachable"  # the carrier could not be asked (link or protocol fault): try again
    FAILED = "failed"  # anything else went wrong while asking


@dataclass(frozen=True)
class LookupDecision:
    outcome: LookupOutcome
    message: Msg | None = None  # None when the sale goes on


def needs_plans(sim: SimInfo | None, *, purpose: str) -> bool:
    """Whether the plan list is worth asking for: only for an active SIM being topped up."""
    return sim is not None and sim.status == ACTIVE and purpose != "balance"


def decide(sim: SimInfo | None, error: BaseException | None, *, purpose: str) -> LookupDecision:
    """The next step after asking the carrier about a SIM (``purpose``: "topup" or "balance")."""
    if error is not None:
        if isinstance(error, LinkError | PosError):
            return LookupDecision(LookupOutcome.UNREACHABLE, Msg("sim.unreachable", {"error": error}))
        return LookupDecision(LookupOutcome.FAILED, Msg("sim.lookup_failed", {"error": error}))
    if sim is None:
        return LookupDecision(LookupOutcome.UNKNOWN, Msg("sim.unknown"))
    if purpose == "balance":  # the query shows any status, active or not
        return LookupDecision(LookupOutcome.STATUS)
    if sim.status != ACTIVE:
        key = f"simstatus.{sim.status}"
        status = Msg(key) if key in CATALOGUE else sim.status.upper()
        return LookupDecision(LookupOutcome.NOT_ACTIVE, Msg("sim.not_active", {"status": status}))
    return LookupDecision(LookupOutcome.FOUND)
