"""Money as the cashier and the receipt show it: integer fen in, ``￥12.50`` out.

The fullwidth ``￥`` (U+FFE5) is used everywhere because GB18030 printers print the ASCII-range ``¥`` (U+00A5) as
garbage.

>>> format_money(1250)
'￥12.50'
>>> format_money(-5)
'-￥0.05'
"""

from __future__ import annotations

__all__ = ["format_money", "YUAN"]

YUAN = "\uffe5"


def format_money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{YUAN}{minor // 100}.{minor % 100:02d}"
