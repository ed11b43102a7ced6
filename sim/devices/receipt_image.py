"""A picture of a printed receipt, for a person to look at: ``PrinterSim.save_png(path)``.

Draws what the simulated printer decoded — alignment, bold, double size, QR symbols (from segno's module
matrix) — on a 384-dot-wide roll (58 mm at 203 dpi). Needs Pillow (``pip install -e '.[png]'``); without it
``render`` raises ``ImportError`` with that hint. Chinese needs a CJK font on the machine (Noto CJK, WenQuanYi…,
or ``POS_SIM_FONT=/path/font.ttf``); without one, CJK characters show as boxes and Latin text stays legible.

>>> _font_candidates()[-1].endswith("DejaVuSansMono.ttf")
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno

if TYPE_CHECKING:
    from sim.devices.printer import PrintedLine

__all__ = ["render", "WIDTH_DOTS"]

WIDTH_DOTS = 384
_MARGIN, _SIZE, _QR_MODULE = 8, 18, 4


def _font_candidates() -> list[str]:
    env = os.environ.get("POS_SIM_FONT")
    return [*([env] if env else []),
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
            "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
            "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"]


def _font(image_font: Any, size: int) -> Any:
    for path in _font_candidates():
        if Path(path).exists():
            return image_font.truetype(path, size)
    return image_font.load_default(size)


def render(lines: Sequence[PrintedLine], path: str | Path) -> Path:
    """Draw ``lines`` (one receipt) into a PNG at ``path``; returns the path."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise ImportError("saving a receipt as PNG needs Pillow: pip install -e '.[png]'") from exc
    fonts = {False: _font(ImageFont, _SIZE), True: _font(ImageFont, _SIZE * 2)}
    blocks: list[tuple[PrintedLine, int]] = []
    for line in lines:
        if line.qr is not None:
            blocks.append((line, len(segno.make(line.qr, error="m").matrix) * _QR_MODULE + 8 * _QR_MODULE))
        else:
            blocks.append((line, (_SIZE * 2 if line.double else _SIZE) + 6))
    image = Image.new("L", (WIDTH_DOTS, sum(h for _, h in blocks) + 2 * _MARGIN), 255)
    draw = ImageDraw.Draw(image)
    y = _MARGIN
    for line, height in blocks:
        if line.qr is not None:
            matrix = segno.make(line.qr, error="m").matrix
            size = len(matrix) * _QR_MODULE
            left = _x(line.align, size)
            for row, modules in enumerate(matrix):
                for col, dark in enumerate(modules):
                    if dark:
                        x0, y0 = left + col * _QR_MODULE, y + 4 * _QR_MODULE + row * _QR_MODULE
                        draw.rectangle((x0, y0, x0 + _QR_MODULE - 1, y0 + _QR_MODULE - 1), fill=0)
        else:
            font = fonts[line.double]
            width = int(draw.textlength(line.text, font=font))
            left = _x(line.align, width)
            for dx in (0, 1) if line.bold else (0,):  # a printer's emphasis: the same glyphs struck twice
                draw.text((left + dx, y), line.text, font=font, fill=0)
        y += height
    target = Path(path)
    image.save(target, format="PNG")
    return target


def _x(align: str, width: int) -> int:
    if align == "center":
        return max(_MARGIN, (WIDTH_DOTS - width) // 2)
    if align == "right":
        return max(_MARGIN, WIDTH_DOTS - _MARGIN - width)
    return _MARGIN
