"""The boot launcher: choose a slot, verify it, test-boot new images once, revert unconfirmed ones, raise the counter.

Every boot, in this order (each step one flash operation, safe to cut and repeat):

1. a slot on trial (tried, not confirmed) means its trial ended without confirmation (crash, reset, power cut,
   failed self-test): erase its trailer, so it never boots again ("reverted");
2. a pending slot whose image verifies (hash, signature, device class, counter ≥ stored) is marked tried and
   started in trial mode (``POS_FW_TRIAL=1``: the application confirms itself after its self-test); a pending
   slot that fails verification loses its trailer and the message says why;
3. otherwise the newest confirmed slot that verifies runs, and the rollback counter rises to its counter.

>>> BootDecision(slot=None, trial=False).bootable
False
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from firmware_image.errors import FirmwareImageError
from firmware_image.flash import SimFlash
from firmware_image.image import ImageInfo, verify_image
from firmware_image.keys import PrivateKey, PublicKey, load_key
from firmware_image.slots import (
    SlotState,
    invalidate,
    mark_tried,
    raise_counter,
    read_counter,
    read_image,
    read_trailer,
)

__all__ = ["BootDecision", "decide", "launch", "main", "device_parser"]


@dataclass
class BootDecision:
    slot: int | None
    trial: bool
    info: ImageInfo | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def bootable(self) -> bool:
        return self.slot is not None


def _check(flash: SimFlash, slot: int, keys: list[PrivateKey | PublicKey], device_class: str,
           messages: list[str]) -> ImageInfo | None:
    blob = read_image(flash, slot)
    if blob is None:
        messages.append(f"slot {slot}: no image")
        return None
    try:
        return verify_image(blob, keys, device_class=device_class, min_counter=read_counter(flash))
    except FirmwareImageError as exc:
        messages.append(f"slot {slot} refused ({exc.reason}): {exc}")
        return None


def decide(flash: SimFlash, keys: list[PrivateKey | PublicKey], device_class: str) -> BootDecision:
    """Run the boot steps on ``flash`` (they write to it) and say which slot to start."""
    messages: list[str] = []
    for slot in (0, 1):
        if read_trailer(flash, slot).state is SlotState.TRIAL:
            messages.append(f"slot {slot}: trial boot was not confirmed: reverted")
            invalidate(flash, slot)
    trailers = {s: read_trailer(flash, s) for s in (0, 1)}
    pending = sorted((s for s in (0, 1) if trailers[s].state is SlotState.PENDING),
                     key=lambda s: trailers[s].sequence, reverse=True)
    for slot in pending:
        info = _check(flash, slot, keys, device_class, messages)
        if info is None:
            invalidate(flash, slot)
            continue
        mark_tried(flash, slot)
        messages.append(f"slot {slot}: test boot of {info.version}")
        return BootDecision(slot, True, info, messages)
    confirmed = sorted((s for s in (0, 1) if read_trailer(flash, s).state is SlotState.CONFIRMED),
                       key=lambda s: trailers[s].sequence, reverse=True)
    for slot in confirmed:
        info = _check(flash, slot, keys, device_class, messages)
        if info is not None:
            raise_counter(flash, info.security_counter)
            messages.append(f"slot {slot}: boot {info.version}")
            return BootDecision(slot, False, info, messages)
    messages.append("no bootable image: flash one with 'pos-fw flash'")
    return BootDecision(None, False, None, messages)


def launch(flash_path: str | Path, keys: list[PrivateKey | PublicKey], device_class: str, *,
           env: dict[str, str] | None = None, args: list[str] | None = None,
           timeout: float | None = None, capture: bool = False,
           python: str | None = None) -> tuple[BootDecision, int | None]:
    """One boot: decide, copy the slot's payload next to the flash file ("load to RAM"), run it with Python.

    Returns the decision and the application's exit code (None when nothing was bootable). With ``capture``
    the application's output lines are appended to the decision's messages (``app: …``) instead of printed.
    ``python`` is the device's interpreter (default: this one).
    """
    with SimFlash(flash_path) as flash:
        decision = decide(flash, keys, device_class)
    if decision.info is None or decision.slot is None:
        return decision, None
    app = Path(f"{flash_path}.slot{decision.slot}.pyz")
    app.write_bytes(decision.info.payload)
    child_env = dict(os.environ, **(env or {}))
    child_env.update(POS_FW_FLASH=str(flash_path), POS_FW_SLOT=str(decision.slot),
                     POS_FW_TRIAL="1" if decision.trial else "0")
    child_env.pop("PYTHONPATH", None)  # the image brings its own packages
    done = subprocess.run([python or sys.executable, str(app), *(args or [])], env=child_env,  # noqa: S603
                          timeout=timeout, check=False, capture_output=capture, text=capture)
    if capture:
        decision.messages += [f"app: {line}" for line in (done.stdout + done.stderr).splitlines()]
    return decision, done.returncode


def device_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """What every device-side program needs: its flash file, the keys it trusts, its device class."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--flash", required=True, help="simulated flash file")
    parser.add_argument("--key", action="append", required=True, help="trusted public key PEM (repeatable)")
    parser.add_argument("--device-class", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = device_parser("python -m firmware_image.boot", "Boot launcher of the simulated terminal: one boot.")
    parser.add_argument("--self-test-only", action="store_true", help="stop the application after its self-test")
    opts = parser.parse_args(argv)
    env = {"POS_FW_SELFTEST_ONLY": "1"} if opts.self_test_only else {}
    decision, code = launch(opts.flash, [load_key(k) for k in opts.key], opts.device_class, env=env)
    for line in decision.messages:
        print(f"boot: {line}", flush=True)
    if code is None:
        return 2
    print(f"boot: application exited with {code}", flush=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
