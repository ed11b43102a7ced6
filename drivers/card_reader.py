"""Contact card reader driver: our reader command set over ``drivers.link``, implementing ``CardReaderPort``.

The reader passes APDUs through, so the EMV kernel runs in the terminal. Commands, responses and unsolicited
events (CARD_INSERTED, CARD_REMOVED, CARD_SWIPED) are listed in docs/protocols/card-reader.md; the payload
codecs below serve both ends of the wire (``sim.devices.reader`` answers with them). The ATR is parsed per
ISO/IEC 7816-3 §8 to learn the offered protocols (T=0, T=1). Track data from a swipe is never logged.

>>> parse_atr(bytes.fromhex("3B 80 80 01 01")).protocols
(0, 1)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from functools import reduce
from typing import Any, Literal

from construct import ConstructError, FlagsEnum, GreedyBytes, Int8ub, Int16ub, PascalString, Prefixed, Struct

from drivers.link import Event, FrameReceived, PeerReset, SerialLink
from emv.tracks import Stripe, parse_tracks
from flows.ports import CancelToken
from pos_errors import Cancelled, CardRemoved, DeviceError, DeviceGone, RemoteProtocolError

__all__ = [
    "HEARTBEAT_S",
    "ReaderCmd",
    "ReaderEventCode",
    "ReaderStatus",
    "ReaderInfo",
    "ReaderState",
    "Atr",
    "CardInserted",
    "CardRemovedEvent",
    "CardSwiped",
    "ContactlessCard",
    "Led",
    "ReaderEvent",
    "CardReader",
    "parse_atr",
    "encode_response",
    "decode_response",
    "encode_info",
    "decode_info",
    "encode_state",
    "decode_state",
    "encode_swipe",
    "decode_swipe",
    "encode_led",
    "decode_led",
    "encode_buzzer",
    "decode_buzzer",
    "encode_cl_poll",
    "decode_cl_poll",
    "encode_cl_card",
    "decode_cl_card",
]

log = logging.getLogger(__name__)


class ReaderCmd(IntEnum):
    GET_INFO = 0x01
    GET_STATUS = 0x02
    POWER_ON = 0x10
    POWER_OFF = 0x11
    TRANSMIT = 0x12  # to the powered contact card, or to the activated contactless card
    LED = 0x13
    BUZZER = 0x14
    MAG_READ = 0x20
    CL_POLL = 0x30
    CL_ACTIVATE = 0x31
    CL_REMOVE = 0x32


class Led(IntFlag):
    BLUE = 0x01
    YELLOW = 0x02
    GREEN = 0x04
    RED = 0x08


class ReaderEventCode(IntEnum):
    CARD_INSERTED = 0x40
    CARD_REMOVED = 0x41
    CARD_SWIPED = 0x42


class ReaderStatus(IntEnum):
    OK = 0x00
    NO_CARD = 0x01
    CARD_MUTE = 0x02
    NOT_POWERED = 0x03
    UNKNOWN_COMMAND = 0x04
    BAD_REQUEST = 0x05
    BUSY = 0x06
    NO_DATA = 0x08


# Response status -> (exception, message for the cashier's log). A status outside the table is a DeviceError.
STATUS_ERRORS: dict[int, tuple[type[DeviceError], str]] = {
    ReaderStatus.NO_CARD: (CardRemoved, "no card in the reader"),
    ReaderStatus.CARD_MUTE: (DeviceError, "the card did not answer to reset"),
    ReaderStatus.NOT_POWERED: (DeviceError, "the card is not powered"),
    ReaderStatus.UNKNOWN_COMMAND: (DeviceError, "the reader does not know this command"),
    ReaderStatus.BAD_REQUEST: (DeviceError, "the reader rejected the request"),
    ReaderStatus.BUSY: (DeviceError, "the reader is busy"),
    ReaderStatus.NO_DATA: (DeviceError, "nothing to read"),
}

_INFO = Struct(
    "model" / PascalString(Int8ub, "ascii"),
    "firmware" / PascalString(Int8ub, "ascii"),
    "serial" / PascalString(Int8ub, "ascii"),
)
_STATE = Struct("flags" / FlagsEnum(Int8ub, card_present=0x01, powered=0x02))
_SWIPE = Struct("track1" / Prefixed(Int8ub, GreedyBytes), "track2" / Prefixed(Int8ub, GreedyBytes),
                "track3" / Prefixed(Int8ub, GreedyBytes))
_LED = Struct("leds" / Int8ub, "on" / Int8ub)
_BUZZER = Struct("duration_ms" / Int16ub)
_CL_POLL = Struct("timeout_ms" / Int16ub)
_CL_CARD = Struct("type" / PascalString(Int8ub, "ascii"), "uid" / Prefixed(Int8ub, GreedyBytes))
_TS = {0x3B: "direct", 0x3F: "inverse"}
HEARTBEAT_S = 1.0  # while waiting for a card: a reader that stopped answering is reported, not waited on
_MAX_ATR = 33


@dataclass(frozen=True)
class ReaderInfo:
    model: str
    firmware: str
    serial: str


@dataclass(frozen=True)
class ReaderState:
    card_present: bool
    powered: bool


@dataclass(frozen=True)
class Atr:
    """An Answer-To-Reset. ``protocols``: the offered transmission protocols, the default one first."""

    raw: bytes
    convention: str
    protocols: tuple[int, ...]
    historical: bytes

    @property
    def protocol(self) -> int:
        return self.protocols[0]


@dataclass(frozen=True)
class CardInserted:
    pass


@dataclass(frozen=True)
class CardRemovedEvent:
    pass


@dataclass(frozen=True)
class CardSwiped:
    """Magnetic stripe tracks as read. Kept out of ``repr`` (and so out of logs); ``stripe()`` parses them."""

    track1: bytes = field(repr=False)
    track2: bytes = field(repr=False)
    track3: bytes = field(default=b"", repr=False)

    def stripe(self) -> Stripe:
        """PAN, expiry, service code. Raises RemoteProtocolError for an unreadable track 2."""
        return parse_tracks(track2=self.track2, track1=self.track1)


@dataclass(frozen=True)
class ContactlessCard:
    """A card in the contactless field: ``type`` "A" or "B" (ISO/IEC 14443) and its UID / PUPI."""

    type: str
    uid: bytes


ReaderEvent = CardInserted | CardRemovedEvent | CardSwiped


# --- payload codecs (both ends) -----------------------------------------------------------------------------


def encode_response(status: int, payload: bytes = b"") -> bytes:
    """A response's DATA after the echoed SEQ: STATUS then payload."""
    return bytes([status]) + payload


def decode_response(data: bytes) -> tuple[int, bytes]:
    if not data:
        raise RemoteProtocolError("response without a status byte", offset=0, raw=b"")
    return data[0], data[1:]


def encode_info(info: ReaderInfo) -> bytes:
    return _INFO.build({"model": info.model, "firmware": info.firmware, "serial": info.serial})


def decode_info(payload: bytes) -> ReaderInfo:
    parsed = _parse(_INFO, payload, "reader info")
    return ReaderInfo(model=parsed.model, firmware=parsed.firmware, serial=parsed.serial)


def encode_state(state: ReaderState) -> bytes:
    return _STATE.build({"flags": {"card_present": state.card_present, "powered": state.powered}})


def decode_state(payload: bytes) -> ReaderState:
    flags = _parse(_STATE, payload, "reader status").flags
    return ReaderState(card_present=bool(flags.card_present), powered=bool(flags.powered))


def encode_swipe(swipe: CardSwiped) -> bytes:
    return _SWIPE.build({"track1": swipe.track1, "track2": swipe.track2, "track3": swipe.track3})


def decode_swipe(payload: bytes) -> CardSwiped:
    parsed = _parse(_SWIPE, payload, "swipe")
    return CardSwiped(track1=bytes(parsed.track1), track2=bytes(parsed.track2), track3=bytes(parsed.track3))


def encode_led(leds: Led, on: bool) -> bytes:
    return _LED.build({"leds": int(leds), "on": int(on)})


def decode_led(payload: bytes) -> tuple[Led, bool]:
    parsed = _parse(_LED, payload, "LED request")
    return Led(parsed.leds & 0x0F), bool(parsed.on)


def encode_buzzer(duration_ms: int) -> bytes:
    return _BUZZER.build({"duration_ms": duration_ms})


def decode_buzzer(payload: bytes) -> int:
    return int(_parse(_BUZZER, payload, "buzzer request").duration_ms)


def encode_cl_poll(timeout_ms: int) -> bytes:
    return _CL_POLL.build({"timeout_ms": timeout_ms})


def decode_cl_poll(payload: bytes) -> int:
    return int(_parse(_CL_POLL, payload, "contactless poll").timeout_ms)


def encode_cl_card(card: ContactlessCard) -> bytes:
    return _CL_CARD.build({"type": card.type, "uid": card.uid})


def decode_cl_card(payload: bytes) -> ContactlessCard:
    parsed = _parse(_CL_CARD, payload, "contactless card")
    return ContactlessCard(type=parsed.type, uid=bytes(parsed.uid))


def parse_atr(raw: bytes) -> Atr:
    """Parse an ATR (ISO/IEC 7816-3 §8.2): TS, T0, interface bytes TAi..TDi, historical bytes, TCK.

    Raises:
        RemoteProtocolError: bad TS, truncated or overlong ATR, or a TCK that does not check (``offset`` set).
    """
    raw = bytes(raw)
    if not 2 <= len(raw) <= _MAX_ATR or raw[0] not in _TS:
        raise RemoteProtocolError("not an ATR (TS must be 3B or 3F, 2..33 bytes)", offset=0, raw=raw)
    indicator, pos, offered = raw[1] >> 4, 2, []
    while True:
        pos += bin(indicator & 0x7).count("1")  # TAi, TBi, TCi present
        if not indicator & 0x8:
            break
        if pos >= len(raw):
            raise RemoteProtocolError("ATR ends inside its interface bytes", offset=len(raw), raw=raw)
        offered.append(raw[pos] & 0x0F)
        indicator, pos = raw[pos] >> 4, pos + 1
    pos += raw[1] & 0x0F  # historical bytes
    needs_tck = any(protocol != 0 for protocol in offered)
    if pos + needs_tck != len(raw):
        raise RemoteProtocolError(f"ATR length {len(raw)} does not match its T0/TDi (expected "
                                  f"{pos + needs_tck})", offset=min(pos, len(raw)), raw=raw)
    if needs_tck and reduce(lambda acc, byte: acc ^ byte, raw[1:], 0):
        raise RemoteProtocolError("ATR check byte TCK is wrong", offset=len(raw) - 1, raw=raw)
    protocols = tuple(dict.fromkeys(p for p in offered if p != 15)) or (0,)  # T=15: global bytes only
    historical = raw[pos - (raw[1] & 0x0F):pos]
    return Atr(raw=raw, convention=_TS[raw[0]], protocols=protocols, historical=historical)


# --- the driver ---------------------------------------------------------------------------------------------


class CardReader:
    """``flows.ports.CardReaderPort`` on a serial card reader. Methods raise DeviceGone (port vanished or
    cannot be opened) or DeviceTimeout (no answer after the link's retries); a closed link reopens on use."""

    def __init__(self, url: str, *, baud: int = 115200, ack_timeout_s: float = 0.2, retries: int = 3,
                 response_timeout_s: float = 5.0) -> None:
        self._link = SerialLink(url, baud=baud, ack_timeout_s=ack_timeout_s, retries=retries,
                                on_event=self._on_link_event)
        self._response_timeout_s = response_timeout_s
        self._cond = threading.Condition()
        self._present = False
        self._insertions = 0  # counts insertions: a card swapped since power_on is a removed card
        self._powered_insertion: int | None = None
        self._listeners: list[Callable[[ReaderEvent], None]] = []
        self._swiped: CardSwiped | None = None  # the last swipe not yet taken
        self.atr: Atr | None = None

    def open(self) -> None:
        """Open the port and learn whether a card is already in. Raises DeviceGone, DeviceTimeout."""
        self._link.open()
        state = decode_state(self._call(ReaderCmd.GET_STATUS))
        with self._cond:  # a new link session: a card powered before it must be powered again
            self._present, self._powered_insertion = state.card_present, None
            self._cond.notify_all()

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> CardReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, callback: Callable[[ReaderEvent], None]) -> None:
        """Call ``callback(event)`` for every reader event, on the link's reader thread (keep it short)."""
        self._listeners.append(callback)

    def info(self) -> ReaderInfo:
        return decode_info(self._call(ReaderCmd.GET_INFO))

    def status(self) -> ReaderState:
        return decode_state(self._call(ReaderCmd.GET_STATUS))

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

    def card_present(self) -> bool:
        """What the reader last said; False while the link is down (an unplugged reader has no card)."""
        return self._present and self._link.is_open

    def power_on(self) -> bytes:
        """Activate the card; returns the ATR (parsed into ``self.atr``). Raises CardRemoved, DeviceError."""
        with self._cond:
            insertion = self._insertions
        raw = self._call(ReaderCmd.POWER_ON)
        try:
            self.atr = parse_atr(raw)
        except RemoteProtocolError as exc:
            raise DeviceError(f"the card answered a malformed ATR: {exc}") from exc
        self._powered_insertion = insertion
        return raw

    def transmit(self, apdu: bytes) -> bytes:
        """One C-APDU -> R-APDU (with SW1 SW2). Raises CardRemoved if the powered card left the reader."""
        with self._cond:
            if not self._present or self._powered_insertion != self._insertions:
                raise CardRemoved("the card was removed")
        rapdu = self._call(ReaderCmd.TRANSMIT, apdu)
        if len(rapdu) < 2:
            raise RemoteProtocolError("R-APDU shorter than SW1 SW2", offset=len(rapdu), raw=rapdu)
        return rapdu

    def power_off(self) -> None:
        self._powered_insertion = None
        self._call(ReaderCmd.POWER_OFF)

    # --- the rest of the command set ---

    def led(self, leds: Led, on: bool = True) -> None:
        self._call(ReaderCmd.LED, encode_led(leds, on))

    def beep(self, duration_ms: int = 100) -> None:
        if not 0 < duration_ms <= 5000:
            raise ValueError("a beep lasts 1..5000 ms")
        self._call(ReaderCmd.BUZZER, encode_buzzer(duration_ms))

    def read_stripe(self) -> CardSwiped | None:
        """The tracks of the last swipe not yet read (the reader forgets them once read), or None."""
        status, payload = self._request(ReaderCmd.MAG_READ)
        return None if status == ReaderStatus.NO_DATA else decode_swipe(self._check(ReaderCmd.MAG_READ, status,
                                                                                   payload))

    def poll_contactless(self, timeout_ms: int = 500) -> ContactlessCard | None:
        """Switch the field on and look for a card for up to ``timeout_ms``; None when nothing answered."""
        status, payload = self._request(ReaderCmd.CL_POLL, encode_cl_poll(timeout_ms), extra_s=timeout_ms / 1000)
        if status == ReaderStatus.NO_CARD:
            return None
        return decode_cl_card(self._check(ReaderCmd.CL_POLL, status, payload))

    def activate_contactless(self) -> bytes:
        """Activate the polled card (RATS); returns its ATS. ``transmit`` then reaches it."""
        ats = self._call(ReaderCmd.CL_ACTIVATE)
        with self._cond:
            self._powered_insertion, self._present = self._insertions, True
        return ats

    def remove_contactless(self, timeout_s: float = 10.0) -> bool:
        """Deactivate the card and wait for it to leave the field (EMV contactless "card removal"): the
        reader answers BUSY while a card is still there. True once gone, False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        self._card_gone()
        while True:
            status, payload = self._request(ReaderCmd.CL_REMOVE)
            if status != ReaderStatus.BUSY:
                self._check(ReaderCmd.CL_REMOVE, status, payload)
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def wait_for_removal(self, timeout_s: float) -> bool:
        return self._wait(lambda: not self._present, timeout_s, None)

    # --- internals ---

    def _request(self, cmd: ReaderCmd, data: bytes = b"", extra_s: float = 0.0) -> tuple[int, bytes]:
        if not self._link.is_open:
            self.open()  # reopen after an unplug (or a reader absent at start); DeviceGone if still away
        return decode_response(self._link.request(cmd, data, self._response_timeout_s + extra_s).data)

    def _call(self, cmd: ReaderCmd, data: bytes = b"") -> bytes:
        return self._check(cmd, *self._request(cmd, data))

    def _check(self, cmd: ReaderCmd, status: int, payload: bytes) -> bytes:
        if status == ReaderStatus.OK:
            return payload
        error, message = STATUS_ERRORS.get(status, (DeviceError, f"reader status 0x{status:02X}"))
        if error is CardRemoved:
            self._card_gone()
        raise error(f"{cmd.name}: {message}")

    def _wait(self, done: Callable[[], bool], timeout_s: float, cancel: CancelToken | None) -> bool:
        if not self._link.is_open:
            self.open()
        deadline = time.monotonic() + timeout_s
        next_poll = time.monotonic() + HEARTBEAT_S
        while True:
            with self._cond:
                if done():
                    return True
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("wait for card cancelled")
                if not self._link.is_open:
                    raise DeviceGone(f"card reader {self._link.url} is not connected")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(0.05, remaining))  # short steps: the cancel token and the port are polled
            if time.monotonic() >= next_poll:  # outside the lock: the reader thread needs it for events
                self._call(ReaderCmd.GET_STATUS)  # DeviceTimeout if the reader stopped answering
                next_poll = time.monotonic() + HEARTBEAT_S

    def _card_gone(self) -> None:
        with self._cond:
            self._present = False
            self._cond.notify_all()

    def _on_link_event(self, event: Event) -> None:
        reader_event: ReaderEvent | None = None
        if isinstance(event, PeerReset):  # the reader restarted: it re-announces a card that is still in
            self._card_gone()
        elif isinstance(event, FrameReceived) and event.cmd == ReaderEventCode.CARD_INSERTED:
            with self._cond:
                self._present, self._insertions = True, self._insertions + 1
                self._cond.notify_all()
            reader_event = CardInserted()
        elif isinstance(event, FrameReceived) and event.cmd == ReaderEventCode.CARD_REMOVED:
            self._card_gone()
            reader_event = CardRemovedEvent()
        elif isinstance(event, FrameReceived) and event.cmd == ReaderEventCode.CARD_SWIPED:
            try:
                swipe = decode_swipe(event.data)
            except RemoteProtocolError:
                log.warning("malformed swipe event dropped (%d bytes)", len(event.data))
            else:
                with self._cond:
                    self._swiped = reader_event = swipe
                    self._cond.notify_all()
        else:
            log.debug("unknown reader event 0x%02X", getattr(event, "cmd", 0))
        if reader_event is not None:
            self._notify(reader_event)

    def _notify(self, reader_event: ReaderEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(reader_event)
            except Exception:  # one faulty listener must not starve the others
                log.exception("card reader listener failed")


def _parse(struct: Struct, payload: bytes, what: str) -> Any:
    try:
        return struct.parse(payload)
    except (ConstructError, UnicodeDecodeError) as exc:  # no raw bytes in the error: tracks, PANs
        raise RemoteProtocolError(f"malformed {what}: {exc}", offset=len(payload)) from exc
