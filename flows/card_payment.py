"""Chip-card payment: drives the sans-I/O EMV kernel over the card reader, the PIN pad and the acquirer host.

The kernel decides every APDU; this flow only carries its actions to the ports and its answers back, and writes
the journal around the one money-moving step, the authorisation: ``auth_intended`` with the reversal armed
before the request leaves, and the host's answer after. A host that does not answer (LinkTimeout) or answers
garbage leaves the outcome unknown, so the reversal stays armed and is sent by the caller. A wrong PIN (55)
closes the card's transaction with an AAC and starts a fresh one on the same card, up to ``pin_tries``.

>>> CardPaymentResult(PaymentStatus.CANCELLED, "x").approved
False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from emv import records, tlv
from emv.actions import (
    ChooseApplication,
    Finished,
    GoOnline,
    KernelReason,
    Outcome,
    RequestOnlinePin,
    SendApdu,
    VerifyOfflinePin,
)
from emv.kernel import FIELD_55_TAGS, TerminalConfig, Transaction
from emv.transcript import Recorder, mask_transcript
from flows.authorize import Unknown, authorize_journaled
from flows.messages import Msg, Text
from flows.ports import (
    AuthRequest,
    AuthResponse,
    CancelToken,
    CardReaderPort,
    Clock,
    HostPort,
    JournalPort,
    OfflinePinRequest,
    PinPadPort,
)
from flows.txn_state import TxnState
from pos_errors import Cancelled, CardRemoved, DeviceError, LinkError, RemoteProtocolError

__all__ = ["Step", "PaymentStatus", "CardPaymentResult", "CardPaymentPorts", "CardPaymentSettings", "pay_by_card",
           "authorize_journaled", "RESPONSE_TEXT", "decline_text", "KERNEL_REASONS", "kernel_reason"]


class Step(StrEnum):
    """Progress a flow reports so the terminal can show the matching screen."""

    WAIT_CARD = "wait_card"
    READING_CARD = "reading_card"
    PIN_ENTRY = "pin_entry"
    WRONG_PIN = "wrong_pin"
    AUTHORIZING = "authorizing"
    TOPPING_UP = "topping_up"
    REVERSING = "reversing"
    INSERT_CHIP = "insert_chip"  # a chip card was swiped: the chip must be tried first
    SWIPE_FALLBACK = "swipe_fallback"  # the chip failed: the customer may swipe this card now
    BAD_SWIPE = "bad_swipe"  # the stripe could not be read: swipe again
    REMOVE_AND_INSERT = "remove_and_insert"  # a card was in the slot before the sale: out, then in again
    REMOVE_CARD = "remove_card"  # the card transaction is over: take the card out (the reader beeps)
    TAP_CARD = "tap_card"  # contactless: present the card or phone (flows.contactless_payment)
    TAP_ONE_CARD = "tap_one_card"  # two cards in the field: present one card only
    TAP_AGAIN = "tap_again"  # the card left the field too early: present it again
    TAP_SEE_PHONE = "tap_see_phone"  # the phone asks for its own CVM: see phone, then tap again
    TAP_READ_OK = "tap_read_ok"  # card read: it may be taken away
    TAP_INSERT = "tap_insert"  # Try Another Interface: insert the card in the slot
    TAP_UPDATE = "tap_update"  # after the host's answer: present the card again for the issuer's update
    TAP_REMOVE = "tap_remove"  # the previous tap's card is still on the reader: take it away first


class PaymentStatus(StrEnum):
    """How a card (chip or stripe) payment ended."""

    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    FAILED = "failed"  # nothing charged
    UNKNOWN = "unknown"  # the host was silent or answered garbage: reverse it
    REVERSE = "reverse"  # the host approved, the card refused or went away: reverse it


@dataclass(frozen=True)
class CardPaymentResult:
    """``status`` says how it ended; ``message`` is what the cashier reads."""

    status: PaymentStatus
    message: Text  # a catalogue Msg; shown in the cashier's language
    response_code: str | None = None
    auth: AuthResponse | None = None
    request: AuthRequest | None = field(default=None, repr=False)
    emv_receipt: Mapping[str, str] = field(default_factory=dict)
    masked_pan: str | None = None
    chip_failed: bool = False  # the chip itself failed before the bank was asked: magstripe fallback allowed
    try_contact: bool = False  # contactless Try Another Interface: insert the card in the slot instead

    @property
    def approved(self) -> bool:
        return self.status is PaymentStatus.APPROVED


@dataclass(frozen=True)
class CardPaymentPorts:
    reader: CardReaderPort
    pinpad: PinPadPort
    host: HostPort
    journal: JournalPort
    clock: Clock
    random_bytes: Callable[[int], bytes]


@dataclass(frozen=True)
class CardPaymentSettings:
    emv: TerminalConfig
    terminal_id: str
    merchant_id: str
    card_timeout_s: float = 60.0
    pin_timeout_s: float = 60.0
    pin_tries: int = 3
    # Called with (name, JSON) for each card session, PAN masked (emv.transcript); None: not recorded.
    transcript_sink: Callable[[str, str], None] | None = None
    # Offline approval (TC at the first GENERATE AC): called with (txn_id, the advice's request) to queue the
    # 0220 and mark the row paid in one commit (flows.saf); None: only the row is marked paid.
    offline_approved: Callable[[int, AuthRequest], object] | None = None


# Host response codes the cashier sees in words (ISO 8583:1987 field 39).
RESPONSE_TEXT: Mapping[str, Msg] = {code: Msg(f"resp.{code}") for code in ("00", "05", "14", "51", "54", "55", "75",
                                                                          "91", "A0")}


def decline_text(code: str | None) -> Msg:
    return RESPONSE_TEXT.get(code or "", Msg("resp.other", {"code": code}))


# The kernel's reasons are technical English (journal, transcript); the cashier reads the text for its code.
KERNEL_REASONS: Mapping[KernelReason, str] = {
    KernelReason.NO_APPLICATION: "kernel.no_app",
    KernelReason.CARD_BLOCKED: "kernel.blocked",
    KernelReason.PIN_NOT_ENTERED: "kernel.pin",
    KernelReason.PIN_CANCELLED: "kernel.pin",
    KernelReason.SELECTION_CANCELLED: "kernel.cancelled",
    KernelReason.CARD_DATA_MISSING: "kernel.card_data",
    KernelReason.CARD_DATA_MALFORMED: "kernel.card_data",
    KernelReason.CARD_DATA_DUPLICATED: "kernel.card_data",
    KernelReason.NOT_ACCEPTED: "kernel.not_accepted",
}
CANCEL_CODES = frozenset({KernelReason.PIN_CANCELLED, KernelReason.SELECTION_CANCELLED})  # the customer said no


def kernel_reason(done: Finished) -> Msg:
    """What the cashier reads for a kernel outcome that is neither approval nor decline."""
    if done.outcome is Outcome.NOT_ACCEPTED:
        return Msg("kernel.not_accepted")
    return Msg(KERNEL_REASONS.get(done.code, "kernel.card_failed"))


def pay_by_card(ports: CardPaymentPorts, settings: CardPaymentSettings, *, txn_id: int, amount_minor: int,
                progress: Callable[[Step], None], cancel: CancelToken,
                waiting_shown: bool = False) -> CardPaymentResult:
    """Take ``amount_minor`` from a chip card. Never raises for business outcomes; see ``CardPaymentResult``.
    ``waiting_shown``: the caller already announced ``Step.WAIT_CARD`` (each step is one wake-up of the app)."""
    if not waiting_shown:
        progress(Step.WAIT_CARD)
    try:
        if not ports.reader.card_present() and not ports.reader.wait_for_card(settings.card_timeout_s, cancel):
            return CardPaymentResult(PaymentStatus.CANCELLED, Msg("pay.no_card"))
    except Cancelled:
        return CardPaymentResult(PaymentStatus.CANCELLED, Msg("pay.cancelled"))
    except DeviceError as exc:
        return CardPaymentResult(PaymentStatus.FAILED,
                                 Msg("pay.then_nothing", {"what": Msg("pay.reader_error", {"error": exc})}))
    result = CardPaymentResult(PaymentStatus.FAILED, Msg("pay.no_attempt"))
    for attempt in range(settings.pin_tries):
        result = _one_attempt(ports, settings, txn_id, amount_minor, progress, cancel)
        if result.response_code != "55" or attempt + 1 == settings.pin_tries:
            break
        progress(Step.WRONG_PIN)
    return result


def _one_attempt(ports: CardPaymentPorts, settings: CardPaymentSettings, txn_id: int, amount_minor: int,
                 progress: Callable[[Step], None], cancel: CancelToken) -> CardPaymentResult:
    progress(Step.READING_CARD)
    session = _Attempt(ports, settings, txn_id, amount_minor, progress, cancel)
    try:
        ports.reader.power_on()
        return session.run()
    except CardRemoved:
        return session.card_gone()
    except (DeviceError, RemoteProtocolError) as exc:  # RemoteProtocolError: an R-APDU shorter than SW1 SW2
        result = session.card_gone(Msg("pay.reader_error", {"error": exc}))
        # Plain DeviceError = the card's fault (mute, bad ATR); a silent or vanished reader is not the chip's.
        return replace(result, chip_failed=type(exc) is DeviceError and session.request is None)
    finally:
        try:
            ports.reader.power_off()
        except DeviceError:
            pass


class _Attempt:
    """One EMV transaction on the inserted card, from SELECT to the second GENERATE AC."""

    def __init__(self, ports: CardPaymentPorts, settings: CardPaymentSettings, txn_id: int, amount_minor: int,
                 progress: Callable[[Step], None], cancel: CancelToken) -> None:
        self.ports, self.settings, self.txn_id = ports, settings, txn_id
        self.amount_minor, self.progress, self.cancel = amount_minor, progress, cancel
        self.pin_block: bytes | None = None
        self.ksn: bytes | None = None
        self.request: AuthRequest | None = None
        self.answer: AuthResponse | None = None
        self.unknown_reason: Unknown | None = None
        self.pin_fault: Msg | None = None
        self.recorder: Recorder | None = None
        self.kernel: Transaction | None = None
        self.link_fault: str | None = None  # a LinkFault code when TLS or sign-on refused the link

    def _refused(self, exc: LinkError) -> None:
        self.link_fault = getattr(exc, "fault", None)

    def _save_transcript(self, done: Finished) -> None:
        sink = self.settings.transcript_sink
        if sink is None or self.recorder is None:
            return
        transcript = self.recorder.transcript
        transcript.meta["outcome"] = done.outcome.value
        sink(f"txn{self.txn_id:06d}-{len(transcript.exchanges):03d}", mask_transcript(transcript).to_json())

    def run(self) -> CardPaymentResult:
        when, un = self.ports.clock.now(), self.ports.random_bytes(4)
        kernel = Transaction(self.settings.emv, amount_minor=self.amount_minor, when=when,
                             unpredictable_number=lambda: un, sequence_counter=self.txn_id)
        self.kernel = kernel
        transmit: Callable[..., bytes] = self.ports.reader.transmit
        if self.settings.transcript_sink is not None:
            self.recorder = Recorder(transmit, {"amount_minor": self.amount_minor, "when": when.isoformat(),
                                                "unpredictable_number": un.hex().upper(),
                                                "sequence_counter": self.txn_id, "transaction_type": 0})
            transmit = self.recorder.__call__
        action = kernel.start()
        while True:
            if isinstance(action, SendApdu):  # ``then``: what the reader may run ahead (drivers.card_reader_batch)
                action = kernel.on_response(transmit(action.apdu, then=action.then))
            elif isinstance(action, RequestOnlinePin):
                action = kernel.on_pin(self._pin(action))
            elif isinstance(action, VerifyOfflinePin):
                action = kernel.on_offline_pin(*self._offline_pin(action))
            elif isinstance(action, ChooseApplication):
                action = kernel.on_application(self._choose(action))
            elif isinstance(action, GoOnline) and self.cancel.cancelled:
                action = kernel.on_online_result(None)  # cancelled before going online: nothing is sent
            elif isinstance(action, GoOnline):
                code, issuer_data = self._authorize(action)
                action = kernel.on_online_result(code, issuer_data)
            elif isinstance(action, Finished):
                self._save_transcript(action)
                return self._finish(action)
            else:  # a kernel action this flow does not know is a programming error, not a card problem
                raise TypeError(f"unhandled kernel action {type(action).__name__}")

    def _pin(self, action: RequestOnlinePin) -> str:
        self.progress(Step.PIN_ENTRY)
        if self.cancel.cancelled:
            return "cancelled"
        try:
            entry = self.ports.pinpad.request_online_pin(action.pan, action.amount_minor,
                                                         self.settings.pin_timeout_s)
        except DeviceError as exc:  # the kernel hears "cancelled"; the cashier hears why
            self.pin_fault = Msg("pay.pinpad_fault", {"error": exc})
            return "cancelled"
        if entry.status == "entered":
            self.pin_block, self.ksn = entry.pin_block, entry.ksn
        return entry.status

    def _choose(self, action: ChooseApplication) -> int | None:
        """The customer picks the application on the PIN pad (EMV Book 1 §12.4)."""
        if self.cancel.cancelled:
            return None
        try:
            return self.ports.pinpad.choose_application(action.labels, self.settings.pin_timeout_s)
        except DeviceError:
            return None

    def _offline_pin(self, action: VerifyOfflinePin) -> tuple[str, int | None]:
        """The PIN pad collects the PIN and VERIFYs it with the card; only the status word comes back."""
        self.progress(Step.PIN_ENTRY)
        if self.cancel.cancelled:
            return "cancelled", None
        request = OfflinePinRequest(action.enciphered, action.amount_minor, action.tries_left, action.icc_modulus,
                                    action.icc_exponent, action.challenge)
        try:
            result = self.ports.pinpad.verify_offline_pin(request, self.settings.pin_timeout_s)
        except DeviceError:
            return "cancelled", None
        if result.status == "entered" and result.sw is not None and result.sw & 0xFFF0 == 0x63C0 and result.sw & 0xF:
            self.progress(Step.WRONG_PIN)
        if self.recorder is not None:
            self.recorder.transcript.pins.append({"status": result.status, "sw": f"{result.sw or 0:04X}"})
        return result.status, result.sw

    def _authorize(self, action: GoOnline) -> tuple[str | None, bytes]:
        self.progress(Step.AUTHORIZING)
        stan = self.ports.journal.next_stan(durable=False)  # rides with auth_intended
        self.request = AuthRequest(
            stan=stan, amount_minor=self.amount_minor, local_time=self.ports.clock.now(), pan=action.pan,
            expiry_yymm=action.expiry_yymm, pan_sequence=action.pan_sequence, track2=action.track2,
            icc_data=action.icc_data, pin_block=self.pin_block, ksn=self.ksn,
            terminal_id=self.settings.terminal_id, merchant_id=self.settings.merchant_id)
        self.request, self.answer, self.unknown_reason = authorize_journaled(self.ports, self.txn_id, self.request,
                                                                             on_refused=self._refused)
        if self.answer is None:
            return None, b""
        if self.recorder is not None:
            self.recorder.transcript.host = {"code": self.answer.response_code,
                                             "issuer_data": self.answer.icc_data.hex().upper()}
        return self.answer.response_code, self.answer.icc_data

    def _finish(self, done: Finished) -> CardPaymentResult:
        code = self.answer.response_code if self.answer else None
        masked = self.request.masked_pan if self.request else done.receipt.get("pan")
        base = CardPaymentResult(PaymentStatus.FAILED, "", code, self.answer, self.request, done.receipt, masked)

        def result(status: PaymentStatus, message: Text) -> CardPaymentResult:
            return replace(base, status=status, message=message)

        if self.unknown_reason is not None:
            return result(PaymentStatus.UNKNOWN, self.unknown_reason.message)
        if done.outcome is Outcome.APPROVED and self.request is None and self.settings.offline_approved:
            advice = self._offline_advice()
            self.settings.offline_approved(self.txn_id, advice)
            return result(PaymentStatus.APPROVED, RESPONSE_TEXT["00"])
        if done.outcome is Outcome.APPROVED:
            self.ports.journal.update(self.txn_id, TxnState.PAID, reversal=None)
            return result(PaymentStatus.APPROVED, RESPONSE_TEXT["00"])
        if done.outcome is Outcome.DECLINED_AFTER_ONLINE_APPROVAL:
            self.ports.journal.update(self.txn_id, TxnState.CARD_DECLINED_AFTER_APPROVAL, reversal="pending")
            return result(PaymentStatus.REVERSE, Msg("pay.refused_after_approval"))
        if self.answer is None and self.request is not None and self.link_fault is not None:
            return result(PaymentStatus.FAILED, Msg("pay.bank_refused", {"why": Msg(f"link.{self.link_fault}")}))
        if self.answer is None and self.request is not None:
            return result(PaymentStatus.FAILED, Msg("pay.bank_unreachable"))
        if self.pin_fault is not None:
            return result(PaymentStatus.FAILED, Msg("pay.then_nothing", {"what": self.pin_fault}))
        if self.cancel.cancelled or done.code in CANCEL_CODES:
            return result(PaymentStatus.CANCELLED, Msg("pay.cancelled"))
        if done.outcome is Outcome.DECLINED:
            return result(PaymentStatus.DECLINED, decline_text(code) if code else Msg("pay.declined_by_card"))
        return replace(result(PaymentStatus.FAILED, Msg("pay.card_error", {"reason": kernel_reason(done)})),
                       chip_failed=self.request is None)

    def _offline_advice(self) -> AuthRequest:
        """What the 0220 will carry: the card's data and field 55 with the TC, a STAN of its own."""
        assert self.kernel is not None  # noqa: S101 - set in run() before any Finished
        data = self.kernel.data
        icc = tlv.encode(tlv.Tlv(tag, data[tag]) for tag in FIELD_55_TAGS if tag in data)
        return AuthRequest(stan=self.ports.journal.next_stan(durable=False), amount_minor=self.amount_minor,
                           local_time=self.ports.clock.now(), pan=records.pan_digits(data[0x5A]),
                           expiry_yymm=data[0x5F24].hex()[:4], pan_sequence=records.psn_digits(data.get(0x5F34)),
                           icc_data=icc, terminal_id=self.settings.terminal_id,
                           merchant_id=self.settings.merchant_id)

    def card_gone(self, message: Msg = Msg("pay.card_removed")) -> CardPaymentResult:  # noqa: B008 - frozen
        if self.answer is not None and self.answer.approved:
            # Host approved but the card never confirmed: the money must come back.
            self.ports.journal.update(self.txn_id, TxnState.CARD_REMOVED_AFTER_APPROVAL, reversal="pending")
            return CardPaymentResult(PaymentStatus.REVERSE, Msg("pay.then_reversing", {"what": message}),
                                     self.answer.response_code, self.answer, self.request,
                                     masked_pan=self.request.masked_pan if self.request else None)
        if self.unknown_reason is not None:
            return CardPaymentResult(PaymentStatus.UNKNOWN, message, request=self.request)
        return CardPaymentResult(PaymentStatus.FAILED, Msg("pay.then_nothing", {"what": message}))
