"""Issue 18: ``make docs`` makes the README's pictures from a real chip sale keyed into the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.docs_pictures import make_pictures


@pytest.mark.slow
def test_the_pictures_show_a_finished_sale(tmp_path: Path) -> None:
    svg, png = make_pictures(tmp_path)
    assert (svg.name, png.name) == ("simulator.svg", "receipt.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text(encoding="utf-8")
    assert text.startswith("<svg") and "Top-up" in text.replace("&#160;", " ")
