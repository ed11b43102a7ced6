"""Ports: the typed edges between business flows and the outside world.

Flows talk only to these ``typing.Protocol`` ports; ``drivers/`` implements them for real devices and networks
(adapters depend on ports, never the reverse), tests may pass fakes, and ``terminal/`` wires one implementation
to each port. Value types travel across the ports. Money is always an ``int`` of minor units (fen) of CNY
(ISO 4217 numeric 156). Full PAN and track data travel only where the protocol needs them and are excluded from
``repr`` so they cannot reach a log by accident.

>>> SimInfo("89860112345678901234", "1064912345678", "active", "Basic 1G", 1250, 300, "2027-01-31").masked_iccid
'8986…1234'
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from emv.pan import mask_pan

__all__ = [
    "CancelToken",
    "SimInfo",
    "Plan",
    "TopupResult",
    "CarrierPort",
    "AuthRequest",
    "AuthResponse",
    "ReversalRequest",
    "HostPort",
    "BatchTotals",
    "SettlementRequest",
    "BatchUploadItem",
    "SettlementHostPort",
    "PinEntry",
    "PinPadPort",
    "CardReaderPort",
    "ReceiptLine",
    "PrinterStatus",
    "PrinterPort",
    "Clock",
    "TxnRecord",
    "JournalPort",
    "ScannerPort",
    "WalletResult",
    "WalletPort",
    "mask_pan",
]

CURRENCY_CNY = "156"


class CancelToken:
    """A flag one thread sets (CANCEL key, timeout) and blocking port calls watch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; True if cancelled meanwhile."""
        return self._event.wait(timeout_s)


# --- carrier -------------------------------------------------------------------------------------------------

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


TopupStatus = Literal["applied", "pending", "failed", "not_found"]


@dataclass(frozen=True)
class TopupResult:
    """The carrier's word on one top-up order (the order id is the terminal's own)."""

    order_id: str
    status: TopupStatus
    balance_minor: int | None = None
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

    def health(self) -> bool:
        """True when the platform answers its health check (diagnostics). Raises LinkError."""


# --- acquirer host -------------------------------------------------------------------------------------------


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
        return self.response_code in ("00", "10", "11")


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


# --- store-and-forward advices and refunds (flows.saf, flows.refund) ------------------------------------------


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


# --- PIN pad -------------------------------------------------------------------------------------------------

PinStatus = Literal["entered", "cancelled", "timeout", "bypassed"]


@dataclass(frozen=True)
class PinEntry:
    """Outcome of PIN entry. The clear PIN never leaves the PIN pad; only the encrypted block does."""

    status: PinStatus
    pin_block: bytes | None = field(default=None, repr=False)
    ksn: bytes | None = None
    block_format: int = 4


@dataclass(frozen=True)
class OfflinePinRequest:
    """What the PIN pad needs to VERIFY an offline PIN with the card itself (EMV Book 3 §10.5.1)."""

    enciphered: bool
    amount_minor: int
    tries_left: int | None = None
    icc_modulus: bytes = field(default=b"", repr=False)
    icc_exponent: bytes = b""
    challenge: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class OfflinePinResult:
    """The pad's verdict: entry status and, when entered, the card's status word to VERIFY (never the PIN)."""

    status: PinStatus
    sw: int | None = None


class PinPadPort(Protocol):
    def request_online_pin(self, pan: str, amount_minor: int, timeout_s: float) -> PinEntry:
        """Prompt on the PIN pad and block until entered, cancelled (here or by ``abort``) or timed out."""

    def verify_offline_pin(self, request: OfflinePinRequest, timeout_s: float) -> OfflinePinResult:
        """Prompt, then the pad sends VERIFY (plain or enciphered) to the card and reports the SW."""

    def choose_application(self, labels: tuple[str, ...], timeout_s: float) -> int | None:
        """Show numbered application labels; the index the customer picks, or None (cancel or timeout)."""

    def abort(self) -> None:
        """From any thread: end a pending PIN entry as ``cancelled``."""

    def display(self, line1: str, line2: str = "") -> None:
        """Show an idle message on the PIN pad's own display."""


# --- card reader ---------------------------------------------------------------------------------------------


class CardReaderPort(Protocol):
    def wait_for_card(self, timeout_s: float, cancel: CancelToken) -> bool:
        """Block until a chip card is inserted (True), the timeout passes (False), or ``cancel`` (Cancelled)."""

    def card_present(self) -> bool: ...

    def power_on(self) -> bytes:
        """Activate the card; returns the ATR. Raises CardRemoved, DeviceError."""

    def transmit(self, apdu: bytes) -> bytes:
        """Send one C-APDU, return the R-APDU including SW1 SW2. Raises CardRemoved, DeviceError."""

    def power_off(self) -> None: ...

    def wait_for_removal(self, timeout_s: float) -> bool:
        """Block until the card is taken out (True) or the timeout passes (False)."""


# --- printer -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptLine:
    """One line of a receipt; the printer driver turns it into ESC/POS bytes."""

    text: str = ""
    align: Literal["left", "center", "right"] = "left"
    bold: bool = False
    double: bool = False
    qr: str | None = None


@dataclass(frozen=True)
class PrinterStatus:
    online: bool = True
    paper_out: bool = False
    cover_open: bool = False

    @property
    def ready(self) -> bool:
        return self.online and not self.paper_out and not self.cover_open


class PrinterPort(Protocol):
    def print_receipt(self, lines: Sequence[ReceiptLine]) -> None:
        """Print and cut. Raises DeviceError (with a cashier-readable message) when it cannot."""

    def status(self) -> PrinterStatus: ...


# --- clock ---------------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


# --- journal -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxnRecord:
    """One transaction as the journal holds it. Only masked PANs are ever stored."""

    txn_id: int
    state: str
    order_id: str
    iccid: str
    msisdn: str
    plan_id: str
    plan_name: str
    amount_minor: int
    fee_minor: int
    channel: str
    cashier_id: str
    created_at: str
    stan: int | None = None
    masked_pan: str | None = None
    response_code: str | None = None
    auth_code: str | None = None
    rrn: str | None = None
    auth_time: str | None = None
    topup_status: str | None = None
    balance_after_minor: int | None = None
    reversal: str | None = None
    reversal_stan: int | None = None
    message: str | None = None
    receipt: str | None = None
    batch: int | None = None
    refund_stan: int | None = None

    @property
    def total_minor(self) -> int:
        return self.amount_minor + self.fee_minor


class JournalPort(Protocol):
    """Write-ahead record of every transaction: written before each external step and after its answer."""

    def next_stan(self) -> int:
        """Persistent system trace audit number, 1..999999 then wraps to 1."""

    def next_order_id(self, terminal_id: str, now: dt.datetime) -> str:
        """A new order id for the carrier, unique per terminal, created before the carrier is called."""

    def begin(self, *, order_id: str, iccid: str, msisdn: str, plan_id: str, plan_name: str,
              amount_minor: int, fee_minor: int, channel: str, cashier_id: str) -> int:
        """Create the row in state ``created``; returns the transaction id."""

    def update(self, txn_id: int, state: str, **fields: object) -> None:
        """Move to ``state`` and set columns, atomically, with an event row; durable when it returns."""

    def get(self, txn_id: int) -> TxnRecord: ...

    def open_transactions(self) -> list[TxnRecord]:
        """Rows that recovery must finish or undo (not completed, declined, reversed or cancelled)."""


# --- QR scanner and wallet platform --------------------------------------------------------------------------


class ScannerPort(Protocol):
    def scan(self, timeout_s: float, cancel: CancelToken) -> str | None:
        """Arm the scanner; the code read, or None when ``timeout_s`` passes. Raises Cancelled, DeviceError."""


WalletStatus = Literal["paid", "user_paying", "waiting", "failed", "cancelled", "refunded", "expired", "not_found"]


@dataclass(frozen=True)
class WalletResult:
    """The wallet platform's word on one order (the order id is the terminal's own).

    ``reason`` is the platform's machine code for a failure (``insufficient_balance``, ``code_expired``,
    ``user_cancelled`` …); ``message`` is for the cashier.
    """

    order_id: str
    status: WalletStatus
    reason: str = ""
    message: str = ""
    wallet: str = ""
    transaction_id: str = ""


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
