"""``make bench``: the same image uploaded with ``smpclient`` (SMP) and with ``pos-fw flash`` (POSFW1)
to the same paced pty at 115200 and 921600 baud; both times and their ratio. Measured, never asserted.

The device end paces *both* directions at the line rate (10 bits a byte): what it sends leaves no faster than a
UART would send it, and what it reads is handed over no earlier than the last byte would have arrived, so the
hosts (smpclient and pos-fw, unpaced, through pyserial) see a real line. SMP has no baud negotiation: its line
runs at the rate from the start; POSFW1 starts at 115200 and switches (as in the field). The session is the whole
upload: SMP from connect (MCUmgr params) to the last offset, POSFW1 from sync to finalize (no reset either way).

The image (issue 17 item 6: ``make bench`` in a few minutes, keys unchanged): ``make bench`` uploads a *typical MCU
application* — this tree's device side (``firmware_image`` + ``pos_errors``: update agent, boot launcher, SMP server),
a real signed application image of about 0.3 MB, the size that fits the 512 KiB MCUboot slot of a typical
Cortex-M part and of the same zipapp make-up (deflates to about 0.52, like the whole application) — so that the
SMP/POSFW1 ratio stays the protocols' and the block costs about a minute instead of eight. The whole terminal
application image (2.5 MB and growing) is uploaded by ``make bench-smp`` (``python -m sim.bench.smp --full``).
``application_image_bytes`` stays the size of the whole application image; ``uploaded_image_bytes`` is the
image the rows below were measured with.

``python -m sim.bench.smp [--full] [--out FILE]`` runs this part alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

from smpclient import SMPClient
from smpclient.transport.serial import SMPSerialTransport

from firmware_image.agent_shell import maintenance_port, serve
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.image import Version, make_image
from firmware_image.keys import PrivateKey, generate
from firmware_image.link import FdLink, SerialFlashLink
from firmware_image.payload import APP_PACKAGES, build_payload

__all__ = ["measure", "PacedDeviceLink"]

ROOT = Path(__file__).resolve().parent.parent.parent
DEVICE = "iotsim-pos-bench"
TYPICAL_PACKAGES = ("firmware_image", "pos_errors")  # the device side: a typical MCU application's size


class PacedDeviceLink(FdLink):
    """A pty master that also paces what it *reads*: bytes are delivered when they would have arrived."""

    def __init__(self, fd: int, baud: int) -> None:
        super().__init__(fd, baud)
        self._rx_free = 0.0
        self.host_done = threading.Event()  # the host's session ended: stop serving (not after an idle time-out)

    def read(self, timeout: float) -> bytes:
        if self.host_done.is_set():
            raise _HostDone
        data = super().read(timeout)
        if data and self.pacer.baud:
            now = time.perf_counter()
            self._rx_free = max(self._rx_free, now) + len(data) * 10 / self.pacer.baud
            if self._rx_free > now:
                time.sleep(self._rx_free - now)
        return data


class _HostDone(Exception):
    """Raised by ``PacedDeviceLink.read`` once the host's session is over: the device's loop ends at once."""


def _device(workdir: Path, name: str, key: PrivateKey, image_size: int, baud: int) -> tuple[
        str, threading.Thread, PacedDeviceLink, list[int]]:
    path = workdir / f"{name}.bin"
    SimFlash.create(path, slot_sectors=image_size // 4096 + 4).close()
    master, slave = os.openpty()
    tty.setraw(slave)
    fds = [master, slave]
    link = PacedDeviceLink(master, baud)

    def run() -> None:
        with SimFlash(path) as flash:
            try:
                serve(link, maintenance_port(flash, [key], DEVICE), idle_timeout=3)
            except _HostDone:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return os.ttyname(slave), thread, link, fds


def _smpclient(port: str, image: bytes, baud: int) -> float:
    async def run() -> float:
        started = time.perf_counter()
        client = SMPClient(SMPSerialTransport(baudrate=baud), port, timeout_s=30)
        await client.connect()
        async for _ in client.upload(image):
            pass
        await client.disconnect()
        return time.perf_counter() - started
    return asyncio.run(run())


def _posfw(port: str, image: bytes, baud: int) -> float:
    link = SerialFlashLink(port, 115200)
    try:
        report = Flasher(link, baud=baud if baud != 115200 else 0, window=4).flash(image, reset=False)
    finally:
        link.close()
    return report.seconds


def _one(workdir: Path, tool: str, key: PrivateKey, image: bytes, baud: int) -> float:
    start_baud = baud if tool == "smpclient" else 115200
    port, thread, link, fds = _device(workdir, f"{tool}-{baud}", key, len(image), start_baud)
    try:
        return _smpclient(port, image, baud) if tool == "smpclient" else _posfw(port, image, baud)
    finally:
        link.host_done.set()  # every answer was read: 0.25 s to stop instead of the 3 s idle time-out
        thread.join(timeout=10)
        for fd in fds:
            os.close(fd)


def measure(bauds: tuple[int, ...] = (115200, 921600), full: bool = False) -> dict[str, Any]:
    """Both tools at each baud rate on the typical-size image, or on the whole application image if ``full``."""
    key = generate()

    def image_of(packages: tuple[str, ...]) -> bytes:
        return make_image(build_payload(ROOT, version="1.0.0", packages=packages), version=Version(1), key=key,
                          security_counter=1, device_class=DEVICE)

    application = image_of(APP_PACKAGES)
    image = application if full else image_of(TYPICAL_PACKAGES)
    out: dict[str, Any] = {"application_image_bytes": len(application), "uploaded_image_bytes": len(image),
                           "uploaded_image": "whole application" if full else "+".join(TYPICAL_PACKAGES)}
    with tempfile.TemporaryDirectory(prefix="smp-bench-") as tmp:
        for baud in bauds:
            smp = _one(Path(tmp), "smpclient", key, image, baud)
            posfw = _one(Path(tmp), "pos-fw", key, image, baud)
            out[f"upload_{baud}"] = {"smpclient_s": round(smp, 2), "pos_fw_flash_s": round(posfw, 2),
                                     "smpclient_over_pos_fw": round(smp / posfw, 2),
                                     "wire_time_of_image_s": round(len(image) * 10 / baud, 2)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.bench.smp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="upload the whole application image (make bench-smp)")
    parser.add_argument("--out", metavar="FILE", help="also write the report here")
    args = parser.parse_args(argv)
    text = json.dumps({"smp_vs_posfw": measure(full=args.full)}, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
