"""What the sans-I/O EMV kernel asks its caller to do, and how a transaction ends.

The kernel (``emv.kernel.Transaction``) never touches a reader, PIN pad or host. Each call returns one action;
the caller performs it and feeds the answer back: ``SendApdu`` → ``on_response``, ``RequestOnlinePin`` →
``on_pin``, ``GoOnline`` → ``on_online_result``. ``Finished`` ends the transaction. Fields holding the PAN,
track 2 or the expiry date are excluded from ``repr`` so an action can be logged safely.

Inside the kernel, phases are generators that ``yield`` an action and receive the answer. ``transmit`` is the
one card exchange: it yields ``SendApdu`` and returns the complete ``Response``, hiding the T=0 transport
rules of EMV 4.4 Book 1 §9.3.1.3: ``61xx`` → GET RESPONSE for ``xx`` bytes (again while the card has more),
``6Cxx`` → the same command again with ``Le = xx``. ``Stop`` ends the transaction with an outcome; it never
leaves ``emv.kernel.Transaction``.

>>> GoOnline(b"", pan="6212345678901234", pan_sequence="01", expiry_yymm="3012", track2=None)
GoOnline(icc_data=b'', pan_sequence='01')
>>> step = transmit(bytes.fromhex("00B2010C00"), "READ RECORD")
>>> next(step).apdu.hex().upper(), step.send(bytes.fromhex("6C05")).apdu.hex().upper()
('00B2010C00', '00B2010C05')
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TypeVar

from emv.apdu import Response, get_response, split_response, with_le
from pos_errors import LocalProtocolError

__all__ = ["Action", "SendApdu", "ChooseApplication", "RequestOnlinePin", "VerifyOfflinePin", "OfflinePinAnswer",
           "GoOnline",
           "Finished", "Outcome", "KernelReason", "PIN_STATUSES", "Stop", "Step", "transmit"]

PIN_STATUSES = ("entered", "bypassed", "cancelled", "timeout")  # answers to RequestOnlinePin


class Outcome(Enum):
    """How the transaction ended (EMV 4.4 Book 4 §6.3.7, §11.2)."""

    APPROVED = "approved"
    """The card returned a TC (after online approval, or offline)."""
    DECLINED = "declined"
    """The card returned an AAC at the first GENERATE AC, or the host declined or could not be reached."""
    DECLINED_AFTER_ONLINE_APPROVAL = "declined_after_online_approval"
    """The host approved but the card refused (AAC) or failed at the second GENERATE AC: reverse it."""
    TERMINATED = "terminated"
    """No common application, card error, malformed data, or the cardholder cancelled the PIN."""
    NOT_ACCEPTED = "not_accepted"
    """Every candidate application refused GET PROCESSING OPTIONS with 6985 (Book 1 §12.4, message 'Not
    Accepted'); the card may still be used another way (for example magstripe fallback by scheme rules)."""


class KernelReason(StrEnum):
    """Why the transaction ended, as a code the caller may act on; ``Finished.reason`` keeps the English
    detail for the transcript and the journal. Values travel in transcripts (JSON)."""

    APPROVED_OFFLINE = "approved_offline"
    """TC at the first GENERATE AC (Book 3 §10.8)."""
    APPROVED_ONLINE = "approved_online"
    """The host approved and the card returned a TC at the second GENERATE AC."""
    APPROVED_UNABLE_ONLINE = "approved_unable_online"
    """Host unreachable, approved offline by the default action (Y3, Book 3 §10.7)."""
    DECLINED_OFFLINE = "declined_offline"
    """AAC at the first GENERATE AC (terminal action analysis or card risk management)."""
    DECLINED_BY_HOST = "declined_by_host"
    """The host declined; the card returned an AAC at the second GENERATE AC."""
    DECLINED_UNABLE_ONLINE = "declined_unable_online"
    """Host unreachable, declined offline (Z3)."""
    CARD_DECLINED_AFTER_APPROVAL = "card_declined_after_approval"
    """The host approved but the card answered an AAC at the second GENERATE AC: reverse it."""
    SERVICE_NOT_ALLOWED = "service_not_allowed"
    """The card's CID said "service not allowed" (Book 3 §10.8)."""
    CDA_FAILED = "cda_failed"
    """The signature on the GENERATE AC answer did not verify (Book 2 §6.6.2)."""
    NO_APPLICATION = "no_application"
    """No application on the card is supported, or none could be selected (Book 1 §12.4)."""
    CARD_BLOCKED = "card_blocked"
    """SELECT answered 6A81."""
    NOT_ACCEPTED = "not_accepted"
    """Every application refused GET PROCESSING OPTIONS with 6985."""
    SELECTION_CANCELLED = "selection_cancelled"
    """The cardholder cancelled application selection."""
    PIN_CANCELLED = "pin_cancelled"
    """The cardholder (or the cashier) cancelled PIN entry."""
    PIN_NOT_ENTERED = "pin_not_entered"
    """PIN entry timed out or ended without a PIN."""
    CARD_DATA_MISSING = "card_data_missing"
    """A mandatory data object is missing from the records (Book 3 §7.2)."""
    CARD_DATA_MALFORMED = "card_data_malformed"
    """The card sent data that does not parse, or that cannot go into a command."""
    CARD_DATA_DUPLICATED = "card_data_duplicated"
    """A data object appears in two records (Book 3 §10.2)."""
    CARD_ERROR = "card_error"
    """An unexpected status word or cryptogram from the card."""
    PIN_PAD_ERROR = "pin_pad_error"
    """The PIN pad's answer was not the one the kernel waited for."""


@dataclass(frozen=True)
class SendApdu:
    """Send ``apdu`` to the card and call ``on_response`` with the R-APDU (data + SW1 SW2). ``timed``: the
    reader measures the exchange (relay resistance, ``emv.relay_resistance``) and the caller passes the time.
    ``then``: the commands the kernel will send next, in order, if this one and each before it answers
    ``90 00`` — known (the AFL's READ RECORDs) or likely (the PSE directory's); a reader may run them at once
    and keep their answers for when they are asked (``drivers.card_reader_batch``). A hint: the kernel still
    sends every one of them."""

    apdu: bytes
    purpose: str
    timed: bool = field(default=False, repr=False)
    then: tuple[bytes, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class ChooseApplication:
    """Offer the candidate applications to the cardholder (Book 1 §12.4), in priority order; call
    ``on_application`` with the chosen index, or None when the cardholder cancels."""

    labels: tuple[str, ...]


@dataclass(frozen=True)
class RequestOnlinePin:
    """Ask the PIN pad for an online PIN block (Book 3 §10.5.5), then call ``on_pin`` with the status."""

    pan: str = field(repr=False)
    amount_minor: int


@dataclass(frozen=True)
class VerifyOfflinePin:
    """Have the PIN pad collect the PIN and VERIFY it with the card itself (Book 3 §10.5.1, §6.5.12); call
    ``on_offline_pin`` with the entry status and the card's status word. The clear PIN never reaches the
    terminal: for ``enciphered`` the pad encrypts the block under the ICC key given here (Book 2 §7.2) with
    the card's ``challenge`` (GET CHALLENGE)."""

    enciphered: bool
    amount_minor: int
    tries_left: int | None = None  # from GET DATA 9F17, for the prompt ("2 tries left")
    icc_modulus: bytes = field(default=b"", repr=False)
    icc_exponent: bytes = b""
    challenge: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class OfflinePinAnswer:
    """What the PIN pad reports after ``VerifyOfflinePin``: the entry status and, if entered, the SW."""

    status: str
    sw: int | None = None


@dataclass(frozen=True)
class GoOnline:
    """Send an authorisation request; call ``on_online_result`` with the host's answer (Book 3 §10.9).

    ``icc_data`` is the field-55 TLV string: everything the issuer needs to verify the ARQC.
    """

    icc_data: bytes
    pan: str = field(repr=False)
    pan_sequence: str | None
    expiry_yymm: str = field(repr=False)
    track2: bytes | None = field(repr=False)


@dataclass(frozen=True)
class Finished:
    """The transaction is over: ``code`` says why (callers act on it), ``reason`` in English for transcripts and
    the journal. ``receipt`` holds the EMV lines of the receipt (no full PAN)."""

    outcome: Outcome
    reason: str
    code: KernelReason
    receipt: Mapping[str, str] = field(default_factory=dict)


Action = SendApdu | ChooseApplication | RequestOnlinePin | VerifyOfflinePin | GoOnline | Finished

# --- the card exchange step ---------------------------------------------------------------------------------

T = TypeVar("T")
Step = Generator[Action, object, T]  # a kernel phase: yields actions, receives answers, returns T


_MAX_TRANSPORT_ROUNDS = 16  # a card that keeps answering 61xx/6Cxx forever is broken


class Stop(Exception):  # a control-flow signal inside the kernel, not an error: never leaves it
    """End the transaction with ``outcome``, a ``code`` and a person-readable ``reason``."""

    def __init__(self, outcome: Outcome, code: KernelReason, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.code = code
        self.reason = reason


def transmit(apdu: bytes, purpose: str, then: tuple[bytes, ...] = ()) -> Step[Response]:
    """Send ``apdu`` and return the card's complete answer after any GET RESPONSE / Le correction. ``then``:
    the commands that follow if this one answers 90 00 (``SendApdu.then``)."""
    sent = apdu
    answer = yield SendApdu(sent, purpose, then=then)
    response = split_response(_rapdu(answer))
    collected = b""
    for _ in range(_MAX_TRANSPORT_ROUNDS):
        if response.sw1 == 0x61:
            collected += response.data
            sent = get_response(response.sw2)
            answer = yield SendApdu(sent, f"GET RESPONSE for {purpose}")
        elif response.sw1 == 0x6C:
            sent = with_le(sent, response.sw2)
            answer = yield SendApdu(sent, f"{purpose} again with Le={response.sw2}")
        else:
            return Response(collected + response.data, response.sw)
        response = split_response(_rapdu(answer))
    raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR, f"card kept answering {response.sw:04X} to {purpose}")


def _rapdu(answer: object) -> bytes:
    if not isinstance(answer, bytes | bytearray):
        raise LocalProtocolError("the answer to SendApdu must be the R-APDU bytes")
    return bytes(answer)
