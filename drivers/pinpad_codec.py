"""PIN pad command set: commands, statuses, entry outcomes and payload codecs. Pure: no I/O.

Both ends of the wire use it: the terminal's ``drivers.pinpad.PinPad`` and the simulated pad
``sim.devices.pinpad``. GET_ONLINE_PIN is answered at once (the pad opened an entry session); the outcome
comes later as an unsolicited PIN_RESULT frame carrying the session number, the entry status, the PIN block
format, the KSN and the encrypted PIN block. The PAN travels to the pad because ISO 9564 formats 0 and 4 bind
the block to it; it is never logged nor put in an error. See docs/protocols/pinpad.md.

Prompt control (PCI PTS POI): the pad owns its prompt table. DISPLAY carries a prompt id, an amount and a
currency, never text; NUMERIC_ENTRY, the only command whose digits come back in clear (NUMERIC_RESULT), takes
only a prompt id from ``NUMERIC_PROMPTS``, none of which asks for a PIN; PIN entry answers only with an
encrypted PIN block.

>>> decode_pin_result(encode_pin_result(7, EntryStatus.CANCELLED, 4, b"", b""))
(7, PinEntry(status='cancelled', ksn=None, block_format=4))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from construct import (
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32ub,
    PascalString,
    Prefixed,
    PrefixedArray,
    Struct,
    Terminated,
)

from drivers.link.payload import parse_payload
from flows.ports import NUMERIC_PROMPTS, OfflinePinRequest, OfflinePinResult, PadPrompt, PinEntry, PinStatus
from pos_errors import DeviceError, DeviceFault, LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_LINE",
    "RESULT_GRACE_S",
    "PinPadCmd",
    "PinPadEventCode",
    "PinPadStatus",
    "EntryStatus",
    "ENTRY_STATUS_NAMES",
    "SCHEME_CODES",
    "STATUS_ERRORS",
    "KeyStatus",
    "KeyLoad",
    "encode_key_load",
    "WorkingKeyLoad",
    "MacRequest",
    "encode_mac_request",
    "decode_mac_request",
    "encode_working_key",
    "decode_working_key",
    "decode_key_load",
    "decode_key_loaded",
    "encode_display",
    "decode_display",
    "encode_numeric_request",
    "decode_numeric_request",
    "encode_numeric_result",
    "decode_numeric_result",
    "encode_pin_request",
    "decode_pin_request",
    "encode_pin_result",
    "decode_pin_result",
    "encode_key_status",
    "decode_key_status",
    "encode_offline_pin_request",
    "decode_offline_pin_request",
    "encode_offline_pin_result",
    "decode_offline_pin_result",
    "encode_choose",
    "decode_choose",
    "encode_choice_result",
    "decode_choice_result",
]

MAX_LINE = 32  # characters per CHOOSE label; longer text is cut, as a real pad's LCD would
MAX_NUMBER = 20  # digits of one NUMERIC_ENTRY (an ICCID has 19 or 20)
RESULT_GRACE_S = 2.0  # beyond the entry timeout, how long the terminal waits for the pad's own verdict


class PinPadCmd(IntEnum):
    DISPLAY = 0x20
    GET_ONLINE_PIN = 0x21
    ABORT = 0x22
    KEY_STATUS = 0x23
    VERIFY_OFFLINE_PIN = 0x24  # EMV offline PIN: the pad itself sends VERIFY to the card (docs/emv.md)
    CHOOSE = 0x25  # the customer picks one of a few numbered labels (EMV application selection)
    LOAD_KEY = 0x26  # technician: install a new initial DUKPT key, sent as a TR-31 key block
    NUMERIC_ENTRY = 0x27  # the customer keys a number (not a PIN) under one of the pad's NUMERIC_PROMPTS
    LOAD_WORKING_KEY = 0x28  # master/session: the sign-on PIK, enciphered under the TMK the pad holds, + KCV
    GET_ONLINE_PIN_WK = 0x29  # as GET_ONLINE_PIN, the block ISO 9564 format 0 under that PIK (no KSN)
    DUKPT_MAC = 0x2A  # a message MAC under the MAC key of a DUKPT transaction key (request) or its check (answer)


class PinPadEventCode(IntEnum):
    PIN_RESULT = 0x50
    OFFLINE_PIN_RESULT = 0x51
    CHOICE_RESULT = 0x52
    NUMERIC_RESULT = 0x53


class PinPadStatus(IntEnum):
    OK = 0x00
    UNKNOWN_COMMAND = 0x04
    BAD_REQUEST = 0x05
    BUSY = 0x06
    NO_KEY = 0x07
    KCV_MISMATCH = 0x09
    PROMPT_REFUSED = 0x0A  # not one of the pad's prompts (free text, unknown id, a PIN prompt for clear digits)
    KSN_REPLAY = 0x0B  # LOAD_KEY: the key's initial KSN is lower than the pad's current one (a replayed load)
    KEY_BLOCK_REFUSED = 0x0C  # LOAD_KEY: the TR-31 block does not verify, or is not an initial DUKPT key


class EntryStatus(IntEnum):
    ENTERED = 0x00
    CANCELLED = 0x01
    TIMEOUT = 0x02
    BYPASSED = 0x03
    FAILED = 0x7F  # the pad could not encrypt (keys exhausted): the terminal raises DeviceError


ENTRY_STATUS_NAMES: dict[int, PinStatus] = {
    EntryStatus.ENTERED: "entered",
    EntryStatus.CANCELLED: "cancelled",
    EntryStatus.TIMEOUT: "timeout",
    EntryStatus.BYPASSED: "bypassed",
}
SCHEME_CODES: dict[int, str] = {0x01: "tdes", 0x02: "aes"}
# Response status -> (exception, fault code, message for the log). A status outside the table is a DeviceError.
STATUS_ERRORS: dict[int, tuple[type[DeviceError], DeviceFault, str]] = {
    PinPadStatus.UNKNOWN_COMMAND: (DeviceError, DeviceFault.OTHER, "the PIN pad does not know this command"),
    PinPadStatus.BAD_REQUEST: (DeviceError, DeviceFault.OTHER, "the PIN pad rejected the request"),
    PinPadStatus.BUSY: (DeviceError, DeviceFault.OTHER, "the PIN pad is busy with another PIN entry"),
    PinPadStatus.NO_KEY: (DeviceError, DeviceFault.OTHER, "the PIN pad has no usable key"),
    PinPadStatus.KCV_MISMATCH: (DeviceError, DeviceFault.OTHER,
                                "the key check value does not match: the key was NOT loaded"),
    PinPadStatus.PROMPT_REFUSED: (DeviceError, DeviceFault.OTHER,
                                  "the PIN pad refused the prompt: it shows only its own prompt table"),
    PinPadStatus.KSN_REPLAY: (DeviceError, DeviceFault.OTHER, "the key's KSN is lower than the PIN pad's current "
                              "KSN (a replayed key load): the key was NOT loaded"),
    PinPadStatus.KEY_BLOCK_REFUSED: (DeviceError, DeviceFault.OTHER, "the PIN pad refused the key block (its MAC "
                                     "does not verify, or it is not an initial DUKPT key): the key was NOT loaded"),
}

_DISPLAY = Struct("prompt" / Int8ub, "amount" / Int32ub, "currency" / Int16ub, Terminated)
_NUMERIC_REQUEST = Struct("prompt" / Int8ub, "min" / Int8ub, "max" / Int8ub, "timeout_ms" / Int32ub, Terminated)
_NUMERIC_RESULT = Struct("session" / Int8ub, "status" / Int8ub, "digits" / PascalString(Int8ub, "ascii"),
                         Terminated)
_PIN_REQUEST = Struct("pan" / PascalString(Int8ub, "ascii"), "amount" / Int32ub, "timeout_ms" / Int32ub)
_PIN_RESULT = Struct("session" / Int8ub, "status" / Int8ub, "format" / Int8ub,
                     "ksn" / Prefixed(Int8ub, GreedyBytes), "pin_block" / Prefixed(Int8ub, GreedyBytes))
_LOAD_KEY = Struct("key_block" / PascalString(Int16ub, "ascii"), "kcv" / Prefixed(Int8ub, GreedyBytes), Terminated)
_MAC_REQUEST = Struct("verify" / Int8ub, "ksn" / Prefixed(Int8ub, GreedyBytes),
                      "data" / Prefixed(Int16ub, GreedyBytes), "mac" / Prefixed(Int8ub, GreedyBytes), Terminated)
_WORKING_KEY = Struct("key" / Prefixed(Int8ub, GreedyBytes), "kcv" / Prefixed(Int8ub, GreedyBytes), Terminated)
_OFFLINE_REQUEST = Struct("enciphered" / Int8ub, "amount" / Int32ub, "timeout_ms" / Int32ub, "tries" / Int8ub,
                          "modulus" / Prefixed(Int8ub, GreedyBytes), "exponent" / Prefixed(Int8ub, GreedyBytes),
                          "challenge" / Prefixed(Int8ub, GreedyBytes))
_OFFLINE_RESULT = Struct("session" / Int8ub, "status" / Int8ub, "sw" / Int16ub)
_CHOOSE = Struct("timeout_ms" / Int32ub, "labels" / PrefixedArray(Int8ub, PascalString(Int8ub, "utf8")))
_CHOICE_RESULT = Struct("session" / Int8ub, "status" / Int8ub, "index" / Int8ub)
_KEY_STATUS = Struct("scheme" / Int8ub, "ksn" / Prefixed(Int8ub, GreedyBytes), "remaining" / Int32ub)


@dataclass(frozen=True)
class KeyStatus:
    scheme: str
    ksn: bytes | None
    remaining: int


def encode_display(prompt: PadPrompt, amount_minor: int = 0, currency: int = 156) -> bytes:
    """DISPLAY: a display-only prompt of the pad's table. LocalProtocolError for a numeric-entry prompt or an
    amount / currency out of range."""
    if not isinstance(prompt, PadPrompt) or prompt in NUMERIC_PROMPTS:
        raise LocalProtocolError(f"prompt {prompt!r} is not a display prompt of the PIN pad")
    if not 0 <= amount_minor <= 0xFFFFFFFF or not 0 < currency <= 999:
        raise LocalProtocolError(f"amount {amount_minor} or currency {currency} out of range")
    return _DISPLAY.build({"prompt": prompt, "amount": amount_minor, "currency": currency})


def decode_display(payload: bytes) -> tuple[int, int, int]:
    """(prompt id, amount, ISO 4217 numeric currency): the id is checked against the table by the pad.
    RemoteProtocolError for anything else, such as the two lines of free text of the old DISPLAY."""
    parsed = parse_payload(_DISPLAY, payload, "display request")
    return parsed.prompt, parsed.amount, parsed.currency


def encode_numeric_request(prompt: PadPrompt, min_digits: int, max_digits: int, timeout_s: float) -> bytes:
    """NUMERIC_ENTRY under one of ``NUMERIC_PROMPTS``; LocalProtocolError for any other prompt or bad limits."""
    if prompt not in NUMERIC_PROMPTS:
        raise LocalProtocolError(f"prompt {prompt!r} is not a numeric-entry prompt of the PIN pad")
    if not 1 <= min_digits <= max_digits <= MAX_NUMBER or not 0 < timeout_s <= 3600:
        raise LocalProtocolError(f"digits {min_digits}..{max_digits} or timeout {timeout_s} s out of range")
    return _NUMERIC_REQUEST.build({"prompt": prompt, "min": min_digits, "max": max_digits,
                                   "timeout_ms": round(timeout_s * 1000)})


def decode_numeric_request(payload: bytes) -> tuple[int, int, int, float]:
    """(prompt id, min digits, max digits, timeout in seconds); the pad checks the id and the limits."""
    p = parse_payload(_NUMERIC_REQUEST, payload, "numeric entry request")
    return p.prompt, p.min, p.max, p.timeout_ms / 1000


def encode_numeric_result(session: int, status: int, digits: str) -> bytes:
    return _NUMERIC_RESULT.build({"session": session, "status": status, "digits": digits})


def decode_numeric_result(payload: bytes) -> tuple[int, str]:
    """(session, the digits keyed); "" when cancelled or timed out. RemoteProtocolError for non-digits."""
    p = parse_payload(_NUMERIC_RESULT, payload, "numeric entry result")
    if p.status != EntryStatus.ENTERED:
        return p.session, ""
    if not (p.digits.isdigit() and len(p.digits) <= MAX_NUMBER):
        raise RemoteProtocolError("numeric entry result holds something else than 1..20 digits", offset=3)
    return p.session, p.digits


def encode_pin_request(pan: str, amount_minor: int, timeout_s: float) -> bytes:
    """Raises LocalProtocolError for a PAN that is not 12..19 digits, or an amount or timeout out of range."""
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise LocalProtocolError("the PAN must be 12 to 19 digits")  # never echo the PAN itself
    if not 0 <= amount_minor <= 0xFFFFFFFF or not 0 < timeout_s <= 3600:
        raise LocalProtocolError(f"amount {amount_minor} or timeout {timeout_s} s out of range")
    return _PIN_REQUEST.build({"pan": pan, "amount": amount_minor, "timeout_ms": round(timeout_s * 1000)})


def decode_pin_request(payload: bytes) -> tuple[str, int, float]:
    """(PAN, amount in minor units, timeout in seconds)."""
    parsed = parse_payload(_PIN_REQUEST, payload, "PIN request")
    return parsed.pan, parsed.amount, parsed.timeout_ms / 1000


def encode_pin_result(session: int, status: int, block_format: int, ksn: bytes, pin_block: bytes) -> bytes:
    return _PIN_RESULT.build({"session": session, "status": status, "format": block_format, "ksn": ksn,
                              "pin_block": pin_block})


def decode_pin_result(payload: bytes) -> tuple[int, PinEntry | DeviceError]:
    """(session, outcome): a ``PinEntry``, or the DeviceError to raise when the pad could not encrypt."""
    parsed = parse_payload(_PIN_RESULT, payload, "PIN result")
    name = ENTRY_STATUS_NAMES.get(parsed.status)
    if name is None:
        return parsed.session, DeviceError(f"the PIN pad could not make a PIN block (0x{parsed.status:02X})",
                                           fault=DeviceFault.OTHER)
    if name == "entered" and not parsed.pin_block:  # the KSN is empty for a block under a working key (PIK)
        raise RemoteProtocolError("PIN entered but no PIN block", offset=3)
    entry = PinEntry(status=name, pin_block=bytes(parsed.pin_block) or None,
                     ksn=bytes(parsed.ksn) or None, block_format=parsed.format)
    return parsed.session, entry


@dataclass(frozen=True)
class KeyLoad:
    """A new initial DUKPT key for the pad as a TR-31 key block (``emv.crypto.tr31``): key usage B1, version D
    (AES, IK optional block) or B (TDES, KS optional block), wrapped under the pad's key block protection key.
    ``kcv``: the check value the key custodian's form gives (3 bytes), or empty to rely on the block's KC block."""

    key_block: str
    kcv: bytes = b""


def encode_key_load(load: KeyLoad) -> bytes:
    """LocalProtocolError for a key block that is not printable ASCII or too long, or a KCV not of 0 or 3 bytes."""
    if not (load.key_block.isascii() and load.key_block.isprintable() and 16 <= len(load.key_block) <= 9999):
        raise LocalProtocolError("a TR-31 key block is 16..9999 printable ASCII characters")
    if len(load.kcv) not in (0, 3):
        raise LocalProtocolError("the key check value is 3 bytes")
    return _LOAD_KEY.build({"key_block": load.key_block, "kcv": load.kcv})


def decode_key_load(payload: bytes) -> KeyLoad:
    parsed = parse_payload(_LOAD_KEY, payload, "key load")
    if len(parsed.kcv) not in (0, 3):
        raise RemoteProtocolError("the key check value is 3 bytes", offset=len(payload) - len(parsed.kcv))
    return KeyLoad(parsed.key_block, bytes(parsed.kcv))


def decode_key_loaded(payload: bytes) -> bytes:
    """The LOAD_KEY answer: the check value of the key the pad now holds (3 bytes)."""
    if len(payload) != 3:
        raise RemoteProtocolError("the LOAD_KEY answer is the 3-byte check value", offset=0)
    return payload


@dataclass(frozen=True)
class WorkingKeyLoad:
    """LOAD_WORKING_KEY: the PIK of a sign-on as the host sent it — a double-length TDES key enciphered
    (TDES-ECB) under the terminal master key the pad holds — and its 4-byte check value, which the pad checks
    after deciphering. Nothing in clear."""

    key_under_tmk: bytes = field(repr=False)
    kcv: bytes


def encode_working_key(load: WorkingKeyLoad) -> bytes:
    """LocalProtocolError unless the key is 16 bytes and the check value 4."""
    if len(load.key_under_tmk) != 16 or len(load.kcv) != 4:
        raise LocalProtocolError("a working key is 16 enciphered bytes with a 4-byte check value")
    return _WORKING_KEY.build({"key": load.key_under_tmk, "kcv": load.kcv})


def decode_working_key(payload: bytes) -> WorkingKeyLoad:
    parsed = parse_payload(_WORKING_KEY, payload, "working key")
    if len(parsed.key) != 16 or len(parsed.kcv) != 4:
        raise RemoteProtocolError("a working key is 16 bytes with a 4-byte check value", offset=0)
    return WorkingKeyLoad(bytes(parsed.key), bytes(parsed.kcv))


@dataclass(frozen=True)
class MacRequest:
    """DUKPT_MAC: ``verify`` False — the MAC of ``data`` under the request MAC key of the transaction ``ksn``
    (the pad's next KSN, which it then uses up, or the one of the transaction it just served: a PIN block's);
    True — whether ``mac`` is the MAC of ``data`` under that transaction's response MAC key. The answer is the
    8-byte MAC, or one byte 01 (matches) / 00; NO_KEY when the pad holds no key for ``ksn``."""

    ksn: bytes
    data: bytes = field(repr=False)
    verify: bool = False
    mac: bytes = b""


def encode_mac_request(request: MacRequest) -> bytes:
    """LocalProtocolError for a KSN that is not 10 or 12 bytes, data above 4096 bytes or a MAC not of 8."""
    if len(request.ksn) not in (10, 12) or len(request.data) > 4096 or len(request.mac) != (8 if request.verify
                                                                                          else 0):
        raise LocalProtocolError("a DUKPT MAC request is a 10/12-byte KSN, at most 4096 bytes, and 8 to verify")
    return _MAC_REQUEST.build({"verify": int(request.verify), "ksn": request.ksn, "data": request.data,
                               "mac": request.mac})


def decode_mac_request(payload: bytes) -> MacRequest:
    parsed = parse_payload(_MAC_REQUEST, payload, "MAC request")
    if parsed.verify not in (0, 1) or len(parsed.ksn) not in (10, 12) or len(parsed.mac) != 8 * parsed.verify:
        raise RemoteProtocolError("malformed DUKPT MAC request", offset=0)
    return MacRequest(bytes(parsed.ksn), bytes(parsed.data), bool(parsed.verify), bytes(parsed.mac))


def encode_offline_pin_request(request: OfflinePinRequest, timeout_s: float) -> bytes:
    return _OFFLINE_REQUEST.build({
        "enciphered": int(request.enciphered), "amount": request.amount_minor,
        "timeout_ms": round(timeout_s * 1000), "tries": 0xFF if request.tries_left is None else request.tries_left,
        "modulus": request.icc_modulus, "exponent": request.icc_exponent, "challenge": request.challenge})


def decode_offline_pin_request(payload: bytes) -> tuple[OfflinePinRequest, float]:
    p = parse_payload(_OFFLINE_REQUEST, payload, "offline PIN request")
    return OfflinePinRequest(bool(p.enciphered), p.amount, None if p.tries == 0xFF else p.tries, bytes(p.modulus),
                             bytes(p.exponent), bytes(p.challenge)), p.timeout_ms / 1000


def encode_offline_pin_result(session: int, status: int, sw: int) -> bytes:
    return _OFFLINE_RESULT.build({"session": session, "status": status, "sw": sw})


def decode_offline_pin_result(payload: bytes) -> tuple[int, OfflinePinResult]:
    p = parse_payload(_OFFLINE_RESULT, payload, "offline PIN result")
    name = ENTRY_STATUS_NAMES.get(p.status, "cancelled")
    return p.session, OfflinePinResult(name, p.sw if name == "entered" else None)


def encode_choose(labels: tuple[str, ...], timeout_s: float) -> bytes:
    return _CHOOSE.build({"timeout_ms": round(timeout_s * 1000), "labels": [lb[:MAX_LINE] for lb in labels]})


def decode_choose(payload: bytes) -> tuple[tuple[str, ...], float]:
    p = parse_payload(_CHOOSE, payload, "choose request")
    return tuple(p.labels), p.timeout_ms / 1000


def encode_choice_result(session: int, status: int, index: int) -> bytes:
    return _CHOICE_RESULT.build({"session": session, "status": status, "index": index})


def decode_choice_result(payload: bytes) -> tuple[int, int]:
    """(session, chosen index); -1 when the customer cancelled or the pad timed out."""
    p = parse_payload(_CHOICE_RESULT, payload, "choice result")
    return p.session, p.index if p.status == EntryStatus.ENTERED else -1


def encode_key_status(status: KeyStatus) -> bytes:
    code = {name: code for code, name in SCHEME_CODES.items()}[status.scheme]
    return _KEY_STATUS.build({"scheme": code, "ksn": status.ksn or b"", "remaining": status.remaining})


def decode_key_status(payload: bytes) -> KeyStatus:
    parsed = parse_payload(_KEY_STATUS, payload, "key status")
    scheme = SCHEME_CODES.get(parsed.scheme, f"unknown 0x{parsed.scheme:02X}")
    return KeyStatus(scheme=scheme, ksn=bytes(parsed.ksn) or None, remaining=parsed.remaining)
