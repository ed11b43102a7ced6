"""Simulated contact card reader on a pty: the device end of ``drivers.card_reader``'s protocol.

The reader runs the same ``LinkCore`` as the terminal (device role) on the master side of a pty and answers
the command set of docs/protocols/card-reader.md with the driver's own payload codecs. A card is any object
with ``.atr: bytes`` and ``.process(apdu) -> rapdu`` (``sim.devices.card.CardApplet`` or a test double).
``LinkedDevice`` is the plumbing the PIN pad simulator shares: pty, device thread, link core, listeners,
unplug/replug.

>>> sim = ReaderSim()
>>> sim.card_present
False
>>> sim.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from drivers.card_reader_batch import SW_OK, decode_batch, encode_batch_answer
from drivers.card_reader_codec import (
    CardSwiped,
    ContactlessCard,
    Led,
    ReaderCmd,
    ReaderEventCode,
    ReaderInfo,
    ReaderState,
    ReaderStatus,
    decode_buzzer,
    decode_cl_poll,
    decode_field_off,
    decode_led,
    encode_cl_card,
    encode_cl_collision,
    encode_info,
    encode_response,
    encode_state,
    encode_swipe,
    encode_timed,
)
from drivers.link import FrameReceived, LinkCore, LinkStats
from drivers.link.frames import response_cmd
from drivers.link.versions import LATEST
from pos_errors import PosError
from sim.devices.pty import DeviceThread, LineFaults, PtyPort

__all__ = ["Applet", "LinkedDevice", "ReaderSim", "air_us"]

log = logging.getLogger(__name__)


def air_us(length: int) -> int:
    """Microseconds a frame of ``length`` bytes takes on the air at 106 kbit/s (ISO/IEC 14443: 10 bits a byte
    with framing, plus ~0.3 ms of frame overhead)."""
    return 300 + length * 10 * 1_000_000 // 106_000


class Applet(Protocol):
    @property
    def atr(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...


class LinkedDevice:
    """A simulated serial device speaking our link protocol. Subclasses implement ``handle(cmd, data)``
    and may override ``tick(now)`` and ``on_replug()``. All device state is guarded
    by ``self.lock``; listeners get one string naming what changed, on whatever thread changed it."""

    name = "device"

    def __init__(self, *, baud: int | None = None, corrupt: Callable[[bytes], bytes] | None = None,
                 ack_timeout_s: float = 0.2, retries: int = 8, faults: LineFaults | None = None,
                 link_version: int = LATEST) -> None:
        self.lock = threading.RLock()
        self.link_version = link_version  # 1 / 2: a reader that speaks only link v1 / v2 (card-reader.md)
        self._ack_timeout_s, self._retries = ack_timeout_s, retries
        self._byte_time_s = 10 / baud if baud else 0.0  # a paced pty takes that long per byte
        self.port = PtyPort(baud=baud, corrupt=corrupt, faults=faults, name=self.name)
        self.core = self._new_core()
        self._thread = DeviceThread(self.name, self.port, self._on_bytes, self._on_tick)
        self._listeners: list[Callable[[str], None]] = []
        self._answering = True
        self._started = False
        self.corrupt_in: Callable[[bytes], bytes] | None = None  # fault hook for bytes from the terminal
        self.ignored_bytes = 0  # bytes that arrived while unplugged

    def start(self) -> str:
        """Start the device thread; returns the pty slave path for the driver."""
        if not self._started:
            self._started = True
            self._thread.start()
            with self.lock:
                self._flush()
        return self.port.path

    def stop(self) -> None:
        """End the device and close the pty: the terminal sees the port vanish."""
        if self._started:
            self._thread.stop()
        else:
            self.port.close()

    @property
    def stats(self) -> LinkStats:
        return self.core.stats

    def add_listener(self, callback: Callable[[str], None]) -> None:
        self._listeners.append(callback)

    def unplug(self) -> None:
        """Stop answering: bytes from the terminal are ignored and nothing is sent (the pty stays open)."""
        with self.lock:
            self._answering = False
        self.notify("unplugged")

    def replug(self) -> None:
        """Power up again: a fresh link core (it announces itself with SYN), then ``on_replug``."""
        with self.lock:
            self.core = self._new_core()
            self._answering = True
            self.on_replug()
            self._flush()
        self.notify("replugged")

    def pull(self) -> None:
        """Pull the cable: the pty closes under the terminal (its port fails) and the device loses power."""
        with self.lock:
            self._answering = False
            self.port.unplug()
        self.notify("pulled")

    def plug(self) -> None:
        """Plug the cable back: a new pty at the same path, then the device powers up as in ``replug``."""
        with self.lock:
            self.port.replug()
        self.replug()

    @property
    def connected(self) -> bool:
        """The cable is in (``pull`` takes it out); ``plugged`` is whether the device answers."""
        return self.port.plugged

    def _new_core(self) -> LinkCore:
        return LinkCore(ack_timeout_s=self._ack_timeout_s, retries=self._retries, role="device",
                        byte_time_s=self._byte_time_s, version=self.link_version)

    @property
    def plugged(self) -> bool:
        return self._answering

    def send_event(self, cmd: int, data: bytes = b"") -> None:
        """Queue an unsolicited event frame (delivered reliably by the link)."""
        with self.lock:
            if self._answering:
                self.core.send(cmd, data, time.monotonic())
                self._flush()

    def notify(self, what: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(what)
            except Exception:  # a UI listener's bug must not kill the device thread
                log.exception("%s listener failed", self.name)

    # --- for subclasses ---

    def handle(self, cmd: int, data: bytes) -> bytes | None:
        """The response DATA (STATUS + payload) to one command; None = ACKed but never answered (hung)."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Called at least every 50 ms with the lock held."""

    def on_replug(self) -> None:
        """Called with the lock held when the device powers up again."""

    # --- plumbing ---

    def _on_bytes(self, data: bytes) -> None:
        with self.lock:
            if not self._answering:
                self.ignored_bytes += len(data)
                return
            if self.corrupt_in is not None:
                data = self.corrupt_in(data)
            for event in self.core.pump(data, time.monotonic()):
                if isinstance(event, FrameReceived):
                    self._answer(event)
            self._flush()

    def _on_tick(self, now: float) -> None:
        with self.lock:
            if not self._answering:
                return
            for event in self.core.pump(b"", now):
                if isinstance(event, FrameReceived):
                    self._answer(event)
            self.tick(now)
            self._flush()

    def _answer(self, frame: FrameReceived) -> None:
        try:
            reply = self.handle(frame.cmd, frame.data)
        except PosError as exc:  # e.g. a payload the codecs reject
            log.warning("%s rejected command 0x%02X: %s", self.name, frame.cmd, exc)
            reply = encode_response(ReaderStatus.BAD_REQUEST)
        except Exception:  # a simulator bug answers BAD_REQUEST rather than killing the device thread
            log.exception("%s failed on command 0x%02X", self.name, frame.cmd)
            reply = encode_response(ReaderStatus.BAD_REQUEST)
        if reply is not None:
            self.core.send(response_cmd(frame.cmd), bytes([frame.seq]) + reply, time.monotonic())

    def _flush(self) -> None:
        out = self.core.data_to_send()
        if out:
            self.port.write(out)


class ReaderSim(LinkedDevice):
    """A contact reader with one slot. ``insert``/``remove``/``swipe`` are what a person does."""

    name = "reader"
    INFO = ReaderInfo(model="SIM-RDR-100", firmware="1.4.2", serial="RDR0001")

    def __init__(self, *, baud: int | None = None, corrupt: Callable[[bytes], bytes] | None = None,
                 ack_timeout_s: float = 0.2, retries: int = 8, faults: LineFaults | None = None,
                 link_version: int = LATEST, transmit_batch: bool | None = None) -> None:
        super().__init__(baud=baud, corrupt=corrupt, ack_timeout_s=ack_timeout_s, retries=retries, faults=faults,
                         link_version=link_version)
        # TRANSMIT_BATCH came with the firmware that speaks link v4: older readers answer UNKNOWN_COMMAND
        self.transmit_batch = link_version >= 4 if transmit_batch is None else transmit_batch
        self.batches = self.batched = 0  # TRANSMIT_BATCH commands run and the C-APDUs they held (tests, bench)
        self._applet: Applet | None = None
        self._powered = False
        self.apdus = 0  # C-APDUs passed to the card, for tests and the UI
        self._last_swipe: CardSwiped | None = None  # until MAG_READ collects it
        self._field: tuple[Applet, ContactlessCard] | None = None  # a card held over the contactless antenna
        self._cl_active = False
        self._second: Applet | None = None  # a second card in the field: polls answer COLLISION
        self._leave_after: int | None = None  # the tapped card leaves the field after this many more APDUs
        self._tear_on: int | None = None  # the card leaves while answering this INS (torn transaction)
        self._presented = 0  # presentations counted (tap): a card taken away and held out again is a new one
        self._activated: int | None = None  # the presentation last activated: CL_REMOVE waits for it to leave
        self.field_offs: list[int] = []  # CL_FIELD_OFF hold times, oldest first
        self.leds = Led(0)
        self.beeps: list[int] = []  # durations in ms, oldest first
        # A customer who does what the beep asks (benches, crash runs, pos-terminal process tests): at each
        # beep a card in the slot is taken out and, a moment later, put in again (a "new" insertion).
        self.reinsert_on_beep = False
        self._reinserting = False  # that customer is taking the card out and in (a second beep meanwhile: no more)

    @property
    def card_present(self) -> bool:
        return self._applet is not None

    @property
    def powered(self) -> bool:
        return self._powered

    def insert(self, applet: Applet) -> None:
        """Put a card in the slot (a card already in is taken out first)."""
        if self._applet is not None:
            self.remove()
        with self.lock:
            self._applet, self._powered = applet, False
        self.send_event(ReaderEventCode.CARD_INSERTED)
        self.notify("inserted")

    def remove(self) -> None:
        with self.lock:
            if self._applet is None:
                return
            self._applet, self._powered = None, False
        self.send_event(ReaderEventCode.CARD_REMOVED)
        self.notify("removed")

    def swipe(self, track2: bytes, track1: bytes = b"", track3: bytes = b"") -> None:
        """Pull a magnetic stripe card through the head (track data is sent, never logged). The tracks are also
        kept until MAG_READ collects them."""
        swipe = CardSwiped(track1=track1, track2=track2, track3=track3)
        with self.lock:
            self._last_swipe = swipe
        self.send_event(ReaderEventCode.CARD_SWIPED, encode_swipe(swipe))
        self.notify("swiped")

    def tap(self, applet: Applet, uid: bytes = bytes.fromhex("04A1B2C3"), card_type: str = "A", *,
            also: Applet | None = None, leave_after: int | None = None, tear_on_ins: int | None = None) -> None:
        """Hold a contactless card over the antenna (``applet.atr`` doubles as its ATS). ``also``: a second card
        held with it (a collision until ``take_one_away``); ``leave_after``: the card is pulled away after that
        many APDUs (a card removed too early); ``tear_on_ins``: the card is pulled away while it answers the first
        command with that INS (it processed it, the answer is lost: a torn transaction)."""
        with self.lock:
            self._field, self._cl_active = (applet, ContactlessCard(card_type, uid)), False
            self._second, self._leave_after, self._tear_on = also, leave_after, tear_on_ins
            self._presented += 1
        self.notify("tapped")

    def take_one_away(self) -> None:
        """Of two cards in the field, take the second away."""
        with self.lock:
            self._second = None
        self.notify("one taken away")

    def take_away(self) -> None:
        with self.lock:
            self._field, self._cl_active, self._second, self._leave_after = None, False, None, None
            self._tear_on = None
        self.notify("taken away")

    @property
    def card_in_field(self) -> bool:
        return self._field is not None

    def on_replug(self) -> None:
        self._powered = False
        if self._applet is not None:  # a reader that powers up with a card in announces it
            self.core.send(ReaderEventCode.CARD_INSERTED, b"", time.monotonic())

    def handle(self, cmd: int, data: bytes) -> bytes:
        if cmd in self._PERIPHERALS:
            return self._PERIPHERALS[cmd](self, data)
        if cmd == ReaderCmd.CL_TIMED_TRANSMIT:
            return self._timed(data)
        if cmd == ReaderCmd.TRANSMIT_BATCH and self.transmit_batch:
            return self._batch(data)
        if cmd == ReaderCmd.TRANSMIT and self._cl_active and not self._powered and self._field is not None:
            self.apdus += 1
            answer = bytes(self._field[0].process(data))
            if self._tear_on is not None and len(data) > 1 and data[1] == self._tear_on:
                self._field, self._cl_active, self._tear_on = None, False, None
                self.notify("taken away")
                return encode_response(ReaderStatus.NO_CARD)  # the card answered into an empty field
            if self._leave_after is not None:
                self._leave_after -= 1
                if self._leave_after <= 0:  # the customer pulls the card away: the next APDU finds no card
                    self._field, self._cl_active, self._leave_after = None, False, None
                    self.notify("taken away")
            return encode_response(ReaderStatus.OK, answer)
        if cmd == ReaderCmd.GET_INFO:
            return encode_response(ReaderStatus.OK, encode_info(self.INFO))
        if cmd == ReaderCmd.GET_STATUS:
            state = ReaderState(card_present=self._applet is not None, powered=self._powered)
            return encode_response(ReaderStatus.OK, encode_state(state))
        if cmd not in (ReaderCmd.POWER_ON, ReaderCmd.POWER_OFF, ReaderCmd.TRANSMIT):
            return encode_response(ReaderStatus.UNKNOWN_COMMAND)
        if cmd == ReaderCmd.POWER_OFF:
            self._powered = False
            return encode_response(ReaderStatus.OK)
        if self._applet is None:
            return encode_response(ReaderStatus.NO_CARD)
        if cmd == ReaderCmd.POWER_ON:
            self._powered = True
            self.notify("powered")
            return encode_response(ReaderStatus.OK, bytes(self._applet.atr))
        if not self._powered:
            return encode_response(ReaderStatus.NOT_POWERED)
        if len(data) < 4:
            return encode_response(ReaderStatus.BAD_REQUEST)
        self.apdus += 1
        return encode_response(ReaderStatus.OK, bytes(self._applet.process(data)))

    def _batch(self, data: bytes) -> bytes:
        """TRANSMIT_BATCH: every C-APDU checked before the first runs (BAD_REQUEST runs none), then run in
        order to the powered contact card, stopping after the first R-APDU whose SW1 SW2 is not 90 00."""
        commands = decode_batch(data)  # a malformed batch: PosError, answered BAD_REQUEST by _answer
        if self._applet is None:
            return encode_response(ReaderStatus.NO_CARD)
        if not self._powered:
            return encode_response(ReaderStatus.NOT_POWERED)
        self.batches += 1
        rapdus: list[bytes] = []
        for command in commands:
            self.apdus += 1
            self.batched += 1
            rapdus.append(bytes(self._applet.process(command)))
            if rapdus[-1][-2:] != SW_OK or len(rapdus[-1]) > 258:
                break
        return encode_response(ReaderStatus.OK, encode_batch_answer(rapdus))

    # --- LED, buzzer, magstripe, contactless (answers never wait: a poll with no card says NO_CARD at once) ---

    def _led(self, data: bytes) -> bytes:
        leds, on = decode_led(data)
        self.leds = (self.leds | leds) if on else (self.leds & ~leds)
        self.notify("led")
        return encode_response(ReaderStatus.OK)

    def _buzzer(self, data: bytes) -> bytes:
        self.beeps.append(decode_buzzer(data))
        applet = self._applet
        with self.lock:  # one hand: a beep while the customer is already taking the card out and in adds nothing
            act = self.reinsert_on_beep and applet is not None and not self._reinserting
            self._reinserting = self._reinserting or act
        if act:
            threading.Timer(0.05, self._take_out_and_in, (applet,)).start()
        return encode_response(ReaderStatus.OK)

    def _take_out_and_in(self, applet: Applet) -> None:
        try:
            if self._applet is applet:
                self.remove()
                time.sleep(0.05)
                self.insert(applet)
        finally:
            with self.lock:
                self._reinserting = False

    def _mag_read(self, _data: bytes) -> bytes:
        swipe, self._last_swipe = self._last_swipe, None
        if swipe is None:
            return encode_response(ReaderStatus.NO_DATA)
        return encode_response(ReaderStatus.OK, encode_swipe(swipe))

    def _cl_poll(self, data: bytes) -> bytes:
        decode_cl_poll(data)
        if self._field is None:
            return encode_response(ReaderStatus.NO_CARD)
        if self._second is not None:
            return encode_response(ReaderStatus.COLLISION, encode_cl_collision(2))
        return encode_response(ReaderStatus.OK, encode_cl_card(self._field[1]))

    def _cl_activate(self, _data: bytes) -> bytes:
        if self._field is None:
            return encode_response(ReaderStatus.NO_CARD)
        with self.lock:
            self._cl_active, self._activated = True, self._presented
        return encode_response(ReaderStatus.OK, bytes(self._field[0].atr))

    def _cl_remove(self, _data: bytes) -> bytes:
        """The removal procedure (EMV Book D §9.5) as the reader runs it: over once the card last activated has
        left the field, even if a card is back by the time the terminal asks (that one is a new presentation,
        polled and activated afresh); BUSY while that card is still there."""
        self._cl_active = False
        with self.lock:
            gone = self._field is None or self._presented != self._activated
        return encode_response(ReaderStatus.OK if gone else ReaderStatus.BUSY)

    def _timed(self, data: bytes) -> bytes:
        """CL_TIMED_TRANSMIT: the time on the air is modelled, not measured in Python (which would measure the
        host's load): C-APDU and R-APDU at 106 kbit/s (``air_us``), the card's own processing time
        (``applet.processing_us``) and any relay between reader and card (``applet.relay_delay_us``)."""
        if not self._cl_active or self._field is None:
            return encode_response(ReaderStatus.NO_CARD)
        applet = self._field[0]
        rapdu = bytes(applet.process(data))
        self.apdus += 1
        elapsed = air_us(len(data)) + int(getattr(applet, "processing_us", 1000)) + air_us(len(rapdu)) \
            + int(getattr(applet, "relay_delay_us", 0))
        return encode_response(ReaderStatus.OK, encode_timed(elapsed, rapdu))

    def _field_off(self, data: bytes) -> bytes:
        self.field_offs.append(decode_field_off(data))
        self._cl_active = False
        self.notify("field off")
        return encode_response(ReaderStatus.OK)

    _PERIPHERALS: dict[int, Callable[[ReaderSim, bytes], bytes]] = {
        ReaderCmd.LED: _led, ReaderCmd.BUZZER: _buzzer, ReaderCmd.MAG_READ: _mag_read,
        ReaderCmd.CL_POLL: _cl_poll, ReaderCmd.CL_ACTIVATE: _cl_activate, ReaderCmd.CL_REMOVE: _cl_remove,
        ReaderCmd.CL_FIELD_OFF: _field_off,
    }
