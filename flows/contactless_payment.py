"""Contactless payment: runs the Entry Point and its kernels (``emv.entry_point``) over the reader's contactless
side, the PIN pad and the acquirer host (EMV Contactless Book A/B; kernels C-2, C-3 and UnionPay's 7).

The Entry Point decides everything; this flow carries its actions to the ports and its answers back:

* ``PollCards``  → ``reader.poll_cards`` until one card answers (a collision is reported to the Entry Point, which
  asks for "one card only"); the card is activated, then ``on_cards``.
* ``SendApdu``   → ``reader.transmit``. A card that leaves the field mid-exchange ends this Entry Point run; the
  customer is asked to present it again and a fresh run starts (Book A §6.2: Try Again, restart at B), up to
  ``TapSettings.presentations`` times. The card leaves before the host is asked, so nothing is charged.
* ``ShowUi``     → the reader's four lights and beeper (Book A §9.2: ``LIGHTS``) and a progress step the
  terminal shows in the cashier's language.
* ``FieldOff``   → ``reader.field_off``.
* ``RequestOnlinePin`` → the PIN pad; ``GoOnline`` → the journal-first ``authorize_journaled`` (POS entry mode
  ``071``, contactless chip), as for a chip card, so reversal and recovery are the same.

An offline approval (the card's TC, fDDA or CDA verified) is recorded like the contact kernel's: the 0220
advice is queued through ``CardPaymentSettings.offline_approved``. Try Another Interface ends with
``try_contact``: the caller asks for the card in the slot.

>>> LIGHTS[UiStatus.PROCESSING_ERROR]
(8, 400)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from emv import kernel_c2, kernel_c3, records, tlv
from emv.actions import GoOnline, RequestOnlinePin, SendApdu
from emv.capk import Capk
from emv.contactless import Combination, Cvm, Message, Status, UiStatus
from emv.entry_point import ContactlessAction, ContactlessFinished, EntryPoint, FieldOff, Kernel, PollCards, ShowUi
from emv.tap_replay import tap_meta
from emv.torn import TornLog
from emv.transcript import Transcript, mask_transcript
from flows import card_slot
from flows.authorize import Unknown
from flows.card_payment import (
    RESPONSE_TEXT,
    CardPaymentPorts,
    CardPaymentResult,
    CardPaymentSettings,
    PaymentStatus,
    Step,
    authorize_journaled,
    decline_text,
)
from flows.messages import Msg
from flows.ports import AuthRequest, AuthResponse, CancelToken, ContactlessReaderPort, mask_pan
from flows.txn_state import TxnState
from pos_errors import Cancelled, CardRemoved, DeviceError, RemoteProtocolError

__all__ = ["TapSettings", "pay_by_tap", "LIGHTS", "KERNELS", "ENTRY_MODE", "KERNEL_NAMES"]

ENTRY_MODE = "071"  # ISO 8583:1987 field 22: 07 contactless chip (EMV mode), PIN capability 1
KERNELS: Mapping[int, Kernel] = {2: kernel_c2.run, 3: kernel_c3.run, 7: kernel_c3.run}
KERNEL_NAMES: Mapping[int, str] = {2: "C-2 Mastercard", 3: "C-3 Visa payWave", 7: "UnionPay QuickPass"}
# Book A §9.2: the four lights (bit 0 blue, 1 yellow, 2 green, 3 red) and the tone (ms) of each UI status.
LIGHTS: Mapping[UiStatus, tuple[int, int]] = {
    UiStatus.NOT_READY: (0x00, 0), UiStatus.IDLE: (0x01, 0), UiStatus.READY_TO_READ: (0x01, 0),
    UiStatus.PROCESSING: (0x03, 0), UiStatus.CARD_READ_SUCCESSFULLY: (0x07, 150),
    UiStatus.PROCESSING_ERROR: (0x08, 400),
}
# UI request messages the terminal's screen shows too (flows.card_payment.Step; the texts are in the catalogue).
_SCREEN_STEPS: Mapping[Message, Step] = {
    Message.PRESENT_ONE_CARD_ONLY: Step.TAP_ONE_CARD, Message.PRESENT_CARD_AGAIN: Step.TAP_UPDATE,
    Message.SEE_PHONE: Step.TAP_SEE_PHONE, Message.CARD_READ_OK: Step.TAP_READ_OK,
}


@dataclass(frozen=True)
class TapSettings:
    """The reader's combinations with their limits (Book B §3.1.1), the CA keys, and the waits."""

    combinations: tuple[Combination, ...]
    capks: Mapping[tuple[bytes, int], Capk] = field(default_factory=dict, repr=False)
    tap_timeout_s: float = 30.0
    poll_ms: int = 200
    presentations: int = 3  # a card pulled away too early may be presented this many times in all
    country: bytes = b"\x01\x56"
    currency: bytes = b"\x01\x56"
    kernels: Mapping[int, Kernel] = field(default_factory=lambda: dict(KERNELS), repr=False)
    torn: TornLog = field(default_factory=TornLog, repr=False)  # kernel 2's torn transactions, kept between taps
    update_timeout_s: float = 15.0  # issuer update: how long the card may take to be presented again


class _TapAgain(Exception):
    """The card left the field before the kernel had what it needed."""


def pay_by_tap(ports: CardPaymentPorts, reader: ContactlessReaderPort, settings: CardPaymentSettings,
               tap: TapSettings, *, txn_id: int, amount_minor: int, progress: Callable[[Step], None],
               cancel: CancelToken) -> CardPaymentResult:
    """Take ``amount_minor`` from a tapped card or phone. Never raises for business outcomes. The card of the
    previous tap, still on the reader, is never read again: it must be taken away first."""
    try:
        if not card_slot.field_cleared(reader, tap.tap_timeout_s, cancel, lambda: progress(Step.TAP_REMOVE)):
            return CardPaymentResult(PaymentStatus.CANCELLED, Msg("tap.never_removed"))
    except Cancelled:
        return CardPaymentResult(PaymentStatus.CANCELLED, Msg("pay.cancelled"))
    except (DeviceError, RemoteProtocolError) as exc:
        return CardPaymentResult(PaymentStatus.FAILED, Msg("pay.then_nothing", {"what": Msg("pay.reader_error",
                                                                                            {"error": exc})}))
    progress(Step.TAP_CARD)
    for _ in range(max(1, tap.presentations)):
        attempt = _Tap(ports, reader, settings, tap, txn_id, amount_minor, progress, cancel)
        try:
            return attempt.run()
        except _TapAgain:
            _indicate(reader, UiStatus.PROCESSING_ERROR)
            progress(Step.TAP_AGAIN)
        except (DeviceError, RemoteProtocolError) as exc:  # the reader failed or sent garbage: nothing charged
            return attempt.failed(Msg("pay.reader_error", {"error": exc}))
        finally:
            try:
                reader.field_off(0)
            except DeviceError:
                pass
    return CardPaymentResult(PaymentStatus.FAILED, Msg("pay.then_nothing", {"what": Msg("tap.removed")}))


def _indicate(reader: ContactlessReaderPort, status: UiStatus) -> None:
    lights, beep = LIGHTS.get(status, (0, 0))
    try:
        reader.indicate(lights, beep)
    except DeviceError:
        pass  # lights are a courtesy: a reader that cannot show them still reads cards


class _Tap:
    """One Entry Point run, from the first poll to its final outcome."""

    def __init__(self, ports: CardPaymentPorts, reader: ContactlessReaderPort, settings: CardPaymentSettings,
                 tap: TapSettings, txn_id: int, amount_minor: int, progress: Callable[[Step], None],
                 cancel: CancelToken) -> None:
        self.ports, self.reader, self.settings, self.tap = ports, reader, settings, tap
        self.txn_id, self.amount, self.progress, self.cancel = txn_id, amount_minor, progress, cancel
        self.pin_block: bytes | None = None
        self.ksn: bytes | None = None
        self.pin_fault: Msg | None = None
        self.request: AuthRequest | None = None
        self.answer: AuthResponse | None = None
        self.unknown_reason: Unknown | None = None
        self.cancelled = False
        self.transcript = Transcript(meta={"interface": "contactless", "amount_minor": amount_minor})
        self.drawn: list[bytes] = []  # every random value of this run, for replay (emv.tap_replay)
        self.timings: list[int | None] = []

    def random_bytes(self, n: int) -> bytes:
        value = self.ports.random_bytes(n)
        self.drawn.append(value)
        return value

    def save_transcript(self, outcome: str) -> None:
        """The tap's APDUs as a PAN-masked transcript (``CardPaymentSettings.transcript_sink``), like a chip's."""
        sink = self.settings.transcript_sink
        if sink is None or not self.transcript.exchanges:
            return
        self.transcript.meta.update(tap_meta(
            amount_minor=self.amount, date=self.ports.clock.now().date().isoformat(), country=self.tap.country,
            currency=self.tap.currency, ifd_serial=self._ifd_serial(), random=self.drawn, timings=self.timings,
            combinations=self.tap.combinations))
        self.transcript.meta["outcome"] = outcome
        name = f"txn{self.txn_id:06d}-tap-{len(self.transcript.exchanges):03d}"
        sink(name, mask_transcript(self.transcript).to_json())

    def run(self) -> CardPaymentResult:
        when = self.ports.clock.now()
        terminal = kernel_c3.terminal_data(amount_minor=self.amount, unpredictable_number=self.random_bytes(4),
                                           today=when.date(), country=self.tap.country, currency=self.tap.currency,
                                           ifd_serial=self._ifd_serial())
        ep = EntryPoint(self.tap.combinations, amount_minor=self.amount, kernels=self.tap.kernels,
                        terminal=terminal, capks=self.tap.capks, today=when.date(), torn=self.tap.torn,
                        random_bytes=self.random_bytes)
        action = ep.start()
        reading, collision = False, False
        while not isinstance(action, ContactlessFinished):
            if isinstance(action, PollCards) and action.again:
                action = self._poll_again(ep, action)
            elif isinstance(action, PollCards):
                if collision:  # "one card only" stays lit while the customer sorts the cards out (Book D)
                    self.cancel.wait(self.tap.poll_ms / 1000)
                else:
                    _indicate(self.reader, action.ui.status)
                count = self._poll()
                if count is None:
                    return self.failed(Msg("pay.cancelled") if self.cancelled else Msg("tap.no_card"),
                                       PaymentStatus.CANCELLED)
                collision = count > 1
                if count == 1:
                    try:
                        self.reader.activate_contactless()
                    except CardRemoved as exc:  # gone between the poll and the activation
                        raise _TapAgain from exc
                action = ep.on_cards(count)
            elif isinstance(action, SendApdu):
                if not reading:
                    reading = True
                    self.progress(Step.READING_CARD)
                    _indicate(self.reader, UiStatus.PROCESSING)
                command, elapsed_us = action.apdu, None
                if self.answer is not None:  # the host has answered: this is the issuer update's second tap
                    action = self._update_apdu(ep, command)
                    continue
                try:
                    if action.timed:  # relay resistance: the reader times the exchange on the air
                        rapdu, elapsed_us = self.reader.transmit_timed(command)
                        self.timings.append(elapsed_us)
                    else:
                        rapdu = self.reader.transmit(command)
                except CardRemoved as exc:
                    self.save_transcript("card removed")
                    raise _TapAgain from exc
                self.transcript.exchanges.append((command, rapdu))
                action = ep.on_response(rapdu, elapsed_us)
            elif isinstance(action, ShowUi):
                self._show(action.request.message, action.request.status)
                action = ep.on_ack()
            elif isinstance(action, FieldOff):
                try:
                    self.reader.field_off(action.hold_ms)
                except DeviceError:
                    if self.answer is None:  # before the host: nothing charged, the caller reports it
                        raise
                action = ep.on_ack()
            elif isinstance(action, RequestOnlinePin):
                action = ep.on_pin(self._pin(action))
            elif isinstance(action, GoOnline):
                code = self._authorize(action)
                action = ep.on_online_result(code, self.answer.icc_data if self.answer is not None else b"")
            else:  # an action this flow does not know is a programming error, not a card problem
                raise TypeError(f"unhandled Entry Point action {type(action).__name__}")
        for request in action.ui_requests[-1:]:
            _indicate(self.reader, request.status)
        self.transcript.meta["kernel"] = action.kernel_id
        self.save_transcript(action.outcome.status.value)
        return self._finish(action)

    def _ifd_serial(self) -> bytes:
        return self.settings.terminal_id.encode("ascii")[:8].ljust(8)

    def _poll_again(self, ep: EntryPoint, action: PollCards) -> ContactlessAction:
        """The issuer update's second presentation: a missing card or a failing reader ends it, never the
        payment (the host has decided)."""
        _indicate(self.reader, action.ui.status)
        deadline = self.ports.clock.monotonic() + self.tap.update_timeout_s
        try:
            while self.ports.clock.monotonic() < deadline and not self.cancel.cancelled:
                count = self.reader.poll_cards(self.tap.poll_ms)
                if count == 1:
                    self.reader.activate_contactless()
                    return ep.on_cards(1)
                self.cancel.wait(self.tap.poll_ms / 1000)
        except (DeviceError, RemoteProtocolError):
            return ep.on_card_lost()
        return ep.on_cards(0)

    def _update_apdu(self, ep: EntryPoint, command: bytes) -> ContactlessAction:
        try:
            rapdu = self.reader.transmit(command)
        except (DeviceError, RemoteProtocolError):  # CardRemoved is a DeviceError: the update stops there
            return ep.on_card_lost()
        self.transcript.exchanges.append((command, rapdu))
        return ep.on_response(rapdu)

    def _poll(self) -> int | None:
        """Poll until a card answers; None after the timeout or on cancel."""
        deadline = self.ports.clock.monotonic() + self.tap.tap_timeout_s
        while self.ports.clock.monotonic() < deadline:
            if self.cancel.cancelled:
                self.cancelled = True
                return None
            count = self.reader.poll_cards(self.tap.poll_ms)
            if count:
                return count
            self.cancel.wait(self.tap.poll_ms / 1000)
        return None

    def _show(self, message: Message, status: UiStatus) -> None:
        _indicate(self.reader, status)
        step = _SCREEN_STEPS.get(message)
        if step is not None:
            self.progress(step)

    def _pin(self, action: RequestOnlinePin) -> str:
        self.progress(Step.PIN_ENTRY)
        if self.cancel.cancelled:
            return "cancelled"
        try:
            entry = self.ports.pinpad.request_online_pin(action.pan, action.amount_minor,
                                                         self.settings.pin_timeout_s)
        except DeviceError as exc:
            self.pin_fault = Msg("pay.pinpad_fault", {"error": exc})
            return "cancelled"
        if entry.status == "entered":
            self.pin_block, self.ksn = entry.pin_block, entry.ksn
        return entry.status

    def _authorize(self, action: GoOnline) -> str | None:
        if self.cancel.cancelled:
            return None  # cancelled before going online: nothing is sent
        self.progress(Step.AUTHORIZING)
        self.request = AuthRequest(
            stan=self.ports.journal.next_stan(durable=False), amount_minor=self.amount,  # rides with auth_intended
            local_time=self.ports.clock.now(),
            pan=action.pan, expiry_yymm=action.expiry_yymm, pan_sequence=action.pan_sequence,
            track2=action.track2, pos_entry_mode=ENTRY_MODE, icc_data=action.icc_data, pin_block=self.pin_block,
            ksn=self.ksn, terminal_id=self.settings.terminal_id, merchant_id=self.settings.merchant_id)
        self.request, self.answer, self.unknown_reason = authorize_journaled(self.ports, self.txn_id,
                                                                             self.request)
        if self.answer is not None:
            self.transcript.host = {"code": self.answer.response_code,
                                    "issuer_data": self.answer.icc_data.hex().upper()}
        return self.answer.response_code if self.answer is not None else None

    def failed(self, message: Msg, status: PaymentStatus = PaymentStatus.FAILED) -> CardPaymentResult:
        return CardPaymentResult(status, message if status is PaymentStatus.CANCELLED
                                 else Msg("pay.then_nothing", {"what": message}))

    def _finish(self, done: ContactlessFinished) -> CardPaymentResult:
        outcome, record = done.outcome, done.outcome.data_record
        code = self.answer.response_code if self.answer else None
        pan = records.pan_digits(record[0x5A]) if 0x5A in record else None
        masked = self.request.masked_pan if self.request else (mask_pan(pan) if pan else None)
        receipt = _receipt(done)
        base = CardPaymentResult(PaymentStatus.FAILED, "", code, self.answer, self.request, receipt, masked)

        def result(status: PaymentStatus, message: Msg) -> CardPaymentResult:
            return replace(base, status=status, message=message)

        if self.unknown_reason is not None:
            return result(PaymentStatus.UNKNOWN, self.unknown_reason.message)
        if outcome.status is Status.APPROVED and self.request is None:
            advice = self._offline_advice(record)
            if self.settings.offline_approved is not None:
                self.settings.offline_approved(self.txn_id, advice)
            else:
                self.ports.journal.update(self.txn_id, TxnState.PAID, reversal=None)
            return result(PaymentStatus.APPROVED, RESPONSE_TEXT["00"])
        if outcome.status is Status.APPROVED:
            self.ports.journal.update(self.txn_id, TxnState.PAID, reversal=None)
            return result(PaymentStatus.APPROVED, RESPONSE_TEXT["00"])
        if self.answer is None and self.request is not None:
            return result(PaymentStatus.FAILED, Msg("pay.bank_unreachable"))
        if outcome.status is Status.TRY_ANOTHER_INTERFACE:
            return replace(result(PaymentStatus.FAILED, Msg("tap.insert_card")), try_contact=True)
        if self.pin_fault is not None:
            return result(PaymentStatus.FAILED, Msg("pay.then_nothing", {"what": self.pin_fault}))
        if outcome.status is Status.DECLINED and code:  # the host's word, even if CANCEL skipped the second tap
            return result(PaymentStatus.DECLINED, decline_text(code))
        if self.cancel.cancelled:
            return result(PaymentStatus.CANCELLED, Msg("pay.cancelled"))
        if outcome.status is Status.DECLINED and outcome.cvm is Cvm.ONLINE_PIN:
            return result(PaymentStatus.CANCELLED, Msg("pay.cancelled"))  # the customer did not enter the PIN
        if outcome.status is Status.DECLINED:
            return result(PaymentStatus.DECLINED, Msg("pay.declined_by_card"))
        return result(PaymentStatus.FAILED, Msg("pay.then_nothing", {"what": Msg("tap.card_error")}))

    def _offline_advice(self, record: Mapping[int, bytes]) -> AuthRequest:
        """What the 0220 carries: the card's data and field 55 with the TC, a STAN of its own."""
        icc = tlv.encode(tlv.Tlv(t, v) for t, v in record.items() if t not in (0x5A, 0x57, 0x5F24, 0x5F34))
        return AuthRequest(stan=self.ports.journal.next_stan(durable=False), amount_minor=self.amount,
                           local_time=self.ports.clock.now(), pan=records.pan_digits(record[0x5A]),
                           expiry_yymm=record.get(0x5F24, b"").hex()[:4],
                           pan_sequence=records.psn_digits(record.get(0x5F34)), pos_entry_mode=ENTRY_MODE,
                           icc_data=icc, terminal_id=self.settings.terminal_id,
                           merchant_id=self.settings.merchant_id)


def _receipt(done: ContactlessFinished) -> dict[str, str]:
    """The tap's EMV facts for the receipt and the scenarios: kernel, outcome, CVM, AID, TVR, cryptogram."""
    outcome, record = done.outcome, done.outcome.data_record
    facts = {"entry": "entry.contactless", "outcome": outcome.status.value, "cvm": outcome.cvm.value,
             "tap_outcome": f"tap.outcome.{outcome.status.value}", "tap_cvm": f"tap.cvm.{outcome.cvm.value}"}
    if done.kernel_id is not None:
        facts["kernel"] = KERNEL_NAMES.get(done.kernel_id, f"kernel {done.kernel_id}")
    if done.aid:
        facts["aid"] = done.aid.hex().upper()
    for key, tag in (("tvr", 0x95), ("cvm_results", 0x9F34), ("ac", 0x9F26), ("ctq", 0x9F6C), ("ttq", 0x9F66),
                     ("tsi", 0x9B), ("script_results", 0x9F5B)):
        if tag in record:
            facts[key] = record[tag].hex().upper()
    return facts

