"""Message MACs and the master/session key scheme (签到) of the acquirer dialect — pure, no sockets, no clock.

**MAC.** Every message except the sign-on request carries an 8-byte MAC as its last field: field 64 when
the message has only a primary bitmap, field 128 when it has a secondary one (0400/0410 with field 90,
0800/0810 with field 70). The MAC input is the whole packed message — MTI, bitmap(s) with the MAC bit set,
every field before the MAC — i.e. the frame without its 2-byte length prefix and without the last 8 bytes.
Algorithm: ISO/IEC 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC), padding method 1, under the MAK
(``emv.crypto.mac.retail_mac``).

**Keys.** The terminal master key (TMK, double-length TDES) is loaded by the technician; sign-on (0800, field
70 = ``001``) asks the host for working keys, and the 0810 carries them in field 62 as 80 hex digits::

    PIK under TMK (16 bytes, TDES-ECB) | PIK check value (4) | MAK under TMK (16) | MAK check value (4)

A check value is the leftmost 4 bytes of the clear key encrypting 8 zero bytes (``kcv_tdes(key, 4)``). Both are
verified before either key is used; a mismatch is ``LinkSecurityError(KEY_CHECK)`` and the old keys (if any)
stay. The sign-on request carries no MAC (there is no MAK yet: the mutual-TLS client certificate is what
authenticates it); the 0810 that delivers the keys is MACed under the *new* MAK, so a forged or replayed
sign-on answer with keys the terminal cannot verify is refused. Sign-off is 70 = ``002``, MACed.

**Key separation.** A PIN key that is also the MAC key would let whoever sees MAC inputs and MACs attack PIN
blocks under the same key (and a MAC key may be used to encipher chosen data): the terminal refuses a sign-on
whose PIK and MAK are one key — ``LinkSecurityError(KEY_SEPARATION)``, logged, no key taken. It never deciphers
the PIK (the PIN pad does), so it compares what was delivered: under the same TMK in ECB one clear key always
gives one cryptogram, and keys that differ only in parity bits (the same DES key) give one check value.

>>> tmk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> keys = SessionKeys(pik=bytes.fromhex("1111111111111111" "2222222222222222"),
...                    mak=bytes.fromhex("3333333333333333" "4444444444444444"))
>>> unwrap_keys(wrap_keys(tmk, keys), tmk) == keys
True
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.host.messages import Fields, pack, transmission_time, unpack
from drivers.host.spec import MTI_ECHO
from emv.crypto.des import tdes_ecb_decrypt, tdes_ecb_encrypt
from emv.crypto.mac import kcv_tdes, mac_matches, retail_mac
from pos_errors import CryptoError, LinkFault, LinkSecurityError, LocalProtocolError, RemoteProtocolError

__all__ = ["SessionKeys", "TerminalKeys", "accept_keys",
           "MAC_LEN", "KCV_LEN", "NMI_SIGN_ON", "NMI_SIGN_OFF", "mac_field", "pack_with_mac",
           "mac_of", "verify_mac", "wrap_keys", "unwrap_keys", "build_sign_on", "build_sign_off",
           "KEY_ERROR_CODE"]

log = logging.getLogger(__name__)

MAC_LEN = 8
KCV_LEN = 4
NMI_SIGN_ON = "001"
NMI_SIGN_OFF = "002"
KEY_ERROR_CODE = "A0"  # CUP dialect: "MAC/key error, sign on again"; the host never approves with it
_KEY_LEN = 16
_FIELD_62_LEN = 2 * (2 * (_KEY_LEN + KCV_LEN))


@dataclass(frozen=True)
class SessionKeys:
    """The working keys of one sign-on (clear, in memory only; never logged)."""

    pik: bytes = field(repr=False)
    mak: bytes = field(repr=False)


@dataclass(frozen=True)
class TerminalKeys:
    """What the terminal keeps of a sign-on: the MAK in clear (the terminal MACs), the PIK only as delivered —
    enciphered under the TMK, with its check value — for the PIN pad, which alone deciphers and checks it."""

    mak: bytes = field(repr=False)
    pik_under_tmk: bytes = field(repr=False)
    pik_kcv: bytes


def mac_field(fields: Mapping[str, str]) -> str:
    """``"128"`` when the message needs a secondary bitmap (any field above 64), else ``"64"``."""
    return "128" if any(k.isdigit() and int(k) > 64 for k in fields) else "64"


def mac_of(mak: bytes, message: bytes) -> bytes:
    """The MAC of a packed message whose last 8 bytes are its MAC field."""
    try:
        return retail_mac(mak, message[:-MAC_LEN])
    except CryptoError as exc:
        raise LocalProtocolError(f"cannot MAC: {exc}") from exc


def pack_with_mac(fields: Mapping[str, str], mak: bytes) -> bytes:
    """Encode ``fields`` with the MAC field added last and computed over everything before it."""
    body = {k: v for k, v in fields.items() if k not in ("64", "128")}
    body[mac_field(body)] = "00" * MAC_LEN
    raw = pack(body)
    return raw[:-MAC_LEN] + mac_of(mak, raw)


def verify_mac(raw: bytes, mak: bytes, decoded: Fields | None = None) -> Fields:
    """Decode a received message and check its MAC. Raises RemoteProtocolError (tag 64/128) when it has no
    MAC, a MAC that is not its last field, or a wrong one: such a message is no answer at all. ``decoded``: the
    fields of ``raw`` when the caller has already decoded it (the transport does, to match the answer)."""
    fields = unpack(raw) if decoded is None else decoded
    key = mac_field(fields)
    numbered = [int(k) for k in fields if k.isdigit()]
    if key not in fields or max(numbered) != int(key) or len(raw) < MAC_LEN:
        raise RemoteProtocolError(f"message {fields['t']} carries no MAC in field {key}", tag=key)
    if not mac_matches(mac_of(mak, raw), raw[-MAC_LEN:]):
        raise RemoteProtocolError(f"message {fields['t']} has a wrong MAC", tag=key)
    return fields


def wrap_keys(tmk: bytes, keys: SessionKeys, *, corrupt_kcv: bool = False) -> str:
    """Field 62 of a sign-on answer (host side). ``corrupt_kcv`` flips a bit of the MAK check value (tests)."""
    out = b""
    for i, key in enumerate((keys.pik, keys.mak)):
        kcv = bytearray(kcv_tdes(key, KCV_LEN))
        if corrupt_kcv and i == 1:
            kcv[0] ^= 0x01
        out += tdes_ecb_encrypt(tmk, key) + bytes(kcv)
    return out.hex().upper()


def unwrap_keys(value: str, tmk: bytes) -> SessionKeys:
    """Decrypt and check the keys of a sign-on answer. Raises LinkSecurityError(SIGN_ON or KEY_CHECK)."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(value) != _FIELD_62_LEN or len(raw) != _FIELD_62_LEN // 2:
        raise LinkSecurityError("sign-on answer: field 62 is not 40 bytes of keys and check values",
                                LinkFault.SIGN_ON)
    clear = []
    for offset, name in ((0, "PIK"), (_KEY_LEN + KCV_LEN, "MAK")):
        key = tdes_ecb_decrypt(tmk, raw[offset:offset + _KEY_LEN])
        kcv = raw[offset + _KEY_LEN:offset + _KEY_LEN + KCV_LEN]
        if not mac_matches(kcv_tdes(key, KCV_LEN), kcv):
            raise LinkSecurityError(f"sign-on: the {name} check value does not match: keys refused",
                                    LinkFault.KEY_CHECK)
        if key[:8] == key[8:]:
            raise LinkSecurityError(f"sign-on: the {name} is a single-length key: refused", LinkFault.KEY_CHECK)
        clear.append(key)
    _separate(raw)
    return SessionKeys(pik=clear[0], mak=clear[1])


def accept_keys(value: str, tmk: bytes) -> TerminalKeys:
    """The terminal side of ``unwrap_keys``: only the MAK is deciphered and checked here; the PIK stays
    enciphered under the TMK for the PIN pad (``drivers.pinpad.PinPad.load_working_key``), whose LOAD_WORKING_KEY
    checks its check value. Raises LinkSecurityError(SIGN_ON or KEY_CHECK) for the MAK or a malformed field."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(value) != _FIELD_62_LEN or len(raw) != _FIELD_62_LEN // 2:
        raise LinkSecurityError("sign-on answer: field 62 is not 40 bytes of keys and check values",
                                LinkFault.SIGN_ON)
    at = _KEY_LEN + KCV_LEN
    mak = tdes_ecb_decrypt(tmk, raw[at:at + _KEY_LEN])
    if not mac_matches(kcv_tdes(mak, KCV_LEN), raw[at + _KEY_LEN:]):
        raise LinkSecurityError("sign-on: the MAK check value does not match: keys refused", LinkFault.KEY_CHECK)
    if mak[:8] == mak[8:]:
        raise LinkSecurityError("sign-on: the MAK is a single-length key: refused", LinkFault.KEY_CHECK)
    _separate(raw)
    return TerminalKeys(mak=mak, pik_under_tmk=raw[:_KEY_LEN], pik_kcv=raw[_KEY_LEN:at])


def _separate(raw: bytes) -> None:
    """Refuse field 62 (as bytes) whose PIK and MAK are one key: the same cryptogram or the same check value."""
    at = _KEY_LEN + KCV_LEN
    if raw[:_KEY_LEN] == raw[at:at + _KEY_LEN] or raw[_KEY_LEN:at] == raw[at + _KEY_LEN:]:
        log.error("sign-on refused: the acquirer delivered one key as both PIN key and MAC key (no key "
                  "separation); neither key is taken")
        raise LinkSecurityError("sign-on: the PIN key and the MAC key are the same key: refused",
                                LinkFault.KEY_SEPARATION)


def _network(nmi: str, stan: int, transmitted_at: dt.datetime, terminal_id: str, batch_number: int) -> Fields:
    return {"t": MTI_ECHO, "7": transmission_time(transmitted_at), "11": f"{stan:06d}",
            "41": terminal_id.ljust(8), "60": f"{batch_number:06d}", "70": nmi}


def build_sign_on(stan: int, *, transmitted_at: dt.datetime, terminal_id: str, batch_number: int = 1) -> Fields:
    """0800 sign-on (field 70 = 001): the answer's field 62 carries PIK and MAK under the TMK."""
    return _network(NMI_SIGN_ON, stan, transmitted_at, terminal_id, batch_number)


def build_sign_off(stan: int, *, transmitted_at: dt.datetime, terminal_id: str, batch_number: int = 1) -> Fields:
    """0800 sign-off (field 70 = 002): after the answer the host and the terminal forget the working keys."""
    return _network(NMI_SIGN_OFF, stan, transmitted_at, terminal_id, batch_number)
