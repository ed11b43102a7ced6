"""Card payment where the customer may insert *or swipe*: magstripe with chip fallback.

A swipe is parsed (``emv.tracks``); a service code that says "chip" (first digit 2 or 6) is refused with
"insert the card" — unless the chip already failed in this sale (mute, bad ATR, a card error before the bank
was asked), then the swipe is accepted as a **fallback**: POS entry mode ``801`` instead of ``901``
(ISO 8583:1987 field 22: PAN entry 80 = chip card read by magstripe after a chip failure, 90 = full track 2;
PIN capability 1), flagged on the receipt. Either way the customer enters the PIN on the PIN pad and the
authorization goes through the same journal-first step as the chip flow (``authorize_journaled``), so the
reversal and recovery rules apply unchanged. An inserted card goes to ``pay_by_card``.

>>> entry_mode(fallback=True), entry_mode(fallback=False)
('801', '901')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Literal, Protocol, runtime_checkable

from emv.tracks import Stripe
from flows import card_slot
from flows.card_payment import (
    RESPONSE_TEXT,
    CardPaymentPorts,
    CardPaymentResult,
    CardPaymentSettings,
    PaymentStatus,
    Step,
    authorize_journaled,
    decline_text,
    pay_by_card,
)
from flows.messages import Msg
from flows.ports import AuthRequest, CancelToken
from flows.txn_state import TxnState
from pos_errors import Cancelled, DeviceError, LinkError, RemoteProtocolError

__all__ = ["SwipeReaderPort", "pay_card_or_stripe", "entry_mode", "FALLBACK_LABEL", "MAGSTRIPE_LABEL"]

FALLBACK_LABEL = "entry.fallback"  # catalogue keys: the receipt prints them in its own language
MAGSTRIPE_LABEL = "entry.magstripe"


@runtime_checkable
class SwipeReaderPort(Protocol):
    """A card reader that also has a magnetic stripe head."""

    def wait_for_card_or_swipe(self, timeout_s: float, cancel: CancelToken) -> Literal["card", "swipe"] | None:
        """"card" (inserted), "swipe" (``take_stripe`` has it) or None after the timeout; raises Cancelled."""

    def take_stripe(self) -> Stripe | None:
        """The last swipe, parsed, then forgotten. Raises RemoteProtocolError for an unreadable track."""


@runtime_checkable
class SwipeTimePort(Protocol):
    """A stripe reader that knows when its swipe happened (``CardReader``)."""

    def forget_swipe(self, before: float | None = None) -> None:
        """Forget the swipe not yet taken if it was made before ``before`` (monotonic; None: whenever)."""


def entry_mode(*, fallback: bool) -> str:
    return "801" if fallback else "901"


def pay_card_or_stripe(ports: CardPaymentPorts, settings: CardPaymentSettings, *, txn_id: int, amount_minor: int,
                       progress: Callable[[Step], None], cancel: CancelToken,
                       started_at: float | None = None) -> CardPaymentResult:
    """Like ``pay_by_card``, but a swipe is a way to pay too. A reader without a stripe head: chip only.
    A card already in the slot when the sale started (``started_at``) is refused: out, and in again. A swipe
    counts by when it happened: one made after ``started_at`` is this customer's even if it came before this
    function looked; one made before is dropped, and so is one made before the chip failed (no fallback)."""
    reader = ports.reader
    refused = _refuse_card_from_before(ports, settings, progress, cancel, started_at)
    if refused is not None:
        return refused
    if not isinstance(reader, SwipeReaderPort):
        return pay_by_card(ports, settings, txn_id=txn_id, amount_minor=amount_minor, progress=progress,
                           cancel=cancel)
    chip_failed: CardPaymentResult | None = None
    deadline = time.monotonic() + settings.card_timeout_s
    _forget_swipe(reader, started_at)  # a swipe from before this sale is not this customer's
    progress(Step.WAIT_CARD)
    while True:
        try:
            got = "card" if ports.reader.card_present() else reader.wait_for_card_or_swipe(
                max(0.0, deadline - time.monotonic()), cancel)
        except Cancelled:  # after a failed chip, its result (with the kernel's data) is the sale's outcome
            return chip_failed or CardPaymentResult(PaymentStatus.CANCELLED, Msg("pay.cancelled"))
        except DeviceError as exc:
            return CardPaymentResult(PaymentStatus.FAILED, _nothing_charged(Msg("pay.reader_error", {"error": exc})))
        if got is None:
            return chip_failed or CardPaymentResult(PaymentStatus.CANCELLED, Msg("pay.no_card"))
        if got == "card" and chip_failed is not None:  # the failed card is still in (or in again): out, then swipe
            try:
                if not card_slot.wait_removed(ports.reader, max(0.0, deadline - time.monotonic()), cancel,
                                              card_slot.mark(ports.reader)):
                    return chip_failed
            except (Cancelled, DeviceError):  # CANCEL, or the reader failed: the failed chip's result stands
                return chip_failed
            continue
        if got == "card":
            result = pay_by_card(ports, settings, txn_id=txn_id, amount_minor=amount_minor, progress=progress,
                                 cancel=cancel)
            if not result.chip_failed:
                return result
            chip_failed = result  # the chip is unusable: this card may now be swiped
            _forget_swipe(reader, time.monotonic())  # a fallback swipe comes after the failure, never before it
            progress(Step.SWIPE_FALLBACK)
            continue
        try:
            stripe = reader.take_stripe()
        except RemoteProtocolError:
            progress(Step.BAD_SWIPE)
            continue
        if stripe is None:
            continue
        if stripe.chip_card and chip_failed is None:
            progress(Step.INSERT_CHIP)
            continue
        return _pay_by_stripe(ports, settings, txn_id, amount_minor, stripe,
                              fallback=stripe.chip_card, progress=progress, cancel=cancel)


def _forget_swipe(reader: SwipeReaderPort, before: float | None) -> None:
    """Drop a swipe made before ``before`` (the terminal's monotonic time; None: any). A reader that cannot
    say when a swipe happened drops whatever it holds (test doubles)."""
    if before is not None and isinstance(reader, SwipeTimePort):
        reader.forget_swipe(before)
        return
    try:
        reader.take_stripe()
    except RemoteProtocolError:
        pass


def _refuse_card_from_before(ports: CardPaymentPorts, settings: CardPaymentSettings,
                             progress: Callable[[Step], None], cancel: CancelToken,
                             started_at: float | None) -> CardPaymentResult | None:
    """None when the slot is clear (or the card went in after the sale started); else waits for the card to be
    taken out (asking with the screen and the buzzer), returning a result only when it never was."""
    since = card_slot.mark(ports.reader)  # before asking: an out-and-in faster than this thread still counts
    if not card_slot.from_before(ports.reader, started_at):
        return None
    progress(Step.REMOVE_AND_INSERT)
    card_slot.beep(ports.reader)
    try:
        if card_slot.wait_removed(ports.reader, settings.card_timeout_s, cancel, since):
            progress(Step.WAIT_CARD)
            return None
    except Cancelled:
        return CardPaymentResult(PaymentStatus.CANCELLED, Msg("pay.cancelled"))
    except DeviceError as exc:
        return CardPaymentResult(PaymentStatus.FAILED, _nothing_charged(Msg("pay.reader_error", {"error": exc})))
    return CardPaymentResult(PaymentStatus.CANCELLED, Msg("slot.never_removed"))


def _pay_by_stripe(ports: CardPaymentPorts, settings: CardPaymentSettings, txn_id: int, amount_minor: int,
                   stripe: Stripe, *, fallback: bool, progress: Callable[[Step], None],
                   cancel: CancelToken) -> CardPaymentResult:
    label = FALLBACK_LABEL if fallback else MAGSTRIPE_LABEL
    base = CardPaymentResult(PaymentStatus.FAILED, "", emv_receipt={"entry": label}, masked_pan=stripe.masked_pan)
    progress(Step.READING_CARD)
    result = replace(base, message=_nothing_charged(Msg("pay.no_pin_attempt")))
    for attempt in range(settings.pin_tries):
        if attempt:
            progress(Step.WRONG_PIN)
        progress(Step.PIN_ENTRY)
        if cancel.cancelled:
            return replace(base, status=PaymentStatus.CANCELLED, message=Msg("pay.cancelled"))
        try:
            entry = ports.pinpad.request_online_pin(stripe.pan, amount_minor, settings.pin_timeout_s)
        except DeviceError as exc:
            return replace(base, message=_nothing_charged(Msg("pay.pinpad_fault", {"error": exc})))
        if entry.status != "entered" or cancel.cancelled:
            return replace(base, status=PaymentStatus.CANCELLED, message=_nothing_charged(Msg(f"pin.{entry.status}")))
        progress(Step.AUTHORIZING)
        request = AuthRequest(
            stan=ports.journal.next_stan(durable=False), amount_minor=amount_minor, local_time=ports.clock.now(),
            pan=stripe.pan, expiry_yymm=stripe.expiry_yymm, track2=_tag57(stripe.track2),
            pos_entry_mode=entry_mode(fallback=fallback), pin_block=entry.pin_block, ksn=entry.ksn,
            terminal_id=settings.terminal_id, merchant_id=settings.merchant_id)
        refused: list[str] = []  # a LinkFault code when TLS or sign-on refused the link (nothing sent)
        request, answer, unknown = authorize_journaled(ports, txn_id, request,
                                                       on_refused=partial(_note_fault, refused))
        result = replace(base, request=request, auth=answer, response_code=answer.response_code if answer else None)
        if unknown is not None:
            return replace(result, status=PaymentStatus.UNKNOWN,
                           message=unknown.message)
        if answer is None and refused and refused[0]:
            return replace(result, message=Msg("pay.bank_refused", {"why": Msg(f"link.{refused[0]}")}))
        if answer is None:
            return replace(result, message=Msg("pay.bank_unreachable"))
        if answer.approved:
            ports.journal.update(txn_id, TxnState.PAID, reversal=None)  # no card to confirm: approved is final
            return replace(result, status=PaymentStatus.APPROVED, message=RESPONSE_TEXT["00"])
        result = replace(result, status=PaymentStatus.DECLINED, message=decline_text(answer.response_code))
        if answer.response_code != "55":  # 55 wrong PIN: ask again, up to pin_tries
            break
    return result


def _note_fault(into: list[str], exc: LinkError) -> None:
    into.append(str(getattr(exc, "fault", "")))


def _nothing_charged(what: Msg) -> Msg:
    return Msg("pay.then_nothing", {"what": what})


def _tag57(track2: str) -> bytes:
    """Track 2 text ``PAN=YYMMSSS…`` as EMV tag 57 bytes (``D`` separator, ``F`` pad), as the host codec takes it."""
    nibbles = track2.replace("=", "D")
    return bytes.fromhex(nibbles + "F" * (len(nibbles) % 2))
