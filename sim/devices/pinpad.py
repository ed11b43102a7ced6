"""Simulated PIN pad on a pty: the device end of ``drivers.pinpad``'s protocol, with real DUKPT encryption.

The clear PIN exists only here, between the customer's key presses (``press``) and
``DukptPinEncryptor.encrypt_pin``; the terminal receives the encrypted block and KSN in a PIN_RESULT frame.
ENTER with no digits is a PIN bypass, CANCEL cancels, CLEAR starts again; 1..3 digits and ENTER is ignored
(a real pad beeps). ``auto_pin`` answers a request as if the customer typed it (headless scenarios).

Prompt control (PCI PTS POI): the pad shows only its own ``PROMPTS`` (DISPLAY selects one by id, with an amount
and a currency) and returns digits in clear only under its ``NUMERIC_TEXT`` prompts (NUMERIC_ENTRY), none of
which asks for a PIN; anything else is answered PROMPT_REFUSED and changes nothing.

>>> from emv.crypto.pin import derive_initial_key
>>> ksn = bytes.fromhex("123456789012345600000000")
>>> pad = PinPadSim(initial_key=derive_initial_key("aes", bytes(16), ksn), initial_ksn=ksn)
>>> pad.display, pad.awaiting_pin
(('WELCOME / 欢迎', ''), False)
>>> pad.stop()
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.pinpad_codec import (
    EntryStatus,
    KeyStatus,
    PinPadCmd,
    PinPadEventCode,
    PinPadStatus,
    decode_choose,
    decode_display,
    decode_key_load,
    decode_mac_request,
    decode_numeric_request,
    decode_offline_pin_request,
    decode_pin_request,
    decode_working_key,
    encode_choice_result,
    encode_key_status,
    encode_numeric_result,
    encode_offline_pin_result,
    encode_pin_result,
)
from emv.crypto import dukpt_mac
from emv.crypto.des import tdes_ecb_decrypt
from emv.crypto.mac import kcv_tdes, mac_matches
from emv.crypto.pin import DukptPinEncryptor, Scheme, key_check_value
from emv.crypto.pinblock import encipher_format0
from emv.crypto.tr31 import (
    INITIAL_DUKPT_KEY,
    KEY_ENCRYPTION,
    KeyBlockError,
    UnwrappedKey,
    dukpt_initial_ksn,
    unwrap,
)
from flows.ports import NUMERIC_PROMPTS, OfflinePinRequest, PadPrompt
from pos_errors import PosError, RemoteProtocolError
from sim.devices.pty import LineFaults
from sim.devices.reader import LinkedDevice

__all__ = ["PinPadSim", "KEYS", "TEST_KBPK", "PROMPTS", "NUMERIC_TEXT", "offline_verify_apdu"]

KEYS = frozenset("0123456789") | {"ENTER", "CANCEL", "CLEAR"}
MIN_PIN, MAX_PIN = 4, 12
IDLE = ("WELCOME / 欢迎", "")
# The pad's own prompt table: the terminal picks a line pair by id; "{amount}" is the amount it sent.
PROMPTS: dict[int, tuple[str, str]] = {
    PadPrompt.WELCOME: IDLE,
    PadPrompt.INSERT_CARD: ("INSERT CARD", "请插卡"),
    PadPrompt.PLEASE_WAIT: ("PLEASE WAIT", "请稍候"),
    PadPrompt.AMOUNT: ("{amount}", "AMOUNT / 金额"),
    PadPrompt.APPROVED: ("{amount}", "APPROVED / 成功"),
    PadPrompt.DECLINED: ("DECLINED", "交易失败"),
    PadPrompt.REMOVE_CARD: ("REMOVE CARD", "请取卡"),
    PadPrompt.THANK_YOU: ("THANK YOU", "谢谢"),
}
# The only prompts whose digits the pad returns in clear: none of them asks for a PIN.
NUMERIC_TEXT: dict[int, str] = {PadPrompt.ENTER_PHONE: "PHONE NO. / 手机号",
                                PadPrompt.ENTER_ICCID: "SIM ICCID / SIM卡号"}
CURRENCIES = {156: "CNY", 344: "HKD", 840: "USD", 978: "EUR"}  # ISO 4217 numeric -> the code the pad shows
# Test key block protection keys (as a key-injection facility would share with the pad), by TR-31 version:
# D = AES-256, B = double-length TDES. Never production keys.
TEST_KBPK: dict[str, bytes] = {"D": bytes.fromhex("00112233445566778899AABBCCDDEEFF" * 2),
                               "B": bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")}
_SCHEMES: dict[str, Scheme] = {"A": "aes", "T": "tdes"}  # TR-31 algorithm -> DUKPT scheme


@dataclass
class _Entry:
    session: int
    pan: str = field(repr=False)
    amount_minor: int
    deadline: float
    digits: str = field(default="", repr=False)  # the clear PIN while it is typed: never shown or logged
    auto: bool = False
    offline: OfflinePinRequest | None = None  # an EMV offline PIN: the pad VERIFYs it with the card
    menu: tuple[str, ...] = ()  # a choice among numbered labels (EMV application selection)
    numeric: tuple[int, int, int] | None = None  # NUMERIC_ENTRY: (prompt id, min digits, max digits)
    working_key: bool = False  # GET_ONLINE_PIN_WK: format 0 under the PIK, not DUKPT


class PinPadSim(LinkedDevice):
    """A PIN pad with a DUKPT key (``scheme`` "aes" = format 4, "tdes" = format 0).

    Args:
        initial_key / initial_ksn: the IK or IPEK and its KSN, as ``emv.crypto.pin.derive_initial_key`` makes.
        random_bytes: the format 4 random fill source (inject for deterministic tests).
    """

    name = "pinpad"

    def __init__(self, *, scheme: Scheme = "aes", initial_key: bytes, initial_ksn: bytes,
                 baud: int | None = None, corrupt: Callable[[bytes], bytes] | None = None,
                 ack_timeout_s: float = 0.2, retries: int = 8,
                 random_bytes: Callable[[int], bytes] = os.urandom, faults: LineFaults | None = None) -> None:
        super().__init__(baud=baud, corrupt=corrupt, ack_timeout_s=ack_timeout_s, retries=retries, faults=faults)
        self._encryptor = DukptPinEncryptor(scheme, initial_key, initial_ksn, random_bytes)
        self._random_bytes = random_bytes
        self.kbpk = dict(TEST_KBPK)
        self.tmk: bytes | None = None  # master/session: the terminal master key (the world sets the acquirer's)
        self._pik: bytes | None = None  # the working PIN key of the last LOAD_WORKING_KEY (clear only in here)
        self._mac_keys: dict[bytes, bytes] = {}  # KSN -> key of the last few DUKPT transactions (their MACs)
        # the highest KSN each scheme has reached: a key load below it is a replay (the counter would restart)
        self._ksn_floor: dict[str, bytes] = {scheme: initial_ksn}
        self.auto_pin: str | None = None
        self.auto_number: str | None = None  # answers a NUMERIC_ENTRY as if the customer keyed it
        self._idle = IDLE
        self._entry: _Entry | None = None
        self._session = 0
        self.results: list[str] = []  # entry outcomes sent, oldest first (names only, never PINs)
        # The card the pad can talk to for offline PIN (the world wires it to the card in the reader).
        self.card_channel: Callable[[bytes], bytes] | None = None
        self._random = random_bytes

    @property
    def display(self) -> tuple[str, str]:
        """What the pad's two-line display shows now: the idle text, or amount and one ``*`` per digit."""
        with self.lock:
            entry = self._entry
            if entry is None:
                return self._idle
            if entry.numeric is not None:
                return NUMERIC_TEXT[entry.numeric[0]], entry.digits  # not a PIN: shown as keyed
            if entry.menu:
                return " ".join(f"{i}.{label}" for i, label in enumerate(entry.menu, 1))[:64], "1-9 / CANCEL"
            yuan, fen = divmod(entry.amount_minor, 100)
            return f"CNY {yuan}.{fen:02d}", f"PIN / 密码: {'*' * len(entry.digits)}"

    @property
    def awaiting_pin(self) -> bool:
        return self._entry is not None

    def key_status(self) -> KeyStatus:
        return KeyStatus(scheme=self._encryptor.scheme, ksn=self._encryptor.ksn,
                         remaining=self._encryptor.remaining)

    def press(self, key: str) -> None:
        """The customer presses "0".."9", "ENTER", "CANCEL" or "CLEAR". Ignored when no PIN is asked for."""
        if key not in KEYS:
            raise ValueError(f"the PIN pad has no key {key!r}")
        with self.lock:
            entry = self._entry
            if entry is None or not self.plugged:
                return
            if entry.menu and key.isdigit():
                if 1 <= int(key) <= len(entry.menu):
                    self._choose(int(key) - 1)
            elif entry.menu and key == "CANCEL":
                self._choose(-1)
            elif entry.numeric is not None:
                self._numeric_key(entry, key)
            elif key.isdigit():
                if len(entry.digits) < MAX_PIN:
                    entry.digits += key
            elif key == "CLEAR":
                entry.digits = ""
            elif key == "CANCEL":
                self._finish(EntryStatus.CANCELLED)
            elif not entry.digits:
                self._finish(EntryStatus.BYPASSED)
            elif len(entry.digits) >= MIN_PIN:
                self._finish(EntryStatus.ENTERED)
        self.notify("display")

    # --- device side of the protocol ---

    def handle(self, cmd: int, data: bytes) -> bytes:
        if cmd == PinPadCmd.DISPLAY:
            return self._show(data)
        if cmd == PinPadCmd.KEY_STATUS:
            return bytes([PinPadStatus.OK]) + encode_key_status(self.key_status())
        if cmd == PinPadCmd.LOAD_KEY:
            return self._load_key(data)
        if cmd == PinPadCmd.LOAD_WORKING_KEY:
            return self._load_working_key(data)
        if cmd == PinPadCmd.DUKPT_MAC:
            return self._dukpt_mac(data)
        if cmd == PinPadCmd.ABORT:
            if self._entry is not None:
                self._finish(EntryStatus.CANCELLED)
                self.notify("display")
            return bytes([PinPadStatus.OK])
        if cmd not in (PinPadCmd.GET_ONLINE_PIN, PinPadCmd.VERIFY_OFFLINE_PIN, PinPadCmd.CHOOSE,
                       PinPadCmd.NUMERIC_ENTRY, PinPadCmd.GET_ONLINE_PIN_WK):
            return bytes([PinPadStatus.UNKNOWN_COMMAND])
        if self._entry is not None:
            return bytes([PinPadStatus.BUSY])
        if cmd == PinPadCmd.NUMERIC_ENTRY:
            return self._start_numeric(data)
        if cmd == PinPadCmd.CHOOSE:
            labels, timeout_s = decode_choose(data)
            self._session = (self._session + 1) & 0xFF
            self._entry = _Entry(session=self._session, pan="", amount_minor=0, menu=labels,
                                 deadline=time.monotonic() + timeout_s, auto=self.auto_pin is not None)
            self.notify("awaiting_pin")
            return bytes([PinPadStatus.OK, self._session])
        offline: OfflinePinRequest | None = None
        if cmd == PinPadCmd.VERIFY_OFFLINE_PIN:
            offline, timeout_s = decode_offline_pin_request(data)
            pan, amount = "", offline.amount_minor
        elif (self._pik is None if cmd == PinPadCmd.GET_ONLINE_PIN_WK else self._encryptor.remaining <= 0):
            return bytes([PinPadStatus.NO_KEY])
        else:
            pan, amount, timeout_s = decode_pin_request(data)
        self._session = (self._session + 1) & 0xFF
        self._entry = _Entry(session=self._session, pan=pan, amount_minor=amount,
                             deadline=time.monotonic() + timeout_s, auto=self.auto_pin is not None, offline=offline,
                             working_key=cmd == PinPadCmd.GET_ONLINE_PIN_WK)
        self.notify("awaiting_pin")
        return bytes([PinPadStatus.OK, self._session])

    def _show(self, data: bytes) -> bytes:
        """DISPLAY: a prompt of the table by id; free text, an unknown id or currency is refused."""
        try:
            prompt, amount, currency = decode_display(data)
        except RemoteProtocolError:
            return bytes([PinPadStatus.PROMPT_REFUSED])
        if prompt not in PROMPTS or currency not in CURRENCIES:
            return bytes([PinPadStatus.PROMPT_REFUSED])
        yuan, cents = divmod(amount, 100)
        shown = f"{CURRENCIES[currency]} {yuan}.{cents:02d}"
        line1, line2 = PROMPTS[prompt]
        self._idle = (line1.replace("{amount}", shown), line2)
        self.notify("display")
        return bytes([PinPadStatus.OK])

    def _start_numeric(self, data: bytes) -> bytes:
        """NUMERIC_ENTRY: only under a prompt of ``NUMERIC_TEXT``; the digits come back in clear."""
        try:
            prompt, low, high, timeout_s = decode_numeric_request(data)
        except RemoteProtocolError:
            return bytes([PinPadStatus.PROMPT_REFUSED])
        if prompt not in NUMERIC_TEXT or prompt not in NUMERIC_PROMPTS:
            return bytes([PinPadStatus.PROMPT_REFUSED])
        if not 1 <= low <= high <= 20:
            return bytes([PinPadStatus.BAD_REQUEST])
        self._session = (self._session + 1) & 0xFF
        self._entry = _Entry(session=self._session, pan="", amount_minor=0, numeric=(prompt, low, high),
                             deadline=time.monotonic() + timeout_s, auto=self.auto_number is not None)
        self.notify("awaiting_pin")
        return bytes([PinPadStatus.OK, self._session])

    def _numeric_key(self, entry: _Entry, key: str) -> None:
        assert entry.numeric is not None  # noqa: S101 - only called for numeric entries
        _, low, high = entry.numeric
        if key.isdigit() and len(entry.digits) < high:
            entry.digits += key
        elif key == "CLEAR":
            entry.digits = ""
        elif key == "CANCEL":
            self._finish_numeric(EntryStatus.CANCELLED)
        elif key == "ENTER" and low <= len(entry.digits) <= high:
            self._finish_numeric(EntryStatus.ENTERED)

    def _finish_numeric(self, status: EntryStatus) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        digits = entry.digits if status is EntryStatus.ENTERED else ""
        self.results.append(status.name.lower())
        self.send_event(PinPadEventCode.NUMERIC_RESULT, encode_numeric_result(entry.session, status, digits))

    def _load_key(self, data: bytes) -> bytes:
        """LOAD_KEY: unwrap the TR-31 block under the pad's KBPK, check it is an initial DUKPT key, its KCV and
        that its KSN does not go back; only then replace the key. Answers the new key's check value. A K0 block
        is the master/session TMK instead (``_load_master_key``)."""
        if self._entry is not None:
            return bytes([PinPadStatus.BUSY])
        load = decode_key_load(data)
        try:
            block = unwrap(self.kbpk.get(load.key_block[:1], b""), load.key_block)
        except KeyBlockError:
            return bytes([PinPadStatus.KEY_BLOCK_REFUSED])
        if block.header.key_usage == KEY_ENCRYPTION:
            return self._load_master_key(block, load.kcv)
        try:
            scheme = _SCHEMES[block.header.algorithm]
            ksn = dukpt_initial_ksn(block.header)
        except (KeyBlockError, KeyError):
            return bytes([PinPadStatus.KEY_BLOCK_REFUSED])
        if block.header.key_usage != INITIAL_DUKPT_KEY or len(block.key) != 16:
            return bytes([PinPadStatus.KEY_BLOCK_REFUSED])
        kcv = key_check_value(block.key, scheme)
        stated = block.header.block("KC")  # TR-31 KC: "00" legacy or "01" CMAC method, then the check value
        if (load.kcv and load.kcv != kcv) or (stated is not None and stated[2:8].upper() != kcv.hex().upper()):
            return bytes([PinPadStatus.KCV_MISMATCH])
        self._raise_floor()
        floor = self._ksn_floor.get(scheme)
        if floor is not None and len(floor) == len(ksn) and ksn < floor:
            return bytes([PinPadStatus.KSN_REPLAY])
        self._encryptor = DukptPinEncryptor(scheme, block.key, ksn, self._random_bytes)
        self._mac_keys.clear()
        self._raise_floor()
        self.notify("key loaded")
        return bytes([PinPadStatus.OK]) + kcv

    def _load_master_key(self, block: UnwrappedKey, kcv: bytes) -> bytes:
        """LOAD_KEY of a K0 block: the terminal master key of the master/session scheme (a double-length TDES
        key, mode of use B or D), checked against ``kcv`` / the block's KC; replaces the TMK and drops the PIK."""
        key, header = block.key, block.header
        if header.algorithm != "T" or header.mode_of_use not in "BD" or len(key) != 16 or key[:8] == key[8:]:
            return bytes([PinPadStatus.KEY_BLOCK_REFUSED])
        check = kcv_tdes(key, 3)
        stated = header.block("KC")
        if (kcv and kcv != check) or (stated is not None and stated[2:8].upper() != check.hex().upper()):
            return bytes([PinPadStatus.KCV_MISMATCH])
        self.tmk, self._pik = key, None
        self.notify("key loaded")
        return bytes([PinPadStatus.OK]) + check

    def _dukpt_mac(self, data: bytes) -> bytes:
        """DUKPT_MAC: the request MAC under the transaction key of ``ksn`` — the next one (used up now) or one
        of the last few transactions (a PIN block's) — or the check of an answer's MAC under its response key."""
        request = decode_mac_request(data)
        key = self._mac_keys.get(request.ksn)
        if key is None and not request.verify and request.ksn == self._encryptor.ksn:
            try:
                self._raise_floor()
                self._encryptor.next_key()
            except PosError:
                return bytes([PinPadStatus.NO_KEY])
            key = self._remember()
        if key is None:
            return bytes([PinPadStatus.NO_KEY])
        scheme = self._encryptor.scheme
        if not request.verify:
            return bytes([PinPadStatus.OK]) + dukpt_mac.mac(scheme, key, request.ksn, request.data, "request")
        good = mac_matches(dukpt_mac.mac(scheme, key, request.ksn, request.data, "response"), request.mac)
        return bytes([PinPadStatus.OK, int(good)])

    def _remember(self) -> bytes | None:
        """Keep the key of the transaction just served for its MACs (the last eight transactions)."""
        last = self._encryptor.last_key
        if last is None:
            return None
        self._mac_keys[last[0]] = last[1]
        while len(self._mac_keys) > 8:
            del self._mac_keys[next(iter(self._mac_keys))]
        return last[1]

    def _load_working_key(self, data: bytes) -> bytes:
        """LOAD_WORKING_KEY: decipher the PIK under the pad's TMK, check its check value and length; only then
        replace the working key (a refused one leaves none: a PIN must not go under a key the host lacks)."""
        if self._entry is not None:
            return bytes([PinPadStatus.BUSY])
        load = decode_working_key(data)
        if self.tmk is None:
            return bytes([PinPadStatus.NO_KEY])
        key = tdes_ecb_decrypt(self.tmk, load.key_under_tmk)
        if not mac_matches(kcv_tdes(key, 4), load.kcv) or key[:8] == key[8:]:
            self._pik = None
            return bytes([PinPadStatus.KCV_MISMATCH])
        self._pik = key
        return bytes([PinPadStatus.OK])

    def _raise_floor(self) -> None:
        scheme, ksn = self._encryptor.scheme, self._encryptor.ksn
        if ksn is not None and (scheme not in self._ksn_floor or ksn > self._ksn_floor[scheme]):
            self._ksn_floor[scheme] = ksn

    def tick(self, now: float) -> None:
        entry = self._entry
        if entry is None:
            return
        if entry.numeric is not None:
            if entry.auto and self.auto_number is not None:
                entry.digits = self.auto_number
                self._finish_numeric(EntryStatus.ENTERED)
            elif now >= entry.deadline:
                self._finish_numeric(EntryStatus.TIMEOUT)
            else:
                return
            self.notify("display")
            return
        if entry.menu and (entry.auto or now >= entry.deadline):  # auto: the first option; else timed out
            self._choose(0 if entry.auto and self.auto_pin is not None else -1)
            self.notify("display")
            return
        if entry.auto and self.auto_pin is not None:  # typed on the next tick, after the response went out
            entry.digits = self.auto_pin
            self._finish(EntryStatus.ENTERED if self.auto_pin else EntryStatus.BYPASSED)
        elif now >= entry.deadline:
            self._finish(EntryStatus.TIMEOUT)
        else:
            return
        self.notify("display")

    def on_replug(self) -> None:
        self._entry = None  # a pad that lost power forgets the entry; the terminal times out

    def _finish(self, status: EntryStatus) -> None:
        """Send PIN_RESULT for the open entry (lock held). Encryption happens here and only here."""
        entry, self._entry = self._entry, None
        if entry is None:
            return
        if entry.offline is not None:
            sw = self._verify_offline(entry) if status is EntryStatus.ENTERED else 0
            entry.digits = ""
            self.results.append(status.name.lower())
            self.send_event(PinPadEventCode.OFFLINE_PIN_RESULT, encode_offline_pin_result(entry.session, status, sw))
            return
        block, ksn, block_format = b"", b"", 0 if entry.working_key else self._encryptor.block_format
        if status is EntryStatus.ENTERED and entry.working_key:
            try:
                block = encipher_format0(self._pik or b"", entry.digits, entry.pan)
            except PosError:
                status = EntryStatus.FAILED
        elif status is EntryStatus.ENTERED:
            try:
                self._raise_floor()  # the KSN about to be used: never loadable again
                block, ksn = self._encryptor.encrypt_pin(entry.digits, entry.pan)
                self._remember()
            except PosError:  # exhausted key or a PAN the block format refuses: no PIN block at all
                status = EntryStatus.FAILED
        entry.digits = ""
        self.results.append(status.name.lower())
        self.send_event(PinPadEventCode.PIN_RESULT,
                        encode_pin_result(entry.session, status, block_format, ksn, block))

    def _choose(self, index: int) -> None:
        """Send CHOICE_RESULT for the open menu (lock held); -1 = cancelled or timed out."""
        entry, self._entry = self._entry, None
        if entry is None:
            return
        status = EntryStatus.ENTERED if index >= 0 else EntryStatus.CANCELLED
        self.results.append("chosen" if index >= 0 else "cancelled")
        self.send_event(PinPadEventCode.CHOICE_RESULT, encode_choice_result(entry.session, status, max(index, 0)))

    def _verify_offline(self, entry: _Entry) -> int:
        """VERIFY with the card; the card's status word (6F00 without a card or a usable key)."""
        assert entry.offline is not None  # noqa: S101 - only called for offline entries
        command = offline_verify_apdu(entry.offline, entry.digits, self._random)
        if self.card_channel is None or command is None:
            return 0x6F00
        answer = self.card_channel(command)
        return int.from_bytes(answer[-2:], "big") if len(answer) >= 2 else 0x6F00


def offline_verify_apdu(request: OfflinePinRequest, digits: str, random_bytes: Callable[[int], bytes]) -> bytes | None:
    """VERIFY (EMV Book 3 §6.5.12) with the plaintext PIN block ``2N PIN F..F``, or for enciphered PIN
    ``7F || block || challenge || random`` under the ICC public key (Book 2 §7.2); None if the key is unusable."""
    block = bytes.fromhex(f"2{len(digits):X}{digits}".ljust(16, "F"))
    if not request.enciphered:
        return bytes([0x00, 0x20, 0x00, 0x80, len(block)]) + block
    size, n = len(request.icc_modulus), int.from_bytes(request.icc_modulus, "big")
    if size < 17 + 8 or len(request.challenge) != 8:
        return None
    plain = b"\x7f" + block + request.challenge + random_bytes(size - 17)
    if int.from_bytes(plain, "big") >= n:
        plain = b"\x00" + plain[1:]  # never happens with a 7F lead and a full-length modulus
    cipher = pow(int.from_bytes(plain, "big"), int.from_bytes(request.icc_exponent, "big"), n)
    return bytes([0x00, 0x20, 0x00, 0x88, size]) + cipher.to_bytes(size, "big")
