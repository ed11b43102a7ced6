"""The simulator shows the contactless reader's lights, beeps and field to the person at the counter (status
panel), and a tapped card is the same card on its next tap (its ATC goes on)."""

from __future__ import annotations

from drivers.card_reader_codec import Led
from sim.runner.world import SimWorld


def test_reader_lights_line_and_one_card_object_per_key() -> None:
    world = SimWorld()
    try:
        assert world.reader_lights() == "Tap: ○blue ○yellow ○green ○red · 0 beeps · field empty"
        world.reader.leds = Led.BLUE | Led.RED
        world.reader.beeps.append(400)
        world.tap_card("quickpass-debit")
        assert world.reader_lights() == "Tap: ●blue ○yellow ○green ●red · 1 beeps · card in the field"
        assert world.reader_lights() in world.status_lines()
        first = world.reader._field[0]  # type: ignore[index]
        world.reader.take_away()
        world.tap_card("quickpass-debit")
        assert world.reader._field[0] is first  # type: ignore[index]
    finally:
        world.stop()
