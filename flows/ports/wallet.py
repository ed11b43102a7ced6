"""The wallet platform port (WeChat Pay, Alipay, EMV QR): orders, their status and the platform's reasons.

>>> WalletResult("O1", "user_paying").status is WalletOrderStatus.USER_PAYING
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

__all__ = ["WalletStatus", "WalletOrderStatus", "WalletReason", "WalletResult", "WalletPort"]


WalletStatus = Literal["paid", "user_paying", "waiting", "failed", "cancelled", "refunded", "expired", "not_found"]


class WalletOrderStatus(StrEnum):
    """The wallet platform's word on one order; ``WalletResult.status`` is always one of these."""

    PAID = "paid"
    USER_PAYING = "user_paying"  # the customer confirms on the phone: ask again
    WAITING = "waiting"  # a QR order nobody has paid yet
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"


class WalletReason(StrEnum):
    """The platform's machine codes for a refused payment that the cashier can act on (``WalletResult.reason``
    may carry others: they are shown as the platform's own words)."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    CODE_EXPIRED = "code_expired"
    USER_CANCELLED = "user_cancelled"
    ORDER_EXPIRED = "order_expired"


@dataclass(frozen=True)
class WalletResult:
    """The wallet platform's word on one order (the order id is the terminal's own).

    ``reason`` is the platform's machine code for a failure (``insufficient_balance``, ``code_expired``,
    ``user_cancelled`` …); ``message`` is for the cashier. ``amount_minor`` and ``currency`` are what the
    platform says the order is for (None / "" when the answer does not say): a ``paid`` counts only when they
    equal what the terminal asked (``flows.wallet_payment``). ``qr_code`` is the platform's own QR content of a
    merchant-presented order (WeChat Pay ``code_url``, Alipay ``qr_code``), "" when the terminal builds one.
    """

    order_id: str
    status: WalletOrderStatus | WalletStatus
    reason: str = ""
    message: str = ""
    wallet: str = ""
    transaction_id: str = ""
    amount_minor: int | None = None
    currency: str = ""
    qr_code: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", WalletOrderStatus(self.status))


class WalletPort(Protocol):
    def micropay(self, order_id: str, code: str, amount_minor: int, subject: str) -> WalletResult:
        """Charge the customer's payment code. LinkTimeout: outcome unknown, query the order."""

    def create_qr_order(self, order_id: str, amount_minor: int, subject: str, expires_s: int) -> WalletResult:
        """Register an order the customer pays by scanning the terminal's QR (status ``waiting``)."""

    def query(self, order_id: str) -> WalletResult:
        """Current status of an order (``not_found`` if it never arrived)."""

    def cancel(self, order_id: str) -> WalletResult:
        """Cancel an unpaid order, or reverse a paid one (``cancelled`` / ``refunded``)."""

    def refund(self, order_id: str, amount_minor: int) -> WalletResult:
        """Give a paid order's money back (``refunded``)."""
