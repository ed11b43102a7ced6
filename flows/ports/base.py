"""Port basics every group shares: the cancel flag blocking calls watch, the clock, the currency.

>>> CancelToken().cancelled
False
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol

__all__ = ["CURRENCY_CNY", "CancelToken", "Clock"]


CURRENCY_CNY = "156"


class CancelToken:
    """A flag one thread sets (CANCEL key, timeout) and blocking port calls watch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

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
