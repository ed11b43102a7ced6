"""PIN pad driver: our PIN pad command set over ``drivers.link``, implementing ``flows.ports.PinPadPort``.

GET_ONLINE_PIN is answered at once (the pad accepted the request and opened an entry session); the outcome
comes later as an unsolicited PIN_RESULT frame carrying the session number, the entry status, the PIN block
format, the KSN and the encrypted PIN block. The clear PIN never leaves the pad. The PAN travels to the pad
because ISO 9564 formats 0 and 4 bind the block to it; it is never logged. See docs/protocols/pinpad.md.

>>> decode_pin_result(encode_pin_result(7, EntryStatus.CANCELLED, 4, b"", b""))
(7, PinEntry(status='cancelled', ksn=None, block_format=4))
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from construct import (
    Bytes,
    ConstructError,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32ub,
    PascalString,
    Prefixed,
    PrefixedArray,
    Struct,
)

from drivers.link import Event, FrameReceived, SerialLink
from flows.ports import OfflinePinRequest, OfflinePinResult, PinEntry, PinStatus
from pos_errors import DeviceError, DeviceGone, DeviceTimeout, LocalProtocolError, RemoteProtocolError

__all__ = [
    "PinPadCmd",
    "PinPadEventCode",
    "PinPadStatus",
    "EntryStatus",
    "ENTRY_STATUS_NAMES",
    "SCHEME_CODES",
    "KeyStatus",
    "KeyLoad",
    "encode_key_load",
    "decode_key_load",
    "PinPad",
    "encode_display",
    "decode_display",
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

log = logging.getLogger(__name__)

MAX_LINE = 32  # characters per display line; longer text is cut, as a real pad's LCD would
RESULT_GRACE_S = 2.0  # beyond the entry timeout, how long the terminal waits for the pad's own verdict


class PinPadCmd(IntEnum):
    DISPLAY = 0x20
    GET_ONLINE_PIN = 0x21
    ABORT = 0x22
    KEY_STATUS = 0x23
    VERIFY_OFFLINE_PIN = 0x24  # EMV offline PIN: the pad itself sends VERIFY to the card (docs/emv.md)
    CHOOSE = 0x25  # the customer picks one of a few numbered labels (EMV application selection)
    LOAD_KEY = 0x26  # technician: install a new initial DUKPT key, sent enciphered under the key-loading key


class PinPadEventCode(IntEnum):
    PIN_RESULT = 0x50
    OFFLINE_PIN_RESULT = 0x51
    CHOICE_RESULT = 0x52


class PinPadStatus(IntEnum):
    OK = 0x00
    UNKNOWN_COMMAND = 0x04
    BAD_REQUEST = 0x05
    BUSY = 0x06
    NO_KEY = 0x07
    KCV_MISMATCH = 0x09


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
STATUS_MESSAGES: dict[int, str] = {
    PinPadStatus.UNKNOWN_COMMAND: "the PIN pad does not know this command",
    PinPadStatus.BAD_REQUEST: "the PIN pad rejected the request",
    PinPadStatus.BUSY: "the PIN pad is busy with another PIN entry",
    PinPadStatus.NO_KEY: "the PIN pad has no usable key",
    PinPadStatus.KCV_MISMATCH: "the key check value does not match: the key was NOT loaded",
}

_DISPLAY = Struct("line1" / PascalString(Int8ub, "utf8"), "line2" / PascalString(Int8ub, "utf8"))
_PIN_REQUEST = Struct("pan" / PascalString(Int8ub, "ascii"), "amount" / Int32ub, "timeout_ms" / Int32ub)
_PIN_RESULT = Struct("session" / Int8ub, "status" / Int8ub, "format" / Int8ub,
                     "ksn" / Prefixed(Int8ub, GreedyBytes), "pin_block" / Prefixed(Int8ub, GreedyBytes))
_LOAD_KEY = Struct("scheme" / Int8ub, "enciphered_key" / Prefixed(Int8ub, GreedyBytes),
                  "ksn" / Prefixed(Int8ub, GreedyBytes), "kcv" / Bytes(3))
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


# --- payload codecs (both ends) -----------------------------------------------------------------------------


def encode_display(line1: str, line2: str) -> bytes:
    return _DISPLAY.build({"line1": line1[:MAX_LINE], "line2": line2[:MAX_LINE]})


def decode_display(payload: bytes) -> tuple[str, str]:
    parsed = _parse(_DISPLAY, payload, "display request")
    return parsed.line1, parsed.line2


def encode_pin_request(pan: str, amount_minor: int, timeout_s: float) -> bytes:
    """Raises LocalProtocolError for a PAN that is not 12..19 digits, or an amount or timeout out of range."""
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise LocalProtocolError("the PAN must be 12 to 19 digits")  # never echo the PAN itself
    if not 0 <= amount_minor <= 0xFFFFFFFF or not 0 < timeout_s <= 3600:
        raise LocalProtocolError(f"amount {amount_minor} or timeout {timeout_s} s out of range")
    return _PIN_REQUEST.build({"pan": pan, "amount": amount_minor, "timeout_ms": round(timeout_s * 1000)})


def decode_pin_request(payload: bytes) -> tuple[str, int, float]:
    """(PAN, amount in minor units, timeout in seconds)."""
    parsed = _parse(_PIN_REQUEST, payload, "PIN request")
    return parsed.pan, parsed.amount, parsed.timeout_ms / 1000


def encode_pin_result(session: int, status: int, block_format: int, ksn: bytes, pin_block: bytes) -> bytes:
    return _PIN_RESULT.build({"session": session, "status": status, "format": block_format, "ksn": ksn,
                              "pin_block": pin_block})


def decode_pin_result(payload: bytes) -> tuple[int, PinEntry | DeviceError]:
    """(session, outcome): a ``PinEntry``, or the DeviceError to raise when the pad could not encrypt."""
    parsed = _parse(_PIN_RESULT, payload, "PIN result")
    name = ENTRY_STATUS_NAMES.get(parsed.status)
    if name is None:
        return parsed.session, DeviceError(f"the PIN pad could not make a PIN block (0x{parsed.status:02X})")
    if name == "entered" and not (parsed.pin_block and parsed.ksn):
        raise RemoteProtocolError("PIN entered but no PIN block or KSN", offset=3)
    entry = PinEntry(status=name, pin_block=bytes(parsed.pin_block) or None,
                     ksn=bytes(parsed.ksn) or None, block_format=parsed.format)
    return parsed.session, entry


@dataclass(frozen=True)
class KeyLoad:
    """A new initial key for the pad: ``enciphered_key`` is the IK (aes) / IPEK (tdes) enciphered (ECB) under
    the pad's key-loading key; ``kcv`` is the clear key's 3-byte check value (``emv.crypto.pin``)."""

    scheme: str
    enciphered_key: bytes = field(repr=False)
    initial_ksn: bytes
    kcv: bytes


def encode_key_load(load: KeyLoad) -> bytes:
    codes = {name: code for code, name in SCHEME_CODES.items()}
    if load.scheme not in codes:
        raise LocalProtocolError(f"unknown key scheme {load.scheme!r}; use aes or tdes")
    return _LOAD_KEY.build({"scheme": codes[load.scheme], "enciphered_key": load.enciphered_key,
                            "ksn": load.initial_ksn, "kcv": load.kcv})


def decode_key_load(payload: bytes) -> KeyLoad:
    parsed = _parse(_LOAD_KEY, payload, "key load")
    if parsed.scheme not in SCHEME_CODES:
        raise RemoteProtocolError(f"unknown key scheme code {parsed.scheme}", offset=0)
    return KeyLoad(SCHEME_CODES[parsed.scheme], bytes(parsed.enciphered_key), bytes(parsed.ksn), bytes(parsed.kcv))


def encode_offline_pin_request(request: OfflinePinRequest, timeout_s: float) -> bytes:
    return _OFFLINE_REQUEST.build({
        "enciphered": int(request.enciphered), "amount": request.amount_minor,
        "timeout_ms": round(timeout_s * 1000), "tries": 0xFF if request.tries_left is None else request.tries_left,
        "modulus": request.icc_modulus, "exponent": request.icc_exponent, "challenge": request.challenge})


def decode_offline_pin_request(payload: bytes) -> tuple[OfflinePinRequest, float]:
    p = _parse(_OFFLINE_REQUEST, payload, "offline PIN request")
    return OfflinePinRequest(bool(p.enciphered), p.amount, None if p.tries == 0xFF else p.tries, bytes(p.modulus),
                             bytes(p.exponent), bytes(p.challenge)), p.timeout_ms / 1000


def encode_offline_pin_result(session: int, status: int, sw: int) -> bytes:
    return _OFFLINE_RESULT.build({"session": session, "status": status, "sw": sw})


def decode_offline_pin_result(payload: bytes) -> tuple[int, OfflinePinResult]:
    p = _parse(_OFFLINE_RESULT, payload, "offline PIN result")
    name = ENTRY_STATUS_NAMES.get(p.status, "cancelled")
    return p.session, OfflinePinResult(name, p.sw if name == "entered" else None)


def encode_choose(labels: tuple[str, ...], timeout_s: float) -> bytes:
    return _CHOOSE.build({"timeout_ms": round(timeout_s * 1000), "labels": [lb[:MAX_LINE] for lb in labels]})


def decode_choose(payload: bytes) -> tuple[tuple[str, ...], float]:
    p = _parse(_CHOOSE, payload, "choose request")
    return tuple(p.labels), p.timeout_ms / 1000


def encode_choice_result(session: int, status: int, index: int) -> bytes:
    return _CHOICE_RESULT.build({"session": session, "status": status, "index": index})


def decode_choice_result(payload: bytes) -> tuple[int, int]:
    """(session, chosen index); -1 when the customer cancelled or the pad timed out."""
    p = _parse(_CHOICE_RESULT, payload, "choice result")
    return p.session, p.index if p.status == EntryStatus.ENTERED else -1


def encode_key_status(status: KeyStatus) -> bytes:
    code = {name: code for code, name in SCHEME_CODES.items()}[status.scheme]
    return _KEY_STATUS.build({"scheme": code, "ksn": status.ksn or b"", "remaining": status.remaining})


def decode_key_status(payload: bytes) -> KeyStatus:
    parsed = _parse(_KEY_STATUS, payload, "key status")
    scheme = SCHEME_CODES.get(parsed.scheme, f"unknown 0x{parsed.scheme:02X}")
    return KeyStatus(scheme=scheme, ksn=bytes(parsed.ksn) or None, remaining=parsed.remaining)


# --- the driver ---------------------------------------------------------------------------------------------


class PinPad:
    """``flows.ports.PinPadPort`` on a serial PIN pad. Methods raise DeviceGone (port vanished or cannot be
    opened) or DeviceTimeout (no answer after the link's retries); a closed link is reopened on next use."""

    def __init__(self, url: str, *, baud: int = 115200, ack_timeout_s: float = 0.2, retries: int = 3,
                 response_timeout_s: float = 5.0) -> None:
        self._link = SerialLink(url, baud=baud, ack_timeout_s=ack_timeout_s, retries=retries,
                                on_event=self._on_link_event)
        self._response_timeout_s = response_timeout_s
        self._cond = threading.Condition()
        self._results: dict[int, PinEntry | OfflinePinResult | DeviceError | int] = {}
        self._waiting = False
        self._aborted = False

    def open(self) -> None:
        self._link.open()

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> PinPad:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key_status(self) -> KeyStatus:
        return decode_key_status(self._call(PinPadCmd.KEY_STATUS))

    def load_initial_key(self, load: KeyLoad) -> KeyStatus:
        """Technician operation: install a new initial key. The pad deciphers it, checks it against the KCV
        and only then replaces its key (KSN counter back to zero). Raises DeviceError (KCV mismatch: nothing
        changed; busy with a PIN entry) and returns the new key status."""
        self._call(PinPadCmd.LOAD_KEY, encode_key_load(load))
        return self.key_status()

    # --- PinPadPort ---

    def display(self, line1: str, line2: str = "") -> None:
        self._call(PinPadCmd.DISPLAY, encode_display(line1, line2))

    def request_online_pin(self, pan: str, amount_minor: int, timeout_s: float) -> PinEntry:
        """Prompt on the pad; block until the customer enters, bypasses or cancels, the pad times out, or
        ``abort()`` is called (-> "cancelled"). Raises DeviceError if the pad cannot encrypt, DeviceTimeout if
        it never gives a verdict, DeviceGone, LocalProtocolError for a PAN that is not 12..19 digits."""
        outcome = self._entry(PinPadCmd.GET_ONLINE_PIN, encode_pin_request(pan, amount_minor, timeout_s), timeout_s)
        if outcome is None:
            return PinEntry(status="cancelled")
        if isinstance(outcome, DeviceError):
            raise outcome
        return outcome  # type: ignore[return-value]

    def verify_offline_pin(self, request: OfflinePinRequest, timeout_s: float) -> OfflinePinResult:
        """Prompt for an offline PIN; the pad sends VERIFY to the card and reports only the status word."""
        outcome = self._entry(PinPadCmd.VERIFY_OFFLINE_PIN, encode_offline_pin_request(request, timeout_s),
                              timeout_s)
        if isinstance(outcome, DeviceError):
            raise outcome
        return outcome if isinstance(outcome, OfflinePinResult) else OfflinePinResult("cancelled")

    def choose_application(self, labels: tuple[str, ...], timeout_s: float) -> int | None:
        """Numbered labels on the pad; the index the customer picks, None when cancelled or timed out."""
        outcome = self._entry(PinPadCmd.CHOOSE, encode_choose(labels, timeout_s), timeout_s)
        if isinstance(outcome, DeviceError):
            raise outcome
        return outcome if isinstance(outcome, int) and not isinstance(outcome, bool) and outcome >= 0 else None

    def _entry(self, cmd: PinPadCmd, request: bytes, timeout_s: float) -> Any:
        with self._cond:
            self._waiting, self._aborted = True, False
            self._results.clear()
        try:
            status, payload = self._request(cmd, request)
            if status == PinPadStatus.BUSY:  # only we start entries: this one was abandoned earlier
                self._abort_quietly()
                status, payload = self._request(cmd, request)
            payload = self._check(cmd, status, payload)
            if len(payload) != 1:
                raise RemoteProtocolError(f"{cmd.name} answer lacks a session number", offset=0)
            outcome = self._await_result(payload[0], time.monotonic() + timeout_s + RESULT_GRACE_S)
        finally:
            with self._cond:
                self._waiting = False
        if outcome is None:  # aborted here, or the pad never answered: make sure the pad stops asking
            self._abort_quietly()
            if not self._aborted:
                raise DeviceTimeout("the PIN pad gave no PIN entry result")
        return outcome

    def abort(self) -> None:
        """From any thread: end a pending PIN entry as "cancelled". Never raises; the waiting caller itself
        tells the pad (so the pad is idle again before ``request_online_pin`` returns)."""
        with self._cond:
            if self._waiting:
                self._aborted = True
                self._cond.notify_all()

    # --- internals ---

    def _await_result(self, session: int, deadline: float) -> Any:
        with self._cond:
            while session not in self._results and not self._aborted:
                if not self._link.is_open:
                    raise DeviceGone(f"PIN pad {self._link.url} vanished during PIN entry")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(0.05, remaining))  # short steps: the port is polled
            return None if self._aborted else self._results.pop(session, None)

    def _abort_quietly(self) -> None:
        try:
            self._call(PinPadCmd.ABORT)
        except DeviceError as exc:  # the caller's answer does not depend on it
            log.warning("PIN pad did not take ABORT: %s", exc)

    def _request(self, cmd: PinPadCmd, data: bytes = b"") -> tuple[int, bytes]:
        if not self._link.is_open:
            self._link.open()  # reopen after an unplug; raises DeviceGone if it is still away
        response = self._link.request(cmd, data, self._response_timeout_s).data
        if not response:
            raise RemoteProtocolError("response without a status byte", offset=0)
        return response[0], response[1:]

    def _check(self, cmd: PinPadCmd, status: int, payload: bytes) -> bytes:
        if status != PinPadStatus.OK:
            raise DeviceError(f"{cmd.name}: {STATUS_MESSAGES.get(status, f'status 0x{status:02X}')}")
        return payload

    def _call(self, cmd: PinPadCmd, data: bytes = b"") -> bytes:
        return self._check(cmd, *self._request(cmd, data))

    def _on_link_event(self, event: Event) -> None:
        decoders: dict[int, Any] = {PinPadEventCode.PIN_RESULT: decode_pin_result,
                                    PinPadEventCode.OFFLINE_PIN_RESULT: decode_offline_pin_result,
                                    PinPadEventCode.CHOICE_RESULT: decode_choice_result}
        if not isinstance(event, FrameReceived) or event.cmd not in decoders:
            return
        decode = decoders[event.cmd]
        try:
            session, outcome = decode(event.data)
        except RemoteProtocolError as exc:
            log.warning("malformed PIN result dropped: %s", exc)
            return
        with self._cond:
            if self._waiting:  # a verdict nobody waits for (e.g. after a local abort) is dropped
                self._results[session] = outcome
                self._cond.notify_all()


def _parse(struct: Struct, payload: bytes, what: str) -> Any:
    try:
        return struct.parse(payload)
    except (ConstructError, UnicodeDecodeError) as exc:  # no raw bytes in the error: a request holds a PAN
        raise RemoteProtocolError(f"malformed {what}: {exc}", offset=len(payload)) from exc
