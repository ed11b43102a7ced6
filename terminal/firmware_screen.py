"""The Firmware screen of the terminal (issue 7 item 3): both A/B slots, F1 confirms the running test image, F2
reverts to the other slot after a confirmation step. Supervisors and technicians (``Action.FIRMWARE``); writing a
new build stays with technicians (``Action.FLASH``, ``pos-fw flash``).

The slot machinery is ``firmware_image.slots``; this module only reads it, asks, audits (``firmware_confirm`` /
``firmware_revert`` with the slot and version) and says the outcome in the catalogue's words. Flash work is a few
small reads and writes of a local file, so it runs on the app thread like the settings screen.

>>> revert_problem([], 0)
'fw.err_nothing_running'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from firmware_image.errors import FirmwareError
from firmware_image.flash import SimFlash
from firmware_image.keys import PrivateKey, PublicKey, load_key
from firmware_image.slots import SlotInfo, SlotState, confirm, describe_flash, read_counter, revert
from flows.messages import Msg, t
from terminal.config import FirmwareSection
from terminal.machine import State
from terminal.office_users import UserKeys
from terminal.screens import Key, Screen
from terminal.views import Session

__all__ = ["FirmwareKeys", "read_slots", "revert_problem", "render_firmware", "render_firmware_revert",
           "FIRMWARE_RENDERERS"]

log = logging.getLogger("terminal.firmware")


class FirmwareKeyError(FirmwareError):
    """The configured public key could not be loaded (the screen says so; the flash is untouched)."""


def read_slots(section: FirmwareSection) -> tuple[list[SlotInfo], int]:
    """Both slots (checked against the configured key when there is one) and the stored rollback counter.

    Raises:
        FirmwareKeyError: ``public_key`` is set but unreadable.
        FirmwareError, OSError: the flash file is missing or not a flash image.
    """
    keys: list[PrivateKey | PublicKey] | None = None
    if section.public_key:
        try:
            keys = [load_key(section.public_key)]
        except (FirmwareError, OSError) as exc:
            raise FirmwareKeyError(str(exc)) from exc
    with SimFlash(section.flash) as flash:
        return describe_flash(flash, keys, section.device_class), read_counter(flash)


def _running(slots: Sequence[SlotInfo]) -> SlotInfo | None:
    return next((s for s in slots if s.running), None)


def revert_problem(slots: Sequence[SlotInfo], counter: int) -> str | None:
    """Why a revert cannot happen (a catalogue key), or None: the checks ``slots.revert`` makes, plus (when a
    public key is configured) that the launcher would accept the other slot's image at all."""
    running = _running(slots)
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


class FirmwareKeys(UserKeys):
    """Mixin of ``TerminalApp`` (through ``OfficeKeys``): the two firmware screens' key handlers."""

    def _open_firmware(self) -> None:
        self.session.error, self.session.office.info = None, None
        self._load_slots()
        self._fire("open_firmware")

    def _load_slots(self) -> bool:
        """Fill the screen's slot list; False (and an error line) when the flash or key cannot be read."""
        o, section = self.session.office, self.settings.firmware
        o.firmware_configured, o.firmware, o.firmware_counter = bool(section.flash), [], 0
        if not section.flash:
            return False
        try:
            o.firmware, o.firmware_counter = read_slots(section)
        except FirmwareKeyError as exc:
            log.warning("firmware key: %s", exc)
            self.session.error = self._say("fw.err_key")
            return False
        except (FirmwareError, OSError) as exc:
            log.warning("firmware flash %s: %s", section.flash, exc)
            self.session.error = self._say("fw.err_flash")
            return False
        return True

    def _key_firmware(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if key is Key.CANCEL:
            o.firmware, o.info = [], None
            self._go_home()
            return
        s.error, o.info = None, None
        if key is Key.ENTER:
            self._load_slots()
        elif key is Key.F1 and self._load_slots():
            self._confirm_trial()
        elif key is Key.F2 and self._load_slots():
            problem = revert_problem(o.firmware, o.firmware_counter)
            if problem is None:
                self._fire("ask_revert")
                return
            s.error = self._say(problem)
        self._refresh()

    def _confirm_trial(self) -> None:
        s, o = self.session, self.session.office
        trial = next((x for x in o.firmware if x.state is SlotState.TRIAL), None)
        if trial is None:
            o.info = self._say("fw.nothing_to_confirm")
            return
        what = f"slot {trial.slot} {trial.version} counter {trial.security_counter}"
        try:
            done = confirm(self.settings.firmware.flash)
        except (FirmwareError, OSError) as exc:
            self._audit("firmware_confirm", f"{what} failed: {exc}")
            s.error = self._say("fw.err_flash")
            return
        self._audit("firmware_confirm", what if done else f"{what} failed: no longer on trial")
        if done:
            o.info = self._say("fw.confirmed", slot=trial.slot, version=trial.version)
        else:
            s.error = self._say("fw.err_flash")
        self._load_slots()

    def _key_firmware_revert(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if key is Key.CANCEL:
            s.error = None
            self._fire("back")
        elif key is Key.F1:  # not ENTER: a bounced ENTER must not revert
            running = _running(o.firmware)
            target = o.firmware[1 - running.slot] if running else None
            what = (f"slot {running.slot} {running.version} -> slot {target.slot} {target.version}"
                    if running and target else "?")
            try:
                now = revert(self.settings.firmware.flash)
            except (FirmwareError, OSError) as exc:
                self._audit("firmware_revert", f"{what} failed: {exc}")
                s.error = self._say("fw.err_flash")
            else:
                self._audit("firmware_revert", what)
                version = target.version if target and target.slot == now else "?"
                o.info, s.error = self._say("fw.reverted", slot=now, version=version), None
            error = s.error
            self._load_slots()
            s.error = s.error or error
            self._fire("back")


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
    running = _running(o.firmware)
    return Screen(State.FIRMWARE.value, _t(s, "fw.title"), tuple(lines), error=s.error, hint=_t(s, "fw.hint"),
                  extra={"running": "" if running is None else str(running.slot)})


def render_firmware_revert(s: Session) -> Screen:
    o = s.office
    running = _running(o.firmware)
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
