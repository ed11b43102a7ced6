"""Contact card reader client: ``flows.ports.CardReaderPort`` over our link, on the shared ``LinkDevice``.

The command set, events and payload codecs are in ``drivers.card_reader_codec`` (the simulated reader uses the
same module); this file keeps the card state the reader's events announce and the waits on it. Track data from
a swipe is never logged. See docs/protocols/card-reader.md.

>>> CardReader("loop://").card_present()
False
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Literal

from drivers import card_reader_codec as codec
from drivers.card_reader_batch import MAX_BATCH, Prefetched, decode_batch_answer, encode_batch
from drivers.card_reader_codec import HEARTBEAT_S, ReaderCmd, ReaderEventCode, ReaderStatus
from drivers.link import Event, FrameReceived, PeerReset
from drivers.link.device import LinkDevice
from emv.tracks import Stripe
from flows.ports import CancelToken
from pos_errors import Cancelled, CardRemoved, DeviceError, DeviceFault, DeviceGone, RemoteProtocolError

__all__ = ["CardReader"]

log = logging.getLogger(__name__)


class CardReader(LinkDevice):
    """``flows.ports.CardReaderPort`` on a serial card reader. Listeners get ``codec.ReaderEvent``s."""

    name = "card reader"
    status_errors = codec.STATUS_ERRORS

    def _setup(self) -> None:
        self._cond = threading.Condition()
        self._present = False
        self._insertions = 0  # counts insertions: a card swapped since power_on is a removed card
        self._inserted_at: float | None = None  # monotonic time the card in the slot went in (or was first seen)
        self._powered_insertion: int | None = None
        self._swiped: codec.CardSwiped | None = None  # the last swipe not yet taken
        self._swiped_at = 0.0  # when (monotonic) it reached the terminal
        self._tapped = False  # a contactless card is activated (it stands in for the slot's card until it is off)
        self._prefetched = Prefetched()  # R-APDUs a TRANSMIT_BATCH got ahead of the kernel
        self._batches: bool | None = None  # does the reader know TRANSMIT_BATCH (None: not asked this session)
        self.atr: codec.Atr | None = None

    def open(self) -> None:
        """Open the port and learn whether a card is already in. Raises DeviceGone, DeviceTimeout."""
        super().open()
        state = codec.decode_state(self._call(ReaderCmd.GET_STATUS))
        with self._cond:  # a new link session: a card powered before it must be powered again
            self._present, self._powered_insertion = state.card_present, None
            self._prefetched.drop()
            self._batches = None  # maybe another reader (or its firmware) behind the port now
            # a new link session cannot know when the card went in (it may have been swapped while the link
            # was down): it counts from now, so a card found at start-up is older than any sale
            self._inserted_at = time.monotonic() if state.card_present else None
            self._cond.notify_all()

    def info(self) -> codec.ReaderInfo:
        return codec.decode_info(self._call(ReaderCmd.GET_INFO))

    def status(self) -> codec.ReaderState:
        return codec.decode_state(self._call(ReaderCmd.GET_STATUS))

    # --- CardReaderPort ---

    def wait_for_card(self, timeout_s: float, cancel: CancelToken) -> bool:
        """True once a card is in, False after ``timeout_s``. Raises Cancelled, DeviceGone, and DeviceTimeout
        when the reader stops answering (it is asked for its status every ``HEARTBEAT_S`` meanwhile)."""
        return self._wait(lambda: self._present, timeout_s, cancel)

    def wait_for_card_or_swipe(self, timeout_s: float, cancel: CancelToken) -> Literal["card", "swipe"] | None:
        """"card" once a card is in, "swipe" once a stripe was swiped (``take_stripe`` has it), None after
        ``timeout_s``. Raises like ``wait_for_card``."""
        if not self._wait(lambda: self._present or self._swiped is not None, timeout_s, cancel):
            return None
        return "card" if self._present else "swipe"

    def take_stripe(self) -> Stripe | None:
        """The last swipe, parsed, and forgotten (None when there was none). Raises RemoteProtocolError for a
        track 2 the head misread: the customer swipes again."""
        with self._cond:
            swiped, self._swiped = self._swiped, None
        return None if swiped is None else swiped.stripe()

    def forget_swipe(self, before: float | None = None) -> None:
        """Forget the swipe not yet taken if it reached the terminal before ``before`` (``time.monotonic()``;
        None: whenever). A swipe is judged by when it happened, not by when a flow first looked."""
        with self._cond:
            if self._swiped is not None and (before is None or self._swiped_at < before):
                self._swiped = None

    def card_present(self) -> bool:
        """What the reader last said; False while the link is down (an unplugged reader has no card)."""
        return self._present and self._link.is_open

    @property
    def inserted_at(self) -> float | None:
        """When (``time.monotonic()``) the card now in the slot went in; None when the slot is empty."""
        with self._cond:
            return self._inserted_at if self._present else None

    def power_on(self) -> bytes:
        """Activate the card; returns the ATR (parsed into ``self.atr``). Raises CardRemoved, DeviceError
        (fault GARBLED for a malformed ATR)."""
        with self._cond:
            insertion = self._insertions
            self._prefetched.drop()
        raw = self._call(ReaderCmd.POWER_ON)
        try:
            self.atr = codec.parse_atr(raw)
        except RemoteProtocolError as exc:
            raise DeviceError(f"the card answered a malformed ATR: {exc}", fault=DeviceFault.GARBLED) from exc
        self._powered_insertion = insertion
        return raw

    def transmit(self, apdu: bytes, *, then: Sequence[bytes] = ()) -> bytes:
        """One C-APDU -> R-APDU (with SW1 SW2). Raises CardRemoved if the powered card left the reader.

        ``then``: the commands the kernel sends next if this one and each before it answers ``90 00``. A
        reader that knows TRANSMIT_BATCH runs up to ``MAX_BATCH`` of them at once and their R-APDUs are kept
        for those very commands (``drivers.card_reader_batch``); one that does not gets single TRANSMITs.
        Raises DeviceError (GARBLED) for a batch answer that does not fit the batch sent."""
        with self._cond:
            if not self._present or self._powered_insertion != self._insertions:
                raise CardRemoved("the card was removed", fault=DeviceFault.CARD_REMOVED)
            kept = self._prefetched.take(apdu)
        if kept is not None:
            return kept
        batch = [bytes(apdu), *map(bytes, then[:MAX_BATCH - 1])]
        if then and self._batches is not False and not self._tapped and all(4 <= len(c) <= 261 for c in batch):
            rapdu = self._transmit_batch(batch)
            if rapdu is not None:
                return rapdu
        rapdu = self._call(ReaderCmd.TRANSMIT, apdu)
        if len(rapdu) < 2:
            raise RemoteProtocolError("R-APDU shorter than SW1 SW2", offset=len(rapdu), raw=rapdu)
        return rapdu

    def _transmit_batch(self, commands: list[bytes]) -> bytes | None:
        """The first command's R-APDU, the rest kept; None when the reader does not know TRANSMIT_BATCH (it ran
        nothing: the caller sends a single TRANSMIT, as it will from now on in this link session)."""
        status, payload = self._request(ReaderCmd.TRANSMIT_BATCH, encode_batch(commands))
        if status == ReaderStatus.UNKNOWN_COMMAND:
            log.info("the card reader does not know TRANSMIT_BATCH: one APDU an exchange")
            self._batches = False
            return None
        try:
            rapdus = decode_batch_answer(self._check(ReaderCmd.TRANSMIT_BATCH, status, payload), len(commands))
        except RemoteProtocolError as exc:
            raise DeviceError(f"the reader sent a malformed batch answer: {exc}", fault=DeviceFault.GARBLED) from exc
        self._batches = True
        with self._cond:
            if self._present and self._powered_insertion == self._insertions:
                self._prefetched.keep(commands[1:], rapdus[1:])
        return rapdus[0]

    def power_off(self) -> None:
        self._powered_insertion = None
        with self._cond:
            self._prefetched.drop()
        self._call(ReaderCmd.POWER_OFF)

    # --- the rest of the command set ---

    def led(self, leds: codec.Led, on: bool = True) -> None:
        self._call(ReaderCmd.LED, codec.encode_led(leds, on))

    def beep(self, duration_ms: int = 100) -> None:
        if not 0 < duration_ms <= 5000:
            raise ValueError("a beep lasts 1..5000 ms")
        self._call(ReaderCmd.BUZZER, codec.encode_buzzer(duration_ms))

    def read_stripe(self) -> codec.CardSwiped | None:
        """The tracks of the last swipe not yet read (the reader forgets them once read), or None."""
        status, payload = self._request(ReaderCmd.MAG_READ)
        if status == ReaderStatus.NO_DATA:
            return None
        return codec.decode_swipe(self._check(ReaderCmd.MAG_READ, status, payload))

    def poll_contactless(self, timeout_ms: int = 500) -> codec.ContactlessCard | None:
        """Switch the field on and look for a card for up to ``timeout_ms``; None when nothing answered."""
        status, payload = self._request(ReaderCmd.CL_POLL, codec.encode_cl_poll(timeout_ms), extra_s=timeout_ms / 1000)
        if status == ReaderStatus.NO_CARD:
            return None
        return codec.decode_cl_card(self._check(ReaderCmd.CL_POLL, status, payload))

    def poll_cards(self, timeout_ms: int = 500) -> int:
        """``ContactlessReaderPort``: field on, poll; how many cards answered (0, 1, or the collision count).
        Raises DeviceError for a malformed collision report."""
        status, payload = self._request(ReaderCmd.CL_POLL, codec.encode_cl_poll(timeout_ms),
                                        extra_s=timeout_ms / 1000)
        if status == ReaderStatus.NO_CARD:
            return 0
        if status == ReaderStatus.COLLISION:
            try:
                return codec.decode_cl_collision(payload)
            except RemoteProtocolError as exc:
                raise DeviceError(f"the reader reported a malformed collision: {exc}",
                                  fault=DeviceFault.GARBLED) from exc
        try:
            codec.decode_cl_card(self._check(ReaderCmd.CL_POLL, status, payload))
        except RemoteProtocolError as exc:
            raise DeviceError(f"the reader reported a malformed card: {exc}", fault=DeviceFault.GARBLED) from exc
        return 1

    def transmit_timed(self, apdu: bytes) -> tuple[bytes, int]:
        """One C-APDU to the activated contactless card, timed by the reader: (R-APDU, µs). Raises CardRemoved,
        DeviceError (GARBLED) for a malformed answer."""
        with self._cond:
            if not self._present or self._powered_insertion != self._insertions:
                raise CardRemoved("the card was removed", fault=DeviceFault.CARD_REMOVED)
        try:
            return codec.decode_timed(self._call(ReaderCmd.CL_TIMED_TRANSMIT, apdu))
        except RemoteProtocolError as exc:
            raise DeviceError(f"the reader sent a malformed timed answer: {exc}", fault=DeviceFault.GARBLED) from exc

    def field_off(self, hold_ms: int = 0) -> None:
        """Switch the RF field off (EMV Book A §6.2.10); the next poll switches it on again."""
        self._tap_gone()
        self._call(ReaderCmd.CL_FIELD_OFF, codec.encode_field_off(hold_ms))

    def indicate(self, lights: int, beep_ms: int = 0) -> None:
        """Show exactly ``lights`` (bit 0 blue, 1 yellow, 2 green, 3 red: Book A §9.2's four lights), then
        beep for ``beep_ms`` when not 0."""
        wanted = codec.Led(lights & 0x0F)
        self.led(~wanted & codec.Led(0x0F), False)
        if wanted:
            self.led(wanted, True)
        if beep_ms:
            self.beep(beep_ms)

    def activate_contactless(self) -> bytes:
        """Activate the polled card (RATS); returns its ATS. ``transmit`` then reaches it."""
        ats = self._call(ReaderCmd.CL_ACTIVATE)
        with self._cond:
            self._powered_insertion, self._present, self._tapped = self._insertions, True, True
            self._prefetched.drop()
        return ats

    def remove_contactless(self, timeout_s: float = 10.0, cancel: CancelToken | None = None) -> bool:
        """Deactivate the card and wait for it to leave the field (EMV contactless "card removal"): the
        reader answers BUSY while the card it last activated is still there (a card taken away and presented
        again between two asks has left: the reader's removal procedure saw it go). True once gone, False
        after ``timeout_s``; raises Cancelled when ``cancel`` is."""
        deadline = time.monotonic() + timeout_s
        self._tap_gone()
        while True:
            status, payload = self._request(ReaderCmd.CL_REMOVE)
            if status != ReaderStatus.BUSY:
                self._check(ReaderCmd.CL_REMOVE, status, payload)
                return True
            if time.monotonic() >= deadline:
                return False
            if cancel is None:
                time.sleep(0.1)
            elif cancel.wait(0.1):
                raise Cancelled("card removal cancelled")

    def slot_mark(self) -> int:
        """Which insertion the slot holds now (insertions counted since the driver started): taken *before* the
        customer is asked to take the card out, it lets ``wait_for_removal`` see an out-and-in that is already
        over when the wait begins."""
        with self._cond:
            return self._insertions

    def wait_for_removal(self, timeout_s: float, cancel: CancelToken | None = None,
                         since: int | None = None) -> bool:
        """True once the card of insertion ``since`` (``slot_mark()``; default: the card in now) has left: the
        slot is empty, or another card went in since — out and in again, however fast, even before this call
        (the two events may reach this thread together). False after ``timeout_s``. Woken by the reader's
        events and ``cancel``; raises like ``wait_for_card``."""
        with self._cond:
            mark = self._insertions if since is None else since
        return self._wait(lambda: not self._present or self._insertions != mark, timeout_s, cancel)

    # --- internals ---

    def _check(self, cmd: IntEnum, status: int, payload: bytes) -> bytes:
        if status == ReaderStatus.NO_CARD:
            self._card_gone()
        return super()._check(cmd, status, payload)

    def _wait(self, done: Callable[[], bool], timeout_s: float, cancel: CancelToken | None) -> bool:
        """Sleeps until a reader event (card in / out, swipe) or the cancel token wakes it; every ``HEARTBEAT_S``
        the port and the reader are looked at (no 50 ms polling: issue 17 item 3)."""
        if not self._link.is_open:
            self.open()
        deadline = time.monotonic() + timeout_s
        next_poll = time.monotonic() + HEARTBEAT_S
        forget = cancel.on_cancel(self._wake) if cancel is not None else None
        try:
            while True:
                with self._cond:
                    if done():
                        return True
                    if cancel is not None and cancel.cancelled:
                        raise Cancelled("wait for card cancelled")
                    if not self._link.is_open:
                        raise DeviceGone(f"card reader {self._link.url} is not connected", fault=DeviceFault.PORT)
                    now = time.monotonic()
                    if now >= deadline:
                        return False
                    if now < next_poll:
                        self._cond.wait(min(next_poll, deadline) - now)
                        continue
                self._call(ReaderCmd.GET_STATUS)  # outside the lock (the reader thread needs it for events);
                next_poll = time.monotonic() + HEARTBEAT_S  # DeviceTimeout if the reader stopped answering
        finally:
            if forget is not None:
                forget()

    def _wake(self) -> None:
        """The cancel token's wake-up (on the cancelling thread): the waiter looks at its conditions again."""
        with self._cond:
            self._cond.notify_all()

    def _card_gone(self) -> None:
        with self._cond:
            self._present, self._inserted_at, self._tapped = False, None, False
            self._prefetched.drop()
            self._cond.notify_all()

    def _tap_gone(self) -> None:
        """The activated contactless card is off; a card in the slot (no tap activated) is left as it is."""
        with self._cond:
            tapped = self._tapped
        if tapped:
            self._card_gone()

    def _on_link_event(self, event: Event) -> None:
        reader_event: codec.ReaderEvent | None = None
        code = event.cmd if isinstance(event, FrameReceived) else None
        if isinstance(event, PeerReset):  # the reader restarted: it re-announces a card that is still in
            self._batches = None  # and its firmware may have changed
            self._card_gone()
        elif code == ReaderEventCode.CARD_INSERTED:
            with self._cond:
                self._present, self._insertions = True, self._insertions + 1
                self._inserted_at = time.monotonic()
                self._prefetched.drop()
                self._cond.notify_all()
            reader_event = codec.CardInserted()
        elif code == ReaderEventCode.CARD_REMOVED:
            self._card_gone()
            reader_event = codec.CardRemovedEvent()
        elif code == ReaderEventCode.CARD_SWIPED and isinstance(event, FrameReceived):
            try:
                swipe = codec.decode_swipe(event.data)
            except RemoteProtocolError:
                log.warning("malformed swipe event dropped (%d bytes)", len(event.data))
            else:
                with self._cond:
                    self._swiped = reader_event = swipe
                    self._swiped_at = time.monotonic()
                    self._cond.notify_all()
        else:
            log.debug("unknown reader event 0x%02X", code or 0)
        if reader_event is not None:
            self._notify(reader_event)
