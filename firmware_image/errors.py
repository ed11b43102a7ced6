"""Errors of the firmware package, which stands alone (it may not import ``pos_errors``, see ``.importlinter``).

The tree mirrors the product's: ``FirmwareImageError`` is a ``ValueError`` (malformed or untrusted input)::

    FirmwareError
    ├── FirmwareImageError       an image is malformed or fails verification (.reason: a Rejection)
    ├── KeyFileError             a key file cannot be read, or is of an unsupported type
    ├── FlashError               the simulated flash was misused (unaligned write, write over unerased bytes)
    ├── PowerCut                 test hook: the power failed during a flash operation
    └── FlashProtocolError       the flashing link failed (peer silent, bad frames)
        └── DeviceRefused        the device answered with an ERROR frame (refused image, bad request)

>>> issubclass(FirmwareImageError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["FirmwareError", "FirmwareImageError", "KeyFileError", "FlashError", "PowerCut", "FlashProtocolError",
           "DeviceRefused"]


class FirmwareError(Exception):
    """Root of the firmware package's errors."""


class FirmwareImageError(FirmwareError, ValueError):
    """The image is malformed or is refused; ``reason`` names the check that failed."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class KeyFileError(FirmwareError, ValueError):
    """A key file could not be used."""


class FlashError(FirmwareError):
    """A flash operation broke flash rules (the caller's bug, never a power failure)."""


class PowerCut(FirmwareError):
    """Raised by a simulated flash when a test cuts the power; the flash file holds what a real chip would."""


class FlashProtocolError(FirmwareError):
    """The flashing link failed or the device refused a request."""


class DeviceRefused(FlashProtocolError):
    """The device answered a request with an ERROR frame; the message is the device's, ``code`` its ERROR code
    (``refused``, ``on_trial`` …; ``""`` when the device sent none)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code
