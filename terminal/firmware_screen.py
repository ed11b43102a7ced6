"""The Firmware screen of the terminal (issue 7 item 3): both A/B slots, F1 confirms the running test image, F2
reverts to the other slot after a confirmation step. Supervisors and technicians (``Action.FIRMWARE``); writing a
new build stays with technicians (``Action.FLASH``, ``pos-fw flash``).

The slot machinery is ``firmware_image.slots``; this module only reads it, asks, audits (``firmware_confirm`` /
``firmware_revert`` with the slot and version) and says the outcome in the catalogue's words. Flash work is a few
small reads and writes of a local file; the keys are ``terminal.handlers.firmware``.

>>> revert_problem([], 0)
'fw.err_nothing_running'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from firmware_image.errors import FirmwareError
from flows.messages import Msg, t
from terminal.config import FirmwareSection
from terminal.machine import State
from terminal.screens import Screen
from terminal.views import Session

if TYPE_CHECKING:  # the slot machinery (construct, image parsing, keys) is imported when the screen opens
    from firmware_image.keys import PrivateKey, PublicKey
    from firmware_image.slots import SlotInfo

__all__ = ["FirmwareKeyError", "running_slot", "read_slots", "revert_problem", "render_firmware",
           "render_firmware_revert", "FIRMWARE_RENDERERS"]

class FirmwareKeyError(FirmwareError):
    """The configured public key could not be loaded (the screen says so; the flash is untouched)."""


def read_slots(section: FirmwareSection) -> tuple[list[SlotInfo], int]:
    """Both slots (checked against the configured key when there is one) and the stored rollback counter.

    Raises:
        FirmwareKeyError: ``public_key`` is set but unreadable.
        FirmwareError, OSError: the flash file is missing or not a flash image.
    """
    from firmware_image.flash import SimFlash  # here, not at import: issue 17 (off the boot path)
    from firmware_image.keys import load_key
    from firmware_image.slots import describe_flash, read_counter

    keys: list[PrivateKey | PublicKey] | None = None
    if section.public_key:
        try:
            keys = [load_key(section.public_key)]
        except (FirmwareError, OSError) as exc:
            raise FirmwareKeyError(str(exc)) from exc
    with SimFlash(section.flash) as flash:
        return describe_flash(flash, keys, section.device_class), read_counter(flash)


def running_slot(slots: Sequence[SlotInfo]) -> SlotInfo | None:
    """The slot the terminal runs from, if any."""
    return next((s for s in slots if s.running), None)


def revert_problem(slots: Sequence[SlotInfo], counter: int) -> str | None:
    """Why a revert cannot happen (a catalogue key), or None: the checks ``slots.revert`` makes, plus (when a
    public key is configured) that the launcher would accept the other slot's image at all."""
    from firmware_image.slots import SlotState

    running = running_slot(slots)
    if running is None:
        return "fw.err_nothing_running"
    other = slots[1 - running.slot]
    if other.state is not SlotState.CONFIRMED or other.version is None:
        return "fw.err_no_fallback"
    if (other.security_counter or 0) < counter:
        return "fw.err_rollback"
    if other.problem:  # signature, key or device class: the launcher would refuse it and nothing would boot
        return "fw.err_untrusted"
    return None


# --- view models -----------------------------------------------------------------------------------------------


def _t(s: Session, key: str, **args: Any) -> str:
    return t(key, s.lang, **args)


def _slot_line(s: Session, info: SlotInfo) -> list[str]:
    line = _t(s, "fw.slot", slot=info.slot, version=info.version or Msg("fw.no_image"),
              state=Msg(f"fw.state.{info.state.value}"),
              counter="-" if info.security_counter is None else info.security_counter,
              running=Msg("fw.running") if info.running else "")
    return [line, *([_t(s, "fw.problem", problem=info.problem)] if info.problem else [])]


def render_firmware(s: Session) -> Screen:
    o = s.office
    if not o.firmware_configured:
        lines = [_t(s, "fw.none")]
    else:
        lines = [x for info in o.firmware for x in _slot_line(s, info)]
        lines.append(_t(s, "fw.counter", counter=o.firmware_counter))
    if o.info:
        lines.append(o.info)
    running = running_slot(o.firmware)
    return Screen(State.FIRMWARE.value, _t(s, "fw.title"), tuple(lines), error=s.error, hint=_t(s, "fw.hint"),
                  extra={"running": "" if running is None else str(running.slot)})


def render_firmware_revert(s: Session) -> Screen:
    o = s.office
    running = running_slot(o.firmware)
    lines = []
    if running is not None:
        other = o.firmware[1 - running.slot]
        lines.append(_t(s, "fw.revert_body", from_slot=running.slot, from_version=running.version,
                        to_slot=other.slot, to_version=other.version))
    return Screen(State.FIRMWARE_REVERT.value, _t(s, "fw.revert_title"), tuple(lines), error=s.error,
                  hint=_t(s, "fw.revert_hint"))


FIRMWARE_RENDERERS: dict[State, Callable[[Session], Screen]] = {
    State.FIRMWARE: render_firmware, State.FIRMWARE_REVERT: render_firmware_revert,
}
