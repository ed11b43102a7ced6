"""A card left in the slot is never used for the next payment (issue 14 item 2): the pure rule and its waits."""

import threading

import pytest

from flows import card_slot
from flows.ports import CancelToken
from pos_errors import Cancelled, DeviceError


class SlotReader:
    """A reader that knows when its card went in; ``take_out`` / ``put_in`` happen from another thread."""

    def __init__(self, inserted_at=None):
        self.inserted_at, self.beeps = inserted_at, []

    def card_present(self):
        return self.inserted_at is not None

    def beep(self, duration_ms=100):
        self.beeps.append(duration_ms)

    def wait_for_removal(self, timeout_s):
        threading.Event().wait(timeout_s)
        return not self.card_present()


class BrokenBuzzer(SlotReader):
    def beep(self, duration_ms=100):
        raise DeviceError("buzzer")


@pytest.mark.parametrize(("inserted_at", "started_at", "refused"), [
    (5.0, 7.0, True),     # in before the sale: the previous customer's card
    (7.5, 7.0, False),    # inserted after the cashier confirmed
    (None, 7.0, False),   # empty slot
    (5.0, None, False),   # an order without a start time (older callers): as before
])
def test_from_before(inserted_at, started_at, refused):
    assert card_slot.from_before(SlotReader(inserted_at), started_at) is refused


def test_a_reader_that_cannot_tell_is_trusted():
    class Plain:
        def card_present(self):
            return True
    assert card_slot.from_before(Plain(), 7.0) is False


def test_wait_removed_sees_a_card_taken_out_and_one_swapped_in_between_two_looks():
    reader = SlotReader(5.0)
    threading.Timer(0.1, lambda: setattr(reader, "inserted_at", None)).start()
    assert card_slot.wait_removed(reader, 2.0, CancelToken())
    reader = SlotReader(5.0)
    threading.Timer(0.1, lambda: setattr(reader, "inserted_at", 9.0)).start()  # out and in again at once
    assert card_slot.wait_removed(reader, 2.0, CancelToken())


def test_wait_removed_times_out_and_cancels():
    assert card_slot.wait_removed(SlotReader(5.0), 0.3, CancelToken()) is False
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        card_slot.wait_removed(SlotReader(5.0), 2.0, token)


def test_beep_fault_never_stops_a_sale():
    card_slot.beep(BrokenBuzzer(5.0))
    reader = SlotReader(5.0)
    card_slot.beep(reader)
    assert reader.beeps == [card_slot.REMOVE_BEEP_MS]
