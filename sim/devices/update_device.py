"""A simulated terminal's maintenance side: flash, boot launcher and update agent behind one pty that stays.

The device boots (``firmware_image.boot.launch``: revert an unconfirmed trial, test-boot a pending image, run
the application's self-test, which confirms a trial that passes), then serves POSFW1 and SMP on its maintenance
port until a reset request, and boots again — the pty path stays the same across resets, as a UART does. A trial
image whose application fails makes the device reset at once (the watchdog), so the launcher reverts it.

``python -m sim.devices.update_device --flash F --key PUB.pem --device-class C`` prints ``PORT /dev/pts/N`` and
serves until killed; ``pos-sim --serve`` runs one in-process.

>>> UpdateDevice.__name__
'UpdateDevice'
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
import tty
import zipfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from firmware_image.agent_shell import maintenance_port, serve
from firmware_image.boot import BootDecision, launch
from firmware_image.errors import FirmwareError
from firmware_image.flash import ERASED, SimFlash
from firmware_image.image import Version, make_image
from firmware_image.keys import PrivateKey, PublicKey, load_key
from firmware_image.link import FdLink
from firmware_image.slots import set_pending

__all__ = ["UpdateDevice", "main"]


class UpdateDevice:
    """Boot, serve the maintenance port until reset, boot again; ``path`` is the pty the technician opens."""

    def __init__(self, flash: str | Path, keys: list[PrivateKey | PublicKey], device_class: str, *,
                 pace_baud: int | None = None, app_env: dict[str, str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.flash = Path(flash)
        self.keys = keys
        self.device_class = device_class
        self.app_env = {"POS_FW_SELFTEST_ONLY": "1"} if app_env is None else app_env
        self._log = log or (lambda line: None)
        self.boots: list[BootDecision] = []
        self.resets = 0
        self._stop = threading.Event()
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self._slave = slave
        self.path = os.ttyname(slave)
        self._link = FdLink(self._master, pace_baud)
        self._thread = threading.Thread(target=self._run, name="update-device", daemon=True)

    def start(self) -> UpdateDevice:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _boot(self) -> BootDecision:
        decision, code = launch(self.flash, self.keys, self.device_class, env=self.app_env, timeout=120,
                                capture=True)
        for line in decision.messages:
            self._log(f"boot: {line}")
        if decision.trial and code != 0:  # the trial application died: the watchdog resets, the launcher reverts
            self._log(f"boot: application exited with {code}: reset")
            self.boots.append(decision)
            decision, code = launch(self.flash, self.keys, self.device_class, env=self.app_env, timeout=120,
                                    capture=True)
            for line in decision.messages:
                self._log(f"boot: {line}")
        self.boots.append(decision)
        return decision

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                decision = self._boot()
            except (FirmwareError, OSError, subprocess.TimeoutExpired) as exc:  # the agent still serves: reflash
                self._log(f"boot: failed ({exc}): serving the maintenance port without an application")
                decision = BootDecision(None, False)
            with SimFlash(self.flash) as flash:
                core = maintenance_port(flash, self.keys, self.device_class, decision.slot)
                while not self._stop.is_set():
                    if serve(self._link, core, idle_timeout=0.5) == "reset":
                        self.resets += 1
                        self._stop.wait(0.2)  # the answer leaves the UART before the chip resets
                        break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.devices.update_device", description=__doc__.split("\n")[0])
    parser.add_argument("--flash", required=True)
    parser.add_argument("--key", action="append", required=True, help="trusted public key PEM (repeatable)")
    parser.add_argument("--device-class", required=True)
    parser.add_argument("--pace", type=int, default=None, metavar="BAUD", help="pace the device's output")
    opts = parser.parse_args(argv)
    if not Path(opts.flash).is_file():
        print(f"no flash file {opts.flash}: make one with 'pos-fw slots --flash {opts.flash} --create 768'",
              file=sys.stderr)
        return 2
    device = UpdateDevice(opts.flash, [load_key(k) for k in opts.key], opts.device_class, pace_baud=opts.pace,
                          log=lambda line: print(line, flush=True))
    print(f"PORT {device.path}", flush=True)
    device.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


SERVE_SLOT_SECTORS = 768  # 3 MiB slots of 4 KiB sectors: room for the application image (about 1.3 MB) to grow
DEV_SIGNING_KEY = Path("build/dev-signing-key.pem")  # what 'make image' signs with


def _factory_image(world_private_key: Path, device_class: str) -> bytes:
    """What the simulated terminal left the factory with: a confirmed 1.0.0 whose application only says so."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as app:
        app.writestr("__main__.py", "print('factory image 1.0.0: flash the application with smpmgr upgrade "
                                    "or pos-fw flash')\n")
    key = load_key(world_private_key)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{world_private_key} is not a private key")
    return make_image(buffer.getvalue(), version=Version(1), key=key, security_counter=1, device_class=device_class)


def device_for_serve(workdir: Path, device_class: str, world_public_key: Path | None = None) -> tuple[
        UpdateDevice, dict[str, object]]:
    """The maintenance side ``pos-sim --serve`` runs: its own flash file in ``workdir`` (made the first time,
    slot 0 a confirmed factory 1.0.0 signed with the world's demo key), trusting the development key of
    ``make image`` (when it exists) and the world's demo key."""
    flash = workdir / "device-flash.bin"
    if not flash.is_file():
        with SimFlash.create(flash, slot_sectors=SERVE_SLOT_SECTORS) as chip:
            private = world_public_key.with_suffix(".pem") if world_public_key else None
            if private is not None and private.is_file():
                image = _factory_image(private, device_class)
                chip.write(0, image + bytes([ERASED]) * (-len(image) % chip.geometry.write_size))
                set_pending(chip, 0, permanent=True)
    key_files = [p for p in (DEV_SIGNING_KEY, world_public_key) if p is not None and p.is_file()]
    keys = [load_key(p) for p in key_files]
    device = UpdateDevice(flash, keys, device_class,
                          log=lambda line: print(f"device: {line}", file=sys.stderr, flush=True))
    info: dict[str, object] = {
        "port": device.path, "flash": str(flash), "device_class": device_class,
        "trusted_keys": [str(p.resolve()) for p in key_files],
        "protocols": ["POSFW1", "SMP"],
        "try": [f"pos-fw slots --port {device.path}", f"smpmgr --port {device.path} image state-read",
                f"smpmgr --port {device.path} upgrade build/pos-terminal.img",
                f"pos-fw flash --port {device.path} build/pos-terminal.img"],
    }
    if not DEV_SIGNING_KEY.is_file():
        info["note"] = f"no {DEV_SIGNING_KEY} here: run 'make image' first, then restart pos-sim --serve"
    return device, info
