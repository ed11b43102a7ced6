"""Terminal risk management (EMV 4.4 Book 3 §10.6) and the terminal exception file (Book 4 §6.3.4).

Performed when the AIP asks for it (B1b4). Each check only sets TVR bits; terminal action analysis decides.

* floor limit (§10.6.1): amount ≥ the AID's floor limit → "transaction exceeds floor limit" (B4b8);
* random transaction selection (§10.6.2): under the floor limit, a random number 1–99 at or below the
  target percentage — which rises linearly from ``target_percent`` at the threshold to ``max_target_percent``
  at the floor limit — sets "selected randomly for online processing" (B4b5). The number comes from the
  injected unpredictable number, so tests are deterministic;
* velocity checking (§10.6.3): only when the card has LCOL ``9F14`` and UCOL ``9F23``: GET DATA ATC ``9F36``
  and Last Online ATC Register ``9F13``; ATC − last online ATC above LCOL sets B4b7, above UCOL B4b6; either
  unobtainable sets both; a last online ATC of zero sets "new card" (B2b4);
* exception file: the PAN (or ``PAN-PSN``) listed sets "card appears on terminal exception file" (B1b5).

>>> random_selection(500, floor_limit=1000, threshold=0, target=20, max_target=60, random_number=39)
True
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from emv import apdu, tlv
from emv.actions import Step, transmit
from emv.config import AidConfig
from emv.tvr import BitField, TsiBit, TvrBit
from pos_errors import RemoteProtocolError

__all__ = ["manage_risk", "random_selection", "check_exception_file"]


def random_selection(amount: int, *, floor_limit: int, threshold: int, target: int, max_target: int,
                     random_number: int) -> bool:
    """Book 3 §10.6.2; ``random_number`` is 1..99."""
    if amount >= floor_limit or target == 0 and max_target == 0:
        return False
    if amount < threshold:
        return random_number <= target
    span = max(floor_limit - threshold, 1)
    percent = target + (max_target - target) * (amount - threshold) / span
    return random_number <= percent


def check_exception_file(pan: str, psn: str | None, exception_file: Container[str],
                         tvr: BitField[TvrBit]) -> None:
    if pan in exception_file or (psn is not None and f"{pan}-{psn}" in exception_file):
        tvr.set(TvrBit.CARD_ON_EXCEPTION_FILE)


def _get_data(tag: int, then: tuple[bytes, ...] = ()) -> Step[bytes | None]:
    response = yield from transmit(apdu.get_data(tag), f"GET DATA {tag:X}", then=then)
    if not response.ok:
        return None
    try:
        value = tlv.first(tlv.decode(response.data), tag)
    except RemoteProtocolError:
        return None
    return value if value is not None and len(value) == 2 else None


def manage_risk(amount: int, aid: AidConfig, card: Mapping[int, bytes], random_number: int,
                tvr: BitField[TvrBit], tsi: BitField[TsiBit]) -> Step[None]:
    """Floor limit, random selection and velocity checking; sets TSI "TRM performed" (B1b4)."""
    if amount >= aid.floor_limit_minor:
        tvr.set(TvrBit.EXCEEDS_FLOOR_LIMIT)
    elif random_selection(amount, floor_limit=aid.floor_limit_minor, threshold=aid.threshold_minor,
                          target=aid.target_percent, max_target=aid.max_target_percent,
                          random_number=random_number):
        tvr.set(TvrBit.SELECTED_RANDOMLY_FOR_ONLINE)
    lcol, ucol = card.get(0x9F14), card.get(0x9F23)
    if lcol and ucol:
        atc = yield from _get_data(0x9F36, then=(apdu.get_data(0x9F13),))  # both asked whatever the first says
        last_online = yield from _get_data(0x9F13)
        if atc is None or last_online is None:
            tvr.set(TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
            tvr.set(TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
        else:
            offline = int.from_bytes(atc, "big") - int.from_bytes(last_online, "big")
            if offline > lcol[0]:
                tvr.set(TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
            if offline > ucol[0]:
                tvr.set(TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
            if not any(last_online):
                tvr.set(TvrBit.NEW_CARD)
    tsi.set(TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED)
