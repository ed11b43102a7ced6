"""The device ports: PIN pad, card reader, receipt printer and QR scanner.

>>> PrinterStatus(paper_out=True).ready
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, Protocol

from flows.ports.base import CancelToken

__all__ = ["PadPrompt", "NUMERIC_PROMPTS",
           "PinStatus", "PinEntry", "OfflinePinRequest", "OfflinePinResult", "PinPadPort", "CardReaderPort",
           "ContactlessReaderPort",
           "ReceiptLine", "PrinterStatus", "PrinterPort", "ScannerPort"]


PinStatus = Literal["entered", "cancelled", "timeout", "bypassed"]


class PadPrompt(IntEnum):
    """The PIN pad's own prompt table (PCI PTS POI): the terminal selects a prompt by id, with an amount and a
    currency as its only parameters, and never sends prompt text. The texts (en + zh) live in the pad.
    The PIN prompt is not here: only GET_ONLINE_PIN / VERIFY_OFFLINE_PIN show it (docs/protocols/pinpad.md)."""

    WELCOME = 0x01
    INSERT_CARD = 0x02
    PLEASE_WAIT = 0x03
    AMOUNT = 0x04  # the amount to pay, nothing asked
    APPROVED = 0x05
    DECLINED = 0x06
    REMOVE_CARD = 0x07
    THANK_YOU = 0x08
    ENTER_PHONE = 0x40  # numeric entry: the customer keys the SIM's phone number (MSISDN), returned in clear
    ENTER_ICCID = 0x41  # numeric entry: the SIM's ICCID, returned in clear


# The only prompts under which digits come back in clear (NUMERIC_ENTRY); none of them may ask for a PIN.
NUMERIC_PROMPTS = frozenset({PadPrompt.ENTER_PHONE, PadPrompt.ENTER_ICCID})


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

    def display(self, prompt: PadPrompt, amount_minor: int = 0, currency: int = 156) -> None:
        """Show one of the pad's own display-only prompts (``PadPrompt``), with an amount (ISO 4217 currency)."""


class CardReaderPort(Protocol):
    def wait_for_card(self, timeout_s: float, cancel: CancelToken) -> bool:
        """Block until a chip card is inserted (True), the timeout passes (False), or ``cancel`` (Cancelled)."""

    def card_present(self) -> bool: ...

    def power_on(self) -> bytes:
        """Activate the card; returns the ATR. Raises CardRemoved, DeviceError."""

    def transmit(self, apdu: bytes, *, then: Sequence[bytes] = ()) -> bytes:
        """Send one C-APDU, return the R-APDU including SW1 SW2. Raises CardRemoved, DeviceError. ``then``:
        the commands the kernel sends next if this one answers 90 00 (``SendApdu.then``): a reader may run them
        now and keep their answers for those very commands."""

    def power_off(self) -> None: ...

    def wait_for_removal(self, timeout_s: float) -> bool:
        """Block until the card is taken out (True) or the timeout passes (False)."""


class ContactlessReaderPort(Protocol):
    """The reader's contactless side (EMV Contactless Book A/B, Book D protocol activation)."""

    def poll_cards(self, timeout_ms: int) -> int:
        """Field on, poll: how many cards answered (0, 1, or more: a collision)."""

    def activate_contactless(self) -> bytes:
        """Activate the polled card; ``transmit`` then reaches it. Raises CardRemoved."""

    def transmit(self, apdu: bytes) -> bytes:
        """One C-APDU to the activated card; raises CardRemoved when it left the field."""

    def transmit_timed(self, apdu: bytes) -> tuple[bytes, int]:
        """One C-APDU, timed by the reader on the air: (R-APDU, µs). Relay resistance (Book C-2)."""

    def field_off(self, hold_ms: int) -> None:
        """Switch the RF field off (Book A §6.2.10)."""

    def indicate(self, lights: int, beep_ms: int = 0) -> None:
        """Show exactly these lights (bit 0 blue, 1 yellow, 2 green, 3 red: Book A §9.2) and beep."""


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


class ScannerPort(Protocol):
    def scan(self, timeout_s: float, cancel: CancelToken) -> str | None:
        """Arm the scanner; the code read, or None when ``timeout_s`` passes. Raises Cancelled, DeviceError."""
