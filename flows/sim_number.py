"""SIM numbers as the cashier keys them: ICCID (19–20 digits, ITU-T E.118, Luhn check digit) or MSISDN.

Chinese IoT SIMs carry 13-digit MSISDNs (1064…, 1440…, 148…); ordinary numbers have 11. A wrong ICCID check
digit is a warning the cashier may override (some ICCIDs carry letters or vendor check digits), never a block.

>>> check_sim_number("89860112345678901237").kind
'iccid'
>>> check_sim_number("1064912345678").kind
'msisdn'
>>> check_sim_number("12ab").error.render("en")
'Digits only'
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.messages import Msg

__all__ = ["SimNumberCheck", "check_sim_number", "luhn_ok", "group_digits", "group_msisdn"]


@dataclass(frozen=True)
class SimNumberCheck:
    """Verdict on a keyed number: ``error`` blocks, ``warning`` needs the cashier's confirmation."""

    number: str
    kind: str = ""
    error: Msg | None = None
    warning: Msg | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def luhn_ok(digits: str) -> bool:
    """True when the last digit is the Luhn check digit of the rest (ISO/IEC 7812-1 Annex B)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def group_digits(number: str, size: int = 4) -> str:
    """``8986 0112 3456 …`` for reading aloud and comparing.

    >>> group_digits("1064912345678")
    '1064 9123 4567 8'
    """
    return " ".join(number[i:i + size] for i in range(0, len(number), size))


def group_msisdn(number: str) -> str:
    """A mobile number whole, grouped from its end so that its last four digits (which the confirm step asks to
    re-key) are one group: 3-4-4 for 11 digits, 5-4-4 for the 13-digit IoT numbers.

    >>> group_msisdn("1064900000001"), group_msisdn("13800138000")
    ('10649 0000 0001', '138 0013 8000')
    """
    head = len(number) % 4
    head = head + 4 if head == 1 and len(number) > 4 else head
    rest = number[head:]
    groups = ([number[:head]] if head else []) + [rest[i:i + 4] for i in range(0, len(rest), 4)]
    return " ".join(groups)


def check_sim_number(raw: str) -> SimNumberCheck:
    number = raw.strip().replace(" ", "")
    if not number:
        return SimNumberCheck(number, error=Msg("simno.empty"))
    if not number.isdigit():
        return SimNumberCheck(number, error=Msg("simno.digits"))
    if len(number) in (11, 13):
        if not number.startswith("1"):
            return SimNumberCheck(number, error=Msg("simno.msisdn_1"))
        return SimNumberCheck(number, kind="msisdn")
    if len(number) in (19, 20):
        if not number.startswith("89"):
            return SimNumberCheck(number, error=Msg("simno.iccid_89"))
        if not luhn_ok(number):
            return SimNumberCheck(number, kind="iccid", warning=Msg("simno.check_digit"))
        return SimNumberCheck(number, kind="iccid")
    return SimNumberCheck(number, error=Msg("simno.length", {"n": len(number)}))
