"""``LinkDevice``: the client plumbing every device on our serial link shares (card reader, PIN pad).

Open and close the ``SerialLink`` (reopened on the next use after an unplug), send a command and check the
STATUS byte of its response against the device's table of errors (each with its ``DeviceFault`` code), and hand
unsolicited frames to ``_on_link_event`` and device events to listeners. A device client subclasses it with its
command set (a codec module) and its port methods; the codecs stay pure and the simulator imports them.

>>> class Lamp(LinkDevice):
...     name = "lamp"
>>> Lamp("loop://").is_open
False
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, ClassVar, Self

from drivers.link.core import Event
from drivers.link.payload import decode_response
from drivers.link.shell import SerialLink
from pos_errors import DeviceError, DeviceFault

__all__ = ["LinkDevice", "StatusError"]

log = logging.getLogger(__name__)

# Response STATUS -> (exception class, fault code, message for the log). OK is 0x00 on every device.
StatusError = tuple[type[DeviceError], DeviceFault, str]


class LinkDevice:
    """Base of the link device clients. Methods raise DeviceGone (port vanished or cannot be opened) or
    DeviceTimeout (no answer after the link's retries); a closed link is reopened on the next use.

    Subclasses set ``name`` (for messages), ``status_errors``, set up their own state in ``_setup`` (called at
    the end of ``__init__``, before any event can arrive) and override ``_on_link_event``.
    """

    name: ClassVar[str] = "device"
    status_errors: ClassVar[Mapping[int, StatusError]] = {}
    STATUS_OK: ClassVar[int] = 0x00

    def __init__(self, url: str, *, baud: int = 115200, ack_timeout_s: float = 0.2, retries: int = 8,
                 response_timeout_s: float = 5.0) -> None:
        self._link = SerialLink(url, baud=baud, ack_timeout_s=ack_timeout_s, retries=retries,
                                on_event=self._on_link_event)
        self._response_timeout_s = response_timeout_s
        self._listeners: list[Callable[[Any], None]] = []
        self._setup()

    @property
    def is_open(self) -> bool:
        return self._link.is_open

    def open(self) -> None:
        """Open the port. Raises DeviceGone."""
        self._link.open()

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(event)`` for every device event, on the link's reader thread (keep it short)."""
        self._listeners.append(callback)

    # --- for subclasses ---

    def _setup(self) -> None:
        """The subclass's own state (its events arrive on the link's reader thread once open)."""

    def _request(self, cmd: IntEnum, data: bytes = b"", extra_s: float = 0.0) -> tuple[int, bytes]:
        """Send ``cmd``; (STATUS, payload) of its response. Reopens a closed link first."""
        if not self._link.is_open:
            self.open()  # reopen after an unplug (or a device absent at start); DeviceGone if still away
        return decode_response(self._link.request(cmd, data, self._response_timeout_s + extra_s).data)

    def _check(self, cmd: IntEnum, status: int, payload: bytes) -> bytes:
        """The payload when ``status`` is OK; otherwise raise the table's error with its fault code."""
        if status == self.STATUS_OK:
            return payload
        error, fault, message = self.status_errors.get(
            status, (DeviceError, DeviceFault.OTHER, f"{self.name} status 0x{status:02X}"))
        raise error(f"{cmd.name}: {message}", fault=fault)

    def _call(self, cmd: IntEnum, data: bytes = b"") -> bytes:
        return self._check(cmd, *self._request(cmd, data))

    def _on_link_event(self, event: Event) -> None:
        """An unsolicited frame or a peer reset, on the link's reader thread."""

    def _notify(self, event: object) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # one faulty listener must not starve the others
                log.exception("%s listener failed", self.name)
