"""How a PAN may be shown: the one masking rule every layer uses (first 6 / last 4, PCI DSS display rule).

>>> mask_pan("6212345678901234")
'621234******1234'
"""

from __future__ import annotations

__all__ = ["mask_pan"]


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, the rest as ``*`` (PCI DSS display rule).

    >>> mask_pan("6212345678901234")
    '621234******1234'
    """
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
