"""The carrier platform port: SIM lookup, plans, top-up orders and their status.

>>> TopupResult("O1", "not_found").status is CarrierStatus.NOT_FOUND
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

__all__ = ["SimStatus", "SimInfo", "Plan", "TopupStatus", "CarrierStatus", "TopupResult", "ReverseResult",
           "CarrierPort"]


SimStatus = Literal["active", "inactive", "suspended", "terminated"]


@dataclass(frozen=True)
class SimInfo:
    """What the carrier says about one IoT SIM."""

    iccid: str
    msisdn: str
    status: str
    plan_name: str
    balance_minor: int
    data_left_mb: int
    expiry: str
    carrier: str = "SIM-CARRIER"
    data_used_mb: int = 0
    sms_left: int = 0
    voice_left_min: int = 0

    @property
    def masked_iccid(self) -> str:
        return f"{self.iccid[:4]}…{self.iccid[-4:]}"


@dataclass(frozen=True)
class Plan:
    """One purchasable package or add-on from the carrier's catalogue."""

    plan_id: str
    name: str
    name_zh: str
    period_months: int
    price_minor: int
    data_mb: int
    sms: int = 0
    voice_min: int = 0
    promotion: str | None = None
    promo_price_minor: int | None = None
    bonus_data_mb: int = 0  # promotion: extra data on top of data_mb
    bonus_credit_minor: int = 0  # promotion: money added to the SIM's balance

    @property
    def payable_minor(self) -> int:
        return self.promo_price_minor if self.promo_price_minor is not None else self.price_minor


TopupStatus = Literal["applied", "pending", "failed", "not_found"]  # as the carrier's JSON spells them


class CarrierStatus(StrEnum):
    """The carrier's word on one order; ``TopupResult.status`` is always one of these."""

    APPLIED = "applied"
    PENDING = "pending"
    FAILED = "failed"
    NOT_FOUND = "not_found"  # the order never arrived: sending it again is safe


@dataclass(frozen=True)
class TopupResult:
    """The carrier's word on one top-up order (the order id is the terminal's own). A client may pass the
    status as the wire string; it is stored as a ``CarrierStatus`` (ValueError for any other string)."""

    order_id: str
    status: CarrierStatus | TopupStatus
    balance_minor: int | None = None
    message: str = ""
    reversed: bool = False  # an applied top-up the carrier has since taken back (the order's ``reversed_at``)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CarrierStatus(self.status))


@dataclass(frozen=True)
class ReverseResult:
    """The carrier's word on a request to take a top-up back (``reverse_topup``).

    ``reversed`` is True when the top-up is off the SIM (now, or by an earlier request: asking twice is safe).
    Otherwise ``reason`` is the carrier's machine code: ``used`` (the SIM has used the top-up),
    ``window_passed`` (too long after it was applied), ``not_applied`` (failed or still pending) or
    ``not_found`` (no such order); ``message`` is the carrier's own words (technical: log and audit only).
    """

    order_id: str
    reversed: bool
    reason: str = ""
    message: str = ""


class CarrierPort(Protocol):
    def lookup_sim(self, number: str) -> SimInfo | None:
        """ICCID or MSISDN -> SimInfo, None if the carrier does not know it. Raises LinkError/LinkTimeout."""

    def list_plans(self, iccid: str) -> Sequence[Plan]:
        """Plans this SIM may buy. Raises LinkError/LinkTimeout."""

    def create_topup(self, order_id: str, iccid: str, plan_id: str, amount_minor: int, *,
                     funding_ref: str = "") -> TopupResult:
        """Apply a top-up. Same order id twice never applies twice. LinkTimeout means outcome unknown.
        ``funding_ref``: the payment that funds it (acquirer RRN or wallet transaction id), recorded by the carrier."""

    def order_status(self, order_id: str) -> TopupResult:
        """Status of an order created earlier (``not_found`` if it never arrived)."""

    def reverse_topup(self, order_id: str, reason: str = "") -> ReverseResult:
        """Ask the carrier to take an applied top-up back off the SIM (before a void or refund gives the money
        back). Safe to repeat. Raises LinkError (LinkTimeout: outcome unknown, ask again)."""

    def health(self) -> bool:
        """True when the platform answers its health check (diagnostics). Raises LinkError."""
