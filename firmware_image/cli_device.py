"""``pos-fw slots|test|confirm|revert|reset`` on a device: through its maintenance port (``--port``: a device path
or any pyserial URL — ``socket://``, ``rfc2217://``, ``spy://``) or on a local flash file (``--flash``).

Over a port, ``slots`` and ``reset`` speak POSFW1; ``test``, ``confirm`` and ``revert`` speak SMP (image state
write), the same code on the device that ``smpmgr`` reaches. ``confirm`` when the new image has not booted yet
says so and exits 1 (reset the device first: the image must pass its test boot).

>>> int_in(1, 8)("4"), int_in(0, 9, "counter").__name__
(4, 'counter')
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from firmware_image.errors import FirmwareImageError
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.keys import load_key
from firmware_image.link import SerialFlashLink
from firmware_image.slots import (
    SlotState,
    confirm,
    describe,
    read_image,
    revert,
    running_slot,
    set_pending,
    trial_refusal,
)

__all__ = ["int_in", "add_device_commands", "run_device", "DEVICE_COMMANDS", "MAX_SLOT_SECTORS"]

DEVICE_COMMANDS = ("slots", "test", "confirm", "revert", "reset")
MAX_SLOT_SECTORS = 16384  # 64 MiB slots of 4 KiB: far more than an application image needs


def int_in(low: int, high: int, name: str = "number") -> Callable[[str], int]:
    """An argparse type: an integer (decimal or 0x…) in [low, high], else a message (never a traceback)."""
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: {low}..{high}")
        return value
    parse.__name__ = name
    return parse


def add_device_commands(sub: Any, default_device_class: str) -> None:
    texts = {"slots": "show both slots (version, state)", "test": "mark the inactive slot's image for one test boot",
             "confirm": "confirm the image on trial", "revert": "go back to the other slot at the next reset",
             "reset": "reset the device through its update agent"}
    for name in DEVICE_COMMANDS:
        p = sub.add_parser(name, help=texts[name])
        where = p.add_mutually_exclusive_group()
        where.add_argument("-p", "--port", help="the device's maintenance port: /dev/ttyUSB0, socket://host:port, "
                           "rfc2217://host:port, spy:///dev/ttyS1 …")
        where.add_argument("--flash", help="simulated flash file of the device (local access)")
        p.add_argument("-b", "--baud", type=int_in(300, 4_000_000, "baud"), default=115200)
        if name == "slots":
            p.add_argument("--create", type=int_in(2, MAX_SLOT_SECTORS, "sectors"), metavar="SECTORS",
                           help=f"create an erased flash file with slots of this many 4 KiB sectors "
                                f"(2..{MAX_SLOT_SECTORS})")
            p.add_argument("-k", "--key", action="append", help="device key(s): also say if each slot would boot")
            p.add_argument("--device-class", default=default_device_class)
            p.add_argument("--json", action="store_true", help="machine-readable output")


def _print_slots(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for s in rows:
        flag = "*" if s["running"] else " "
        counter = s["security_counter"] if s["security_counter"] is not None else "-"
        print(f"{flag} slot {s['slot']}: {s['state']:<9} version {s['version'] or '-':<12} counter {counter}"
              + (f"  REFUSED: {s['problem']}" if s.get("problem") else ""))


def run_device(opts: argparse.Namespace) -> int:
    if opts.port:
        return _over_port(opts)
    if not opts.flash:
        raise FirmwareImageError("give --port PORT (the device) or --flash FILE (a local flash file)", "usage")
    if opts.command == "slots":
        if opts.create:
            SimFlash.create(opts.flash, slot_sectors=opts.create).close()
        keys = [load_key(k) for k in opts.key] if opts.key else None
        _print_slots([asdict(s) for s in describe(opts.flash, keys, opts.device_class if keys else None)], opts.json)
    elif opts.command == "confirm":
        if confirm(opts.flash):
            print("confirmed")
        else:
            _nothing_on_trial([(s.slot, s.version, s.state) for s in describe(opts.flash)])
    elif opts.command == "revert":
        print(f"slot {revert(opts.flash)} will run after the next reset")
    elif opts.command == "test":
        with SimFlash(opts.flash) as flash:
            running = running_slot(flash)
            target = 0 if running is None else 1 - running
            if (why := trial_refusal(flash, target)) is not None:
                raise FirmwareImageError(why, "refused")
            if read_image(flash, target) is None:
                raise FirmwareImageError(f"slot {target} holds no image to test: flash one with 'pos-fw flash'",
                                         "usage")
            set_pending(flash, target)
        print(f"slot {target} will be test-booted at the next reset")
    else:
        raise FirmwareImageError("reset needs --port (the device's update agent)", "usage")
    return 0


def _nothing_on_trial(slots: list[tuple[int, str | None, SlotState]]) -> None:
    waiting = [(slot, version) for slot, version, state in slots if state is SlotState.PENDING]
    if waiting:
        slot, version = waiting[0]
        raise FirmwareImageError(f"slot {slot} ({version}) has never booted: it cannot be confirmed yet. Reset the "
                                 "device so it test-boots, then confirm", "refused")
    print("nothing on trial: the running image is already confirmed")


def _over_port(opts: argparse.Namespace) -> int:
    link = SerialFlashLink(opts.port, opts.baud)
    try:
        if opts.command in ("slots", "reset"):
            flasher = Flasher(link)
            if opts.command == "reset":
                flasher.reset()
                print("device resetting")
            else:
                _print_slots(json.loads(flasher.slots()), opts.json)
            return 0
        from firmware_image.smp_client import SmpClient  # the smp package and pydantic: only for --port

        client = SmpClient(link)
        images = client.states()
        active = next((i for i in images if i.active), None)
        other = next((i for i in images if not i.active), None)
        if opts.command == "confirm":
            if active is not None and not active.confirmed:
                client.state_write(None, confirm=True)
                print(f"confirmed slot {active.slot} ({active.version})")
            else:
                state = SlotState.PENDING if other is not None and other.pending else SlotState.IDLE
                _nothing_on_trial([(other.slot, other.version, state)] if other else [])
        elif other is None:
            raise FirmwareImageError("the device has no image in its other slot: flash one with 'pos-fw flash'",
                                     "refused")
        elif opts.command == "test":
            if active is not None and not active.confirmed:  # the device refuses too; say what to do instead
                raise FirmwareImageError(
                    f"slot {active.slot} runs {active.version} on trial: confirm or revert the image on trial "
                    f"first ('pos-fw confirm --port {opts.port}' or 'pos-fw revert --port {opts.port}')", "refused")
            client.state_write(other.hash, confirm=False)
            print(f"slot {other.slot} ({other.version}) will be test-booted at the next reset")
        else:  # revert: the other slot's confirmed image becomes the next boot (the device checks it again)
            if not other.confirmed:
                raise FirmwareImageError(f"slot {other.slot} holds no confirmed image to go back to; flash a build "
                                         "instead", "refused")
            client.state_write(other.hash, confirm=True)
            print(f"slot {other.slot} ({other.version}) will run after the next reset")
    finally:
        link.close()
    return 0
