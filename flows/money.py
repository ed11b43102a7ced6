"""Money as the cashier and the receipt show it: integer fen in, ``￥12.50`` out.

The fullwidth ``￥`` (U+FFE5) is used everywhere because GB18030 printers print the ASCII-range ``¥`` (U+00A5) as
garbage.

>>> format_money(1250)
'￥12.50'
>>> format_money(-5)
'-￥0.05'
>>> parse_yuan("30"), parse_yuan("30.5"), parse_yuan("0.05"), parse_yuan("1.234"), parse_yuan(".")
(3000, 3050, 5, None, None)
"""

from __future__ import annotations

__all__ = ["format_money", "parse_yuan", "YUAN"]

YUAN = "\uffe5"


def format_money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{YUAN}{minor // 100}.{minor % 100:02d}"


def parse_yuan(text: str) -> int | None:
    """What the cashier keyed in yuan (digits, at most one decimal point, at most two decimals) in fen; None when
    it is not an amount."""
    whole, _, frac = text.partition(".")
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()) or len(frac) > 2:
        return None
    return int(whole or "0") * 100 + int(frac.ljust(2, "0"))
