"""The firmware screens (supervisor, technician): both A/B slots, F1 confirms the running test image, F2 asks
before a revert and F1 there reverts. Reading the slots and the view models are ``terminal.firmware_screen``;
the slot machinery is ``firmware_image.slots``. Flash work is a few small reads and writes of a local file, so it
runs here like the settings screen.

>>> Firmware().__class__.__name__
'Firmware'
"""

from __future__ import annotations

import logging

from firmware_image.errors import FirmwareError
from firmware_image.keys import load_key
from firmware_image.slots import SlotState, confirm, revert
from terminal.core import TerminalCore
from terminal.firmware_screen import FirmwareKeyError, read_slots, revert_problem, running_slot
from terminal.roles import Action
from terminal.screens import Key

__all__ = ["Firmware", "FirmwareRevert", "open_firmware"]

log = logging.getLogger("terminal.firmware")


def open_firmware(core: TerminalCore) -> None:
    core.session.error, core.session.office.info = None, None
    _load_slots(core)
    core.fire("open_firmware")


def _load_slots(core: TerminalCore) -> bool:
    """Fill the screen's slot list; False (and an error line) when the flash or key cannot be read."""
    o, section = core.session.office, core.settings.firmware
    o.firmware_configured, o.firmware, o.firmware_counter = bool(section.flash), [], 0
    if not section.flash:
        return False
    try:
        o.firmware, o.firmware_counter = read_slots(section)
    except FirmwareKeyError as exc:
        log.warning("firmware key: %s", exc)
        core.session.error = core.say("fw.err_key")
        return False
    except (FirmwareError, OSError) as exc:
        log.warning("firmware flash %s: %s", section.flash, exc)
        core.session.error = core.say("fw.err_flash")
        return False
    return True


def _confirm_trial(core: TerminalCore) -> None:
    s, o = core.session, core.session.office
    trial = next((x for x in o.firmware if x.state is SlotState.TRIAL), None)
    if trial is None:
        o.info = core.say("fw.nothing_to_confirm")
        return
    what = f"slot {trial.slot} {trial.version} counter {trial.security_counter}"
    try:
        section = core.settings.firmware  # with a public key the counter rises now, from the verified image
        keys = [load_key(section.public_key)] if section.public_key else None
        done = confirm(section.flash, keys, section.device_class)
    except (FirmwareError, OSError) as exc:
        core.audit("firmware_confirm", f"{what} failed: {exc}")
        s.error = core.say("fw.err_flash")
        return
    core.audit("firmware_confirm", what if done else f"{what} failed: no longer on trial")
    if done:
        o.info = core.say("fw.confirmed", slot=trial.slot, version=trial.version)
    else:
        s.error = core.say("fw.err_flash")
    _load_slots(core)


class Firmware:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        if key is Key.CANCEL:
            o.firmware, o.info = [], None
            core.go_home()
            return
        s.error, o.info = None, None
        if key is Key.ENTER:
            _load_slots(core)
        elif key is Key.F1 and core.permit_now(Action.FIRMWARE) and _load_slots(core):
            _confirm_trial(core)
        elif key is Key.F2 and _load_slots(core):
            problem = revert_problem(o.firmware, o.firmware_counter)
            if problem is None:
                core.fire("ask_revert")
                return
            s.error = core.say(problem)
        core.refresh()


class FirmwareRevert:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        if key is Key.CANCEL:
            s.error = None
            core.fire("back")
        elif key is Key.F1 and core.permit_now(Action.FIRMWARE):  # not ENTER: a bounce must not revert
            running = running_slot(o.firmware)
            target = o.firmware[1 - running.slot] if running else None
            what = (f"slot {running.slot} {running.version} -> slot {target.slot} {target.version}"
                    if running and target else "?")
            try:
                now = revert(core.settings.firmware.flash)
            except (FirmwareError, OSError) as exc:
                core.audit("firmware_revert", f"{what} failed: {exc}")
                s.error = core.say("fw.err_flash")
            else:
                core.audit("firmware_revert", what)
                version = target.version if target and target.slot == now else "?"
                o.info, s.error = core.say("fw.reverted", slot=now, version=version), None
            error = s.error
            _load_slots(core)
            s.error = s.error or error
            core.fire("back")
