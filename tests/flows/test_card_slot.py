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


class CountingReader(SlotReader):
    """``card_slot.SlotWatchPort``: insertions counted, the removal wait woken by each change (as the driver)."""

    def __init__(self, inserted_at=None):
        super().__init__(inserted_at)
        self.insertions, self.cond = int(inserted_at is not None), threading.Condition()

    def slot_mark(self):
        return self.insertions

    def move(self, inserted_at):
        with self.cond:
            self.inserted_at = inserted_at
            self.insertions += inserted_at is not None
            self.cond.notify_all()

    def wait_for_removal(self, timeout_s, cancel=None, since=None):
        mark = self.insertions if since is None else since
        with self.cond:
            return self.cond.wait_for(lambda: not self.card_present() or self.insertions != mark, timeout_s)


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
    reader = CountingReader(5.0)
    threading.Timer(0.1, reader.move, (None,)).start()
    assert card_slot.wait_removed(reader, 2.0, CancelToken(), card_slot.mark(reader))
    reader = CountingReader(5.0)
    threading.Timer(0.1, reader.move, (9.0,)).start()  # out and in again at once
    assert card_slot.wait_removed(reader, 2.0, CancelToken(), card_slot.mark(reader))


def test_the_mark_taken_before_asking_sees_an_out_and_in_already_over():
    reader = CountingReader(5.0)
    mark = card_slot.mark(reader)
    reader.move(9.0)  # the customer was faster than the flow thread: out and in before the wait began
    assert card_slot.wait_removed(reader, 0.3, CancelToken(), mark)
    assert card_slot.wait_removed(reader, 0.3, CancelToken(), card_slot.mark(reader)) is False  # the new one is in


def test_wait_removed_times_out_and_cancels():
    assert card_slot.wait_removed(SlotReader(5.0), 0.3, CancelToken()) is False
    assert card_slot.mark(SlotReader(5.0)) is None  # a reader that does not count insertions
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        card_slot.wait_removed(SlotReader(5.0), 2.0, token)


def test_beep_fault_never_stops_a_sale():
    card_slot.beep(BrokenBuzzer(5.0))
    reader = SlotReader(5.0)
    card_slot.beep(reader)
    assert reader.beeps == [card_slot.REMOVE_BEEP_MS]
