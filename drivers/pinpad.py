"""PIN pad client: ``flows.ports.PinPadPort`` over our link, on the shared ``LinkDevice``.

The command set and payload codecs are in ``drivers.pinpad_codec`` (the simulated pad uses the same module);
this file runs an entry session: send the request, then wait for the pad's unsolicited verdict with the same
session number, or abort. The clear PIN never leaves the pad; the PAN is never logged.
See docs/protocols/pinpad.md.

>>> PinPad("loop://").is_open
False
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from drivers.link import Event, FrameReceived
from drivers.link.device import LinkDevice
from drivers.pinpad_codec import (
    RESULT_GRACE_S,
    STATUS_ERRORS,
    KeyLoad,
    KeyStatus,
    MacRequest,
    PinPadCmd,
    PinPadEventCode,
    PinPadStatus,
    WorkingKeyLoad,
    decode_choice_result,
    decode_key_loaded,
    decode_key_status,
    decode_numeric_result,
    decode_offline_pin_result,
    decode_pin_result,
    encode_choose,
    encode_display,
    encode_key_load,
    encode_mac_request,
    encode_numeric_request,
    encode_offline_pin_request,
    encode_pin_request,
    encode_working_key,
)
from flows.ports import OfflinePinRequest, OfflinePinResult, PadPrompt, PinEntry
from pos_errors import DeviceError, DeviceFault, DeviceGone, DeviceTimeout, PosError, RemoteProtocolError

__all__ = ["PinPad"]

log = logging.getLogger(__name__)
# While the customer keys a PIN the waiter sleeps until the pad's result or ``abort()`` wakes it; only a vanished
# port (which wakes nobody) is looked for, this often (was every 50 ms: 20 wake-ups a second for nothing)
PORT_CHECK_S = 1.0

_RESULT_DECODERS: dict[int, Any] = {PinPadEventCode.PIN_RESULT: decode_pin_result,
                                    PinPadEventCode.OFFLINE_PIN_RESULT: decode_offline_pin_result,
                                    PinPadEventCode.CHOICE_RESULT: decode_choice_result,
                                    PinPadEventCode.NUMERIC_RESULT: decode_numeric_result}


class PinPad(LinkDevice):
    """``flows.ports.PinPadPort`` on a serial PIN pad."""

    name = "PIN pad"
    status_errors = STATUS_ERRORS

    def _setup(self) -> None:
        self._cond = threading.Condition()
        self._results: dict[int, PinEntry | OfflinePinResult | DeviceError | int | str] = {}
        self._waiting = False
        self._aborted = False
        self._working_key: Callable[[], tuple[bytes, bytes]] | None = None

    def key_status(self) -> KeyStatus:
        return decode_key_status(self._call(PinPadCmd.KEY_STATUS))

    def load_initial_key(self, load: KeyLoad) -> tuple[KeyStatus, bytes]:
        """Technician operation: install a new initial DUKPT key from a TR-31 key block. The pad unwraps it under
        its KBPK, checks usage, KCV and that the KSN does not go back, and only then replaces its key. Raises
        DeviceError (block refused, KCV mismatch, KSN replay, busy: nothing changed); returns the new key
        status and the loaded key's check value."""
        kcv = decode_key_loaded(self._call(PinPadCmd.LOAD_KEY, encode_key_load(load)))
        return self.key_status(), kcv

    def load_master_key(self, key_block: str, kcv: bytes = b"") -> bytes:
        """Technician operation (master/session): install the terminal master key from a TR-31 block of usage K0
        (TDES, mode B or D) wrapped under the pad's KBPK, through LOAD_KEY. Returns its 3-byte check value;
        DeviceError (KEY_BLOCK_REFUSED, KCV_MISMATCH): nothing changed."""
        return decode_key_loaded(self._call(PinPadCmd.LOAD_KEY, encode_key_load(KeyLoad(key_block, kcv))))

    # --- DUKPT message MACs (``[host] key_scheme = "dukpt"``: ``drivers.host.client.DukptMacer``) ---

    def next_ksn(self) -> bytes:
        """The KSN of the pad's next DUKPT transaction. DeviceError when the key is exhausted."""
        ksn = self.key_status().ksn
        if not ksn:
            raise DeviceError("the PIN pad has no usable DUKPT key", fault=DeviceFault.OTHER)
        return ksn

    def mac_request(self, ksn: bytes, data: bytes) -> bytes:
        """The 8-byte MAC of ``data`` under the request MAC key of transaction ``ksn`` (computed in the pad)."""
        answer = self._call(PinPadCmd.DUKPT_MAC, encode_mac_request(MacRequest(ksn, data)))
        if len(answer) != 8:
            raise RemoteProtocolError("the DUKPT MAC answer is 8 bytes", offset=0)
        return answer

    def verify_response(self, ksn: bytes, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is the MAC of an answer's ``data`` under the response MAC key of transaction ``ksn``."""
        answer = self._call(PinPadCmd.DUKPT_MAC, encode_mac_request(MacRequest(ksn, data, True, mac)))
        if answer not in (b"\x00", b"\x01"):
            raise RemoteProtocolError("the DUKPT MAC check answer is one byte 00 or 01", offset=0)
        return answer == b"\x01"

    def load_working_key(self, key_under_tmk: bytes, kcv: bytes) -> None:
        """Master/session: hand the pad the sign-on PIK as delivered (under the TMK, which the pad holds); the
        pad deciphers it and checks ``kcv``. DeviceError: no TMK in the pad (NO_KEY), check value wrong
        (KCV_MISMATCH) — the pad keeps no working key then."""
        self._call(PinPadCmd.LOAD_WORKING_KEY, encode_working_key(WorkingKeyLoad(key_under_tmk, kcv)))

    def use_working_key(self, pin_key: Callable[[], tuple[bytes, bytes]]) -> None:
        """From now on every online PIN is ISO 9564 format 0 under the acquirer's PIK, not DUKPT: before each
        entry the pad is given ``pin_key()`` (``HostClient.pin_key``: the PIK under the TMK and its check value)
        — the current sign-on's PIK, so the block matches the key the host holds."""
        self._working_key = pin_key

    # --- PinPadPort ---

    def display(self, prompt: PadPrompt, amount_minor: int = 0, currency: int = 156) -> None:
        """One of the pad's display-only prompts; DeviceError when the pad refuses it (not in its table)."""
        self._call(PinPadCmd.DISPLAY, encode_display(prompt, amount_minor, currency))

    def enter_number(self, prompt: PadPrompt, min_digits: int, max_digits: int, timeout_s: float) -> str | None:
        """The customer keys a number that is not a PIN (phone number, ICCID) under one of the pad's
        ``NUMERIC_PROMPTS``: the digits, in clear; None when cancelled or timed out. LocalProtocolError for any
        other prompt; the pad refuses one too (PROMPT_REFUSED)."""
        outcome = self._entry(PinPadCmd.NUMERIC_ENTRY,
                              encode_numeric_request(prompt, min_digits, max_digits, timeout_s), timeout_s)
        if isinstance(outcome, DeviceError):
            raise outcome
        return outcome if isinstance(outcome, str) and outcome else None

    def request_online_pin(self, pan: str, amount_minor: int, timeout_s: float) -> PinEntry:
        """Prompt on the pad; block until the customer enters, bypasses or cancels, the pad times out, or
        ``abort()`` is called (-> "cancelled"). Raises DeviceError if the pad cannot encrypt, DeviceTimeout if
        it never gives a verdict, DeviceGone, LocalProtocolError for a PAN that is not 12..19 digits."""
        cmd = PinPadCmd.GET_ONLINE_PIN
        if self._working_key is not None:
            try:
                key_under_tmk, kcv = self._working_key()
            except PosError as exc:  # no sign-on, so no PIK: nothing can be charged with a PIN now
                raise DeviceError(f"no PIN key from the acquirer: {exc}", fault=DeviceFault.OTHER) from exc
            self.load_working_key(key_under_tmk, kcv)
            cmd = PinPadCmd.GET_ONLINE_PIN_WK
        outcome = self._entry(cmd, encode_pin_request(pan, amount_minor, timeout_s), timeout_s)
        if outcome is None:
            return PinEntry(status="cancelled")
        if isinstance(outcome, DeviceError):
            raise outcome
        if outcome.status == "entered" and (outcome.ksn is None) != (cmd == PinPadCmd.GET_ONLINE_PIN_WK):
            raise RemoteProtocolError("the PIN pad answered with a PIN block of the other key scheme", offset=3)
        return outcome  # type: ignore[no-any-return]

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

    def abort(self) -> None:
        """From any thread: end a pending PIN entry as "cancelled". Never raises; the waiting caller itself
        tells the pad (so the pad is idle again before ``request_online_pin`` returns)."""
        with self._cond:
            if self._waiting:
                self._aborted = True
                self._cond.notify_all()

    # --- internals ---

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
                raise DeviceTimeout("the PIN pad gave no PIN entry result", fault=DeviceFault.NO_ANSWER)
        return outcome

    def _await_result(self, session: int, deadline: float) -> Any:
        with self._cond:
            while session not in self._results and not self._aborted:
                if not self._link.is_open:
                    raise DeviceGone(f"PIN pad {self._link.url} vanished during PIN entry", fault=DeviceFault.PORT)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(PORT_CHECK_S, remaining))  # a result or abort() notifies; the port is looked at
            return None if self._aborted else self._results.pop(session, None)

    def _abort_quietly(self) -> None:
        try:
            self._call(PinPadCmd.ABORT)
        except DeviceError as exc:  # the caller's answer does not depend on it
            log.warning("PIN pad did not take ABORT: %s", exc)

    def _on_link_event(self, event: Event) -> None:
        if not isinstance(event, FrameReceived) or event.cmd not in _RESULT_DECODERS:
            return
        try:
            session, outcome = _RESULT_DECODERS[event.cmd](event.data)
        except RemoteProtocolError as exc:
            log.warning("malformed PIN result dropped: %s", exc)
            return
        with self._cond:
            if self._waiting:  # a verdict nobody waits for (e.g. after a local abort) is dropped
                self._results[session] = outcome
                self._cond.notify_all()
