"""Port basics every group shares: the cancel flag blocking calls watch, the clock, the currency.

>>> CancelToken().cancelled
False
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["CURRENCY_CNY", "CancelToken", "Clock"]


CURRENCY_CNY = "156"


class CancelToken:
    """A flag one thread sets (CANCEL key, timeout) and blocking port calls watch: they ``wait`` on it, or have it
    wake them (``on_cancel``) instead of looking at it every few milliseconds."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:  # on the cancelling thread, outside the lock: a waker may take its own locks
            wake()

    def on_cancel(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` once when the token is cancelled (at once, here, if it already is); returns a function
        that takes it back (call it when the wait is over). ``wake`` runs on the cancelling thread: it should
        only hand a note to the waiter (a queue put, a condition notify) and must not raise."""
        with self._lock:
            if not self._event.is_set():
                self._wakers.append(wake)
                return lambda: self._forget(wake)
        wake()
        return lambda: None

    def _forget(self, wake: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):  # already called and dropped by ``cancel``
            self._wakers.remove(wake)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; True if cancelled meanwhile."""
        return self._event.wait(timeout_s)


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...
