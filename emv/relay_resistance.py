"""The relay resistance protocol of kernel 2 (EMV Contactless Book C-2 v2.x, "Relay Resistance Protocol"):
EXCHANGE RELAY RESISTANCE DATA with the timing checks, as a kernel step.

The card states how long it needs to answer (Min / Max Time For Processing Relay Resistance APDU, ``DF8303`` /
``DF8304``) and how long its answer takes on the air (``DF8305``); the *reader* measures the exchange (the
terminal's core has no clock: the APDU goes out as ``SendApdu(timed=True)`` and the answer comes back as a
``Timed`` with the microseconds the reader measured between the end of the C-APDU and the start of the R-APDU).
All times are in units of 100 µs::

    measured = max(0, elapsed - expected C-APDU time - min(card's R-APDU estimate, expected R-APDU time))
    measured < min time - min grace                  → End Application (the card answers faster than it can)
    measured > max time + max grace                  → retry, at most twice (RRP counter), then TVR byte 5 b3
                                                       "relay resistance time limits exceeded"
    measured - min time > accuracy threshold, or the two R-APDU estimates differ by more than the mismatch
    threshold (%)                                    → TVR byte 5 b4 "relay resistance threshold exceeded"
    done                                             → TVR byte 5 b2-b1 = 10 "RRP performed"

The terminal's settings are tags ``DF8132``–``DF8137`` in the terminal data; absent ones take ``DEFAULTS`` (the
values commonly configured for Mastercard test sets). The entropy is the Unpredictable Number ``9F37``; each
retry draws a fresh one from the injected ``random_bytes`` and it becomes ``9F37`` for the rest of the
transaction (without a random source — in-memory tests — the last byte is stepped instead).

>>> assess(RrpCard(b"\\0" * 4, 10, 50, 24), elapsed_us=4300).tvr_bits
2
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from emv import tlv
from emv.actions import SendApdu, Step
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["Timed", "RrpCard", "RrpResult", "DEFAULTS", "assess", "exchange", "parse_answer", "command",
           "TVR_PERFORMED", "TVR_NOT_PERFORMED", "TVR_TIME_LIMITS", "TVR_THRESHOLD", "MAX_RETRIES"]

# TVR byte 5 (Book C-2 Annex, TVR): b4 threshold exceeded, b3 time limits exceeded, b2-b1 RRP performed 10 / not 01
TVR_THRESHOLD, TVR_TIME_LIMITS, TVR_PERFORMED, TVR_NOT_PERFORMED = 0x08, 0x04, 0x02, 0x01
MAX_RETRIES = 2
DEFAULTS: Mapping[int, int] = {
    0xDF8132: 0x0014,  # Minimum Relay Resistance Grace Period (2 ms)
    0xDF8133: 0x0032,  # Maximum Relay Resistance Grace Period (5 ms)
    0xDF8134: 0x0012,  # Terminal Expected Transmission Time For Relay Resistance C-APDU (1.8 ms)
    0xDF8135: 0x0018,  # Terminal Expected Transmission Time For Relay Resistance R-APDU (2.4 ms)
    0xDF8136: 0x012C,  # Relay Resistance Accuracy Threshold (30 ms)
    0xDF8137: 0x32,  # Relay Resistance Transmission Time Mismatch Threshold (50 %)
}


@dataclass(frozen=True)
class Timed:
    """The answer to a ``SendApdu(timed=True)``: the R-APDU and what the reader measured (None: not measured)."""

    rapdu: bytes
    elapsed_us: int | None


@dataclass(frozen=True)
class RrpCard:
    """The card's EXCHANGE RELAY RESISTANCE DATA answer (format 1 template ``80``, 10 bytes)."""

    entropy: bytes  # Device Relay Resistance Entropy DF8302
    min_time: int  # DF8303, 100 µs
    max_time: int  # DF8304
    estimated_r_apdu: int  # DF8305


@dataclass(frozen=True)
class RrpResult:
    tvr_bits: int  # to OR into TVR byte 5
    measured: int | None  # Measured Relay Resistance Processing Time DF8306, 100 µs
    retry: bool = False
    end: str | None = None  # why the transaction ends (End Application), else None


def command(entropy: bytes) -> bytes:
    """EXCHANGE RELAY RESISTANCE DATA: 80 EA 00 00 04 <Terminal Relay Resistance Entropy> 00."""
    return bytes([0x80, 0xEA, 0x00, 0x00, 0x04]) + entropy + b"\x00"


def parse_answer(data: bytes) -> RrpCard:
    """The ``80`` template of the answer. Raises RemoteProtocolError for anything else."""
    objects = tlv.decode(data)
    if len(objects) != 1 or objects[0].tag != 0x80 or len(objects[0].value) != 10:
        raise RemoteProtocolError("EXCHANGE RELAY RESISTANCE DATA answer is not one 10-byte template 80",
                                  offset=0, tag="80")
    v = objects[0].value
    return RrpCard(v[:4], int.from_bytes(v[4:6], "big"), int.from_bytes(v[6:8], "big"),
                   int.from_bytes(v[8:10], "big"))


def _setting(terminal: Mapping[int, bytes], tag: int) -> int:
    value = terminal.get(tag)
    return int.from_bytes(value, "big") if value else DEFAULTS[tag]


def assess(card: RrpCard, *, elapsed_us: int | None, terminal: Mapping[int, bytes] | None = None,
           attempt: int = 0) -> RrpResult:
    """The timing checks of one exchange (Book C-2 relay resistance protocol)."""
    if elapsed_us is None:  # the reader could not measure: the protocol was not performed
        return RrpResult(TVR_NOT_PERFORMED, None)
    term = terminal or {}
    expected_c, expected_r = _setting(term, 0xDF8134), _setting(term, 0xDF8135)
    measured = max(0, elapsed_us // 100 - expected_c - min(card.estimated_r_apdu, expected_r))
    if measured < card.min_time - _setting(term, 0xDF8132):
        return RrpResult(0, measured, end=f"relay resistance: answered in {measured} (100 µs) under the card's "
                                          f"own minimum {card.min_time}")
    bits = TVR_PERFORMED
    if measured > card.max_time + _setting(term, 0xDF8133):
        if attempt < MAX_RETRIES:
            return RrpResult(0, measured, retry=True)
        bits |= TVR_TIME_LIMITS
    mismatch = _setting(term, 0xDF8137)
    estimates = (card.estimated_r_apdu, expected_r)
    if measured - card.min_time > _setting(term, 0xDF8136) or (
            all(estimates) and min(estimates) * 100 < mismatch * max(estimates)):
        bits |= TVR_THRESHOLD
    return RrpResult(bits, measured)


def exchange(terminal: dict[int, bytes],
             random_bytes: Callable[[int], bytes] | None = None) -> Step[RrpResult]:
    """Run the protocol (with its retries); sets ``9F37`` (a fresh one per retry), ``DF8301`` … ``DF8306`` in
    ``terminal``. Raises RemoteProtocolError for a malformed or refused answer."""
    un = terminal.get(0x9F37, bytes(4))
    for attempt in range(MAX_RETRIES + 1):
        if attempt and random_bytes is not None:
            entropy = random_bytes(4)
        else:
            entropy = un[:-1] + bytes([(un[-1] + attempt) & 0xFF])
        terminal[0x9F37] = entropy
        answer = yield SendApdu(command(entropy), "EXCHANGE RELAY RESISTANCE DATA", timed=True)
        if isinstance(answer, Timed):
            timed = answer
        elif isinstance(answer, bytes | bytearray):  # a caller that does not time: "RRP not performed"
            timed = Timed(bytes(answer), None)
        else:
            raise LocalProtocolError("the answer to a timed SendApdu must be a Timed or the R-APDU bytes")
        if len(timed.rapdu) < 2 or timed.rapdu[-2:] != b"\x90\x00":
            raise RemoteProtocolError(f"EXCHANGE RELAY RESISTANCE DATA answered {timed.rapdu[-2:].hex().upper()}",
                                      raw=timed.rapdu[-2:])
        card = parse_answer(timed.rapdu[:-2])
        result = assess(card, elapsed_us=timed.elapsed_us, terminal=terminal, attempt=attempt)
        terminal.update({0xDF8301: entropy, 0xDF8302: card.entropy, 0xDF8303: card.min_time.to_bytes(2, "big"),
                         0xDF8304: card.max_time.to_bytes(2, "big"),
                         0xDF8305: card.estimated_r_apdu.to_bytes(2, "big")})
        if result.measured is not None:
            terminal[0xDF8306] = result.measured.to_bytes(2, "big")
        if not result.retry:
            return result
    raise AssertionError("unreachable: the last attempt never retries")  # pragma: no cover
