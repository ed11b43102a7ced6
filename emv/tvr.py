"""Terminal Verification Results and what sets them: bit tables of the TVR ``95``, TSI ``9B`` and AIP ``82``;
processing restrictions, terminal risk management and terminal action analysis (EMV 4.4 Book 3 §10.4, §10.6,
§10.7) as pure functions over the TVR, called by the kernel in that order.

Each table is an ``Enum`` whose value is ``(byte, mask)`` with ``byte`` counted from 1 as in the spec, so the
code reads like Book 3 Annex C1 (AIP), C5 (TVR) and C6 (TSI). Terminal action analysis compares the TVR with
the Issuer Action Codes (card: ``9F0D`` default, ``9F0E`` denial, ``9F0F`` online) and the Terminal Action
Codes (configuration): a bit set in the TVR and a Denial code asks for an AAC; otherwise, on an online-capable
terminal, a bit in an Online code asks for an ARQC and no match asks for a TC. An absent IAC-Denial counts as
all zeros, absent IAC-Online and IAC-Default as all ones (Book 3 §10.7).

>>> tvr = BitField(TvrBit, 5)
>>> tvr.set(TvrBit.ODA_NOT_PERFORMED); tvr.set(TvrBit.EXCEEDS_FLOOR_LIMIT)
>>> bytes(tvr).hex().upper(), TvrBit.EXPIRED_APPLICATION in tvr
('8000008000', False)
>>> decide(bytes(tvr), {}, tac_denial=bytes(5), tac_online=bytes.fromhex("DC4004F800"), tac_default=bytes(5),
...        online_capable=True)
(<CryptogramType.ARQC: 128>, 'TVR matches IAC-Online/TAC-Online')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Generic, TypeVar

from emv.apdu import CryptogramType
from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = ["TvrBit", "TsiBit", "AipBit", "BitField", "bits_set", "parse_date", "check_restrictions",
           "check_floor_limit", "decide", "default_action", "AUC_BITS"]


class TvrBit(Enum):
    """Terminal Verification Results (Book 3 Annex C5)."""

    # byte 1: offline data authentication
    ODA_NOT_PERFORMED = (1, 0x80)
    SDA_FAILED = (1, 0x40)
    ICC_DATA_MISSING = (1, 0x20)
    CARD_ON_EXCEPTION_FILE = (1, 0x10)
    DDA_FAILED = (1, 0x08)
    CDA_FAILED = (1, 0x04)
    SDA_SELECTED = (1, 0x02)
    # byte 2: processing restrictions
    DIFFERENT_APPLICATION_VERSIONS = (2, 0x80)
    EXPIRED_APPLICATION = (2, 0x40)
    APPLICATION_NOT_YET_EFFECTIVE = (2, 0x20)
    SERVICE_NOT_ALLOWED = (2, 0x10)
    NEW_CARD = (2, 0x08)
    # byte 3: cardholder verification
    CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL = (3, 0x80)
    UNRECOGNISED_CVM = (3, 0x40)
    PIN_TRY_LIMIT_EXCEEDED = (3, 0x20)
    PIN_PAD_NOT_PRESENT_OR_NOT_WORKING = (3, 0x10)
    PIN_NOT_ENTERED = (3, 0x08)
    ONLINE_PIN_ENTERED = (3, 0x04)
    # byte 4: terminal risk management
    EXCEEDS_FLOOR_LIMIT = (4, 0x80)
    LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = (4, 0x40)
    UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = (4, 0x20)
    SELECTED_RANDOMLY_FOR_ONLINE = (4, 0x10)
    MERCHANT_FORCED_ONLINE = (4, 0x08)
    # byte 5: issuer authentication and scripts
    DEFAULT_TDOL_USED = (5, 0x80)
    ISSUER_AUTHENTICATION_FAILED = (5, 0x40)
    SCRIPT_FAILED_BEFORE_FINAL_GENERATE_AC = (5, 0x20)
    SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC = (5, 0x10)


class TsiBit(Enum):
    """Transaction Status Information (Book 3 Annex C6)."""

    ODA_PERFORMED = (1, 0x80)
    CARDHOLDER_VERIFICATION_PERFORMED = (1, 0x40)
    CARD_RISK_MANAGEMENT_PERFORMED = (1, 0x20)
    ISSUER_AUTHENTICATION_PERFORMED = (1, 0x10)
    TERMINAL_RISK_MANAGEMENT_PERFORMED = (1, 0x08)
    SCRIPT_PROCESSING_PERFORMED = (1, 0x04)


class AipBit(Enum):
    """Application Interchange Profile (Book 3 Annex C1)."""

    SDA_SUPPORTED = (1, 0x40)
    DDA_SUPPORTED = (1, 0x20)
    CARDHOLDER_VERIFICATION_SUPPORTED = (1, 0x10)
    TERMINAL_RISK_MANAGEMENT_TO_BE_PERFORMED = (1, 0x08)
    ISSUER_AUTHENTICATION_SUPPORTED = (1, 0x04)
    CDA_SUPPORTED = (1, 0x01)


E = TypeVar("E", TvrBit, TsiBit, AipBit)


class BitField(Generic[E]):
    """A fixed-size mutable bit field addressed by the members of one of the tables above."""

    def __init__(self, table: type[E], size: int, value: bytes | None = None) -> None:
        self._table: type[E] = table
        self._bytes = bytearray(value if value is not None else bytes(size))
        if len(self._bytes) != size:
            raise LocalProtocolError(f"{table.__name__} is {size} bytes, not {len(self._bytes)}")

    def set(self, bit: E) -> None:
        index, mask = bit.value
        self._bytes[index - 1] |= mask

    def clear(self, bit: E) -> None:
        index, mask = bit.value
        self._bytes[index - 1] &= ~mask & 0xFF

    def __contains__(self, bit: E) -> bool:
        index, mask = bit.value
        return bool(self._bytes[index - 1] & mask)

    def __iter__(self) -> Iterator[E]:
        """The bits that are set, in table order."""
        return (bit for bit in self._table if bit in self)

    def __bytes__(self) -> bytes:
        return bytes(self._bytes)

    def __repr__(self) -> str:
        return f"{self._table.__name__}({bytes(self._bytes).hex().upper()})"


def bits_set(table: type[E], value: bytes) -> list[str]:
    """Names of the bits set in ``value`` (for logs and receipts), e.g. ``['ODA_NOT_PERFORMED']``."""
    return [bit.name for bit in table
            if len(value) >= bit.value[0] and value[bit.value[0] - 1] & bit.value[1]]


# --- processing restrictions, risk management, action analysis ---------------------------------------------

# Application Usage Control 9F07 byte 1 (Book 3 Annex C2)
AUC_BITS: dict[str, int] = {
    "domestic cash": 0x80,
    "international cash": 0x40,
    "domestic goods": 0x20,
    "international goods": 0x10,
    "domestic services": 0x08,
    "international services": 0x04,
    "ATMs": 0x02,
    "terminals other than ATMs": 0x01,
}


def parse_date(value: bytes, tag: str) -> dt.date:
    """A YYMMDD ``n6`` date; YY 00–49 is 20YY, 50–99 is 19YY (Book 3 §10.4.3). RemoteProtocolError if bad."""
    digits = value.hex()
    if len(value) != 3 or not digits.isdigit():
        raise RemoteProtocolError(f"{tag} is not an n6 date", tag=tag)
    yy, mm, dd = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    try:
        return dt.date(2000 + yy if yy < 50 else 1900 + yy, mm, dd)
    except ValueError as exc:
        raise RemoteProtocolError(f"{tag} {digits} is not a calendar date", tag=tag) from exc


def check_restrictions(card: Mapping[int, bytes], *, today: dt.date, app_versions: tuple[bytes, ...],
                       country_code: bytes, tvr: BitField[TvrBit], transaction_type: int = 0x00,
                       atm: bool = False) -> None:
    """Book 3 §10.4: application version, usage control (AUC ``9F07`` vs transaction type, country and
    terminal kind) and dates."""
    version = card.get(0x9F08)
    if version is not None and app_versions and version not in app_versions:  # §10.4.1
        tvr.set(TvrBit.DIFFERENT_APPLICATION_VERSIONS)
    auc = card.get(0x9F07)
    if auc and not _usage_allowed(auc, domestic=card.get(0x5F28) == country_code,
                                  transaction_type=transaction_type, atm=atm):  # §10.4.2
        tvr.set(TvrBit.SERVICE_NOT_ALLOWED)
    effective = card.get(0x5F25)
    if effective is not None and today < parse_date(effective, "5F25"):  # §10.4.3
        tvr.set(TvrBit.APPLICATION_NOT_YET_EFFECTIVE)
    if today > parse_date(card[0x5F24], "5F24"):
        tvr.set(TvrBit.EXPIRED_APPLICATION)


def _usage_allowed(auc: bytes, *, domestic: bool, transaction_type: int, atm: bool) -> bool:
    """AUC byte 1 (cash, goods, services, ATM / other terminals), byte 2 (cashback) — Book 3 Annex C2.
    Without an Issuer Country Code the transaction counts as international only for the country checks."""
    byte1 = auc[0]
    byte2 = auc[1] if len(auc) > 1 else 0
    if not byte1 & (AUC_BITS["ATMs"] if atm else AUC_BITS["terminals other than ATMs"]):
        return False
    where = "domestic" if domestic else "international"
    if transaction_type == 0x01:  # cash
        return bool(byte1 & AUC_BITS[f"{where} cash"])
    if transaction_type == 0x09:  # purchase with cashback
        return bool(byte2 & (0x80 if domestic else 0x40)) and bool(
            byte1 & (AUC_BITS[f"{where} goods"] | AUC_BITS[f"{where} services"]))
    return bool(byte1 & (AUC_BITS[f"{where} goods"] | AUC_BITS[f"{where} services"]))


def check_floor_limit(amount_minor: int, floor_limit_minor: int, tvr: BitField[TvrBit]) -> None:
    """Book 3 §10.6.1: amount at or above the floor limit sets 'transaction exceeds floor limit'."""
    if amount_minor >= floor_limit_minor:
        tvr.set(TvrBit.EXCEEDS_FLOOR_LIMIT)


def _matches(tvr: bytes, code: bytes) -> bool:
    return any(t & c for t, c in zip(tvr, code, strict=True))


def decide(tvr: bytes, card: Mapping[int, bytes], *, tac_denial: bytes, tac_online: bytes, tac_default: bytes,
           online_capable: bool) -> tuple[CryptogramType, str]:
    """The cryptogram to ask for at the first GENERATE AC and why (Book 3 §10.7)."""
    iac_denial = card.get(0x9F0E) or bytes(5)
    iac_online = card.get(0x9F0F) or b"\xff" * 5
    iac_default = card.get(0x9F0D) or b"\xff" * 5
    for code in (iac_denial, iac_online, iac_default):
        if len(code) != 5:
            raise RemoteProtocolError("an Issuer Action Code is 5 bytes", tag="9F0D/9F0E/9F0F")
    if _matches(tvr, iac_denial) or _matches(tvr, tac_denial):
        return CryptogramType.AAC, "TVR matches IAC-Denial/TAC-Denial"
    if online_capable:
        if _matches(tvr, iac_online) or _matches(tvr, tac_online):
            return CryptogramType.ARQC, "TVR matches IAC-Online/TAC-Online"
        return CryptogramType.TC, "no online action code matches"
    if _matches(tvr, iac_default) or _matches(tvr, tac_default):  # offline-only terminal
        return CryptogramType.AAC, "TVR matches IAC-Default/TAC-Default"
    return CryptogramType.TC, "no action code matches"


def default_action(tvr: bytes, card: Mapping[int, bytes], *, tac_default: bytes) -> tuple[CryptogramType, str]:
    """Unable to go online (Book 3 §10.7 "default action", Book 4 §6.3.8): IAC-Default or TAC-Default
    matching the TVR → AAC (ARC ``Z3``), otherwise TC (``Y3``). An absent IAC-Default counts as all ones."""
    iac_default = card.get(0x9F0D) or b"\xff" * 5
    if len(iac_default) != 5:
        raise RemoteProtocolError("an Issuer Action Code is 5 bytes", tag="9F0D")
    if _matches(tvr, iac_default) or _matches(tvr, tac_default):
        return CryptogramType.AAC, "TVR matches IAC-Default/TAC-Default"
    return CryptogramType.TC, "no default action code matches"

