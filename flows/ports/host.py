"""The acquirer host ports: authorisation and reversal, advices and refunds, settlement (ISO 8583 values).

>>> AuthResponse("00").approved, AuthResponse("05").approved, AuthResponse("10").approved
(True, False, False)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from emv.pan import mask_pan
from flows.ports.base import CURRENCY_CNY

__all__ = ["APPROVAL_CODES", "PARTIAL_APPROVAL", "AuthRequest", "AuthResponse", "ReversalRequest", "HostPort",
           "AdviceRequest", "RefundRequest",
           "AdviceHostPort", "RefundHostPort", "BatchTotals", "SettlementRequest", "BatchUploadItem",
           "SettlementHostPort"]

APPROVAL_CODES = ("00", "11")  # approved, approved (VIP): the whole amount
# Approved for a partial amount: the host took *some* money. This terminal never offers partial approval (a top-up
# is all or nothing), so a 10 is no approval: the payment is reversed (``flows.authorize``).
PARTIAL_APPROVAL = "10"


@dataclass(frozen=True)
class AuthRequest:
    """An online authorisation (ISO 8583 0200 financial request)."""

    stan: int
    amount_minor: int
    local_time: dt.datetime
    pan: str = field(repr=False)
    expiry_yymm: str = field(repr=False)
    pan_sequence: str | None = None
    track2: bytes | None = field(default=None, repr=False)
    pos_entry_mode: str = "051"
    icc_data: bytes = b""
    pin_block: bytes | None = field(default=None, repr=False)
    ksn: bytes | None = None
    currency: str = CURRENCY_CNY
    terminal_id: str = ""
    merchant_id: str = ""

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)


@dataclass(frozen=True)
class AuthResponse:
    """The host's answer. ``icc_data`` carries 91 (issuer authentication data) and issuer scripts."""

    response_code: str
    auth_code: str = ""
    rrn: str = ""
    icc_data: bytes = b""

    @property
    def approved(self) -> bool:
        return self.response_code in APPROVAL_CODES


@dataclass(frozen=True)
class ReversalRequest:
    """Undo an authorisation (0400; ``repeat`` makes it 0401)."""

    stan: int
    original: AuthRequest
    reason_code: str = "68"
    repeat: bool = False


class HostPort(Protocol):
    def authorize(self, request: AuthRequest) -> AuthResponse:
        """Raises LinkTimeout (outcome unknown: reverse it) or LinkError (never sent)."""

    def reverse(self, request: ReversalRequest) -> str:
        """Returns the host's response code; raises LinkTimeout/LinkError when not acknowledged."""

    def echo(self) -> bool:
        """0800 network management echo; True when the host answered."""


@dataclass(frozen=True)
class AdviceRequest:
    """A payment the card approved offline, told to the host afterwards (0220; ``repeat`` makes it 0221)."""

    auth: AuthRequest
    auth_code: str
    repeat: bool = False


@dataclass(frozen=True)
class RefundRequest:
    """Give back a captured payment (0200, processing code 200000) by reference: field 90 names the original
    (terminal id + STAN), so no PAN is needed."""

    stan: int
    original: AuthRequest
    rrn: str = ""
    auth_code: str = ""


class AdviceHostPort(Protocol):
    def advise(self, request: AdviceRequest) -> str:
        """Returns the 0230's response code; raises LinkError/RemoteProtocolError when not acknowledged."""


class RefundHostPort(Protocol):
    def refund(self, request: RefundRequest) -> AuthResponse:
        """Raises LinkTimeout/RemoteProtocolError (outcome unknown: repeat) or LinkError (never sent)."""


@dataclass(frozen=True)
class BatchTotals:
    """What one settlement batch holds, as the terminal counts it (captured sales, and voids for the report)."""

    batch: int
    sale_count: int
    sale_minor: int
    void_count: int = 0
    void_minor: int = 0


@dataclass(frozen=True)
class SettlementRequest:
    """Close the batch (0500); ``after_upload`` marks the second close after a batch upload."""

    stan: int
    totals: BatchTotals
    after_upload: bool = False


@dataclass(frozen=True)
class BatchUploadItem:
    """One captured sale sent again in a batch upload (0320) after the totals did not match."""

    stan: int
    original_stan: int
    amount_minor: int
    auth_code: str
    rrn: str
    batch: int


class SettlementHostPort(Protocol):
    def settle(self, request: SettlementRequest) -> str:
        """0500/0510: the host's response code ("00" balanced, "95" totals differ). Raises LinkError."""

    def upload(self, item: BatchUploadItem) -> str:
        """0320/0330: the host's response code. Raises LinkError."""
