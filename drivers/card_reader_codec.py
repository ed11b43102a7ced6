"""Card reader command set: commands, statuses, events, payload codecs and ATR parsing. Pure: no I/O.

Both ends of the wire use it: the terminal's ``drivers.card_reader.CardReader`` and the simulated reader
``sim.devices.reader``. The reader passes APDUs through, so the EMV kernel runs in the terminal. Commands,
responses and unsolicited events (CARD_INSERTED, CARD_REMOVED, CARD_SWIPED) are listed in
docs/protocols/card-reader.md. The ATR is parsed per ISO/IEC 7816-3 §8 to learn the offered protocols (T=0,
T=1). Track data from a swipe is never logged (kept out of ``repr`` and of error messages).

>>> parse_atr(bytes.fromhex("3B 80 80 01 01")).protocols
(0, 1)
>>> decode_state(encode_state(ReaderState(card_present=True, powered=False)))
ReaderState(card_present=True, powered=False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from functools import reduce

from construct import FlagsEnum, GreedyBytes, Int8ub, Int16ub, Int32ub, PascalString, Prefixed, Struct

from drivers.link.payload import decode_response, encode_response, parse_payload
from emv.tracks import Stripe, parse_tracks
from pos_errors import CardRemoved, DeviceError, DeviceFault, RemoteProtocolError

__all__ = [
    "HEARTBEAT_S",
    "STATUS_ERRORS",
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
    "encode_cl_collision",
    "decode_cl_collision",
    "encode_field_off",
    "encode_timed",
    "decode_timed",
    "decode_field_off",
]


class ReaderCmd(IntEnum):
    GET_INFO = 0x01
    GET_STATUS = 0x02
    POWER_ON = 0x10
    POWER_OFF = 0x11
    TRANSMIT = 0x12  # to the powered contact card, or to the activated contactless card
    LED = 0x13
    BUZZER = 0x14
    TRANSMIT_BATCH = 0x15  # 2..3 C-APDUs to the powered contact card, run in order (drivers.card_reader_batch)
    MAG_READ = 0x20
    CL_POLL = 0x30
    CL_ACTIVATE = 0x31
    CL_REMOVE = 0x32
    CL_TIMED_TRANSMIT = 0x34  # TRANSMIT to the contactless card, timed by the reader (relay resistance, Book C-2)
    CL_FIELD_OFF = 0x33  # RF field off for u16 ms (0 = until the next CL_POLL): EMV Book A §6.2.10 field off


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
    COLLISION = 0x09  # CL_POLL: more than one card answered (payload: u8 how many); EMV Book D collision


# Response status -> (exception, fault code, message for the log). A status outside the table is a DeviceError.
STATUS_ERRORS: dict[int, tuple[type[DeviceError], DeviceFault, str]] = {
    ReaderStatus.NO_CARD: (CardRemoved, DeviceFault.CARD_REMOVED, "no card in the reader"),
    ReaderStatus.CARD_MUTE: (DeviceError, DeviceFault.OTHER, "the card did not answer to reset"),
    ReaderStatus.NOT_POWERED: (DeviceError, DeviceFault.OTHER, "the card is not powered"),
    ReaderStatus.UNKNOWN_COMMAND: (DeviceError, DeviceFault.OTHER, "the reader does not know this command"),
    ReaderStatus.BAD_REQUEST: (DeviceError, DeviceFault.OTHER, "the reader rejected the request"),
    ReaderStatus.BUSY: (DeviceError, DeviceFault.OTHER, "the reader is busy"),
    ReaderStatus.NO_DATA: (DeviceError, DeviceFault.OTHER, "nothing to read"),
    ReaderStatus.COLLISION: (DeviceError, DeviceFault.OTHER, "more than one card in the field"),
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
_CL_COLLISION = Struct("cards" / Int8ub)
_FIELD_OFF = Struct("hold_ms" / Int16ub)
_TIMED = Struct("elapsed_us" / Int32ub, "rapdu" / GreedyBytes)
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


def encode_info(info: ReaderInfo) -> bytes:
    return _INFO.build({"model": info.model, "firmware": info.firmware, "serial": info.serial})


def decode_info(payload: bytes) -> ReaderInfo:
    parsed = parse_payload(_INFO, payload, "reader info")
    return ReaderInfo(model=parsed.model, firmware=parsed.firmware, serial=parsed.serial)


def encode_state(state: ReaderState) -> bytes:
    return _STATE.build({"flags": {"card_present": state.card_present, "powered": state.powered}})


def decode_state(payload: bytes) -> ReaderState:
    flags = parse_payload(_STATE, payload, "reader status").flags
    return ReaderState(card_present=bool(flags.card_present), powered=bool(flags.powered))


def encode_swipe(swipe: CardSwiped) -> bytes:
    return _SWIPE.build({"track1": swipe.track1, "track2": swipe.track2, "track3": swipe.track3})


def decode_swipe(payload: bytes) -> CardSwiped:
    parsed = parse_payload(_SWIPE, payload, "swipe")
    return CardSwiped(track1=bytes(parsed.track1), track2=bytes(parsed.track2), track3=bytes(parsed.track3))


def encode_led(leds: Led, on: bool) -> bytes:
    return _LED.build({"leds": int(leds), "on": int(on)})


def decode_led(payload: bytes) -> tuple[Led, bool]:
    parsed = parse_payload(_LED, payload, "LED request")
    return Led(parsed.leds & 0x0F), bool(parsed.on)


def encode_buzzer(duration_ms: int) -> bytes:
    return _BUZZER.build({"duration_ms": duration_ms})


def decode_buzzer(payload: bytes) -> int:
    return int(parse_payload(_BUZZER, payload, "buzzer request").duration_ms)


def encode_cl_poll(timeout_ms: int) -> bytes:
    return _CL_POLL.build({"timeout_ms": timeout_ms})


def decode_cl_poll(payload: bytes) -> int:
    return int(parse_payload(_CL_POLL, payload, "contactless poll").timeout_ms)


def encode_cl_card(card: ContactlessCard) -> bytes:
    return _CL_CARD.build({"type": card.type, "uid": card.uid})


def decode_cl_card(payload: bytes) -> ContactlessCard:
    parsed = parse_payload(_CL_CARD, payload, "contactless card")
    return ContactlessCard(type=parsed.type, uid=bytes(parsed.uid))


def encode_cl_collision(cards: int) -> bytes:
    return _CL_COLLISION.build({"cards": cards})


def decode_cl_collision(payload: bytes) -> int:
    """How many cards answered the poll (a collision payload saying fewer than two is malformed)."""
    cards = int(parse_payload(_CL_COLLISION, payload, "contactless collision").cards)
    if cards < 2:
        raise RemoteProtocolError(f"a collision of {cards} card(s)", offset=0, raw=payload)
    return cards


def encode_field_off(hold_ms: int) -> bytes:
    return _FIELD_OFF.build({"hold_ms": hold_ms})


def decode_field_off(payload: bytes) -> int:
    return int(parse_payload(_FIELD_OFF, payload, "field off").hold_ms)


def encode_timed(elapsed_us: int, rapdu: bytes) -> bytes:
    return _TIMED.build({"elapsed_us": elapsed_us, "rapdu": rapdu})


def decode_timed(payload: bytes) -> tuple[bytes, int]:
    """(R-APDU, µs the reader measured from the end of the C-APDU to the start of the R-APDU)."""
    parsed = parse_payload(_TIMED, payload, "timed R-APDU")
    if len(parsed.rapdu) < 2:
        raise RemoteProtocolError("timed R-APDU shorter than SW1 SW2", offset=len(payload))
    return bytes(parsed.rapdu), int(parsed.elapsed_us)


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
