"""``make bench``: the same application image uploaded with ``smpclient`` (SMP) and with ``pos-fw flash`` (POSFW1)
to the same paced pty at 115200 and 921600 baud; both times and their ratio. Measured, never asserted.

The device end paces *both* directions at the line rate (10 bits a byte): what it sends leaves no faster than a
UART would send it, and what it reads is handed over no earlier than the last byte would have arrived, so the
hosts (smpclient and pos-fw, unpaced, through pyserial) see a real line. SMP has no baud negotiation: its line
runs at the rate from the start; POSFW1 starts at 115200 and switches (as in the field). The session is the whole
upload: SMP from connect (MCUmgr params) to the last offset, POSFW1 from sync to finalize (no reset either way).

``python -m sim.bench.smp`` runs this part alone.
"""

from __future__ import annotations

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
from firmware_image.payload import build_payload

__all__ = ["measure", "PacedDeviceLink"]

ROOT = Path(__file__).resolve().parent.parent.parent
DEVICE = "iotsim-pos-bench"


class PacedDeviceLink(FdLink):
    """A pty master that also paces what it *reads*: bytes are delivered when they would have arrived."""

    def __init__(self, fd: int, baud: int) -> None:
        super().__init__(fd, baud)
        self._rx_free = 0.0

    def read(self, timeout: float) -> bytes:
        data = super().read(timeout)
        if data and self.pacer.baud:
            now = time.perf_counter()
            self._rx_free = max(self._rx_free, now) + len(data) * 10 / self.pacer.baud
            if self._rx_free > now:
                time.sleep(self._rx_free - now)
        return data


def _device(workdir: Path, name: str, key: PrivateKey, image_size: int, baud: int) -> tuple[
        str, threading.Thread, list[int]]:
    path = workdir / f"{name}.bin"
    SimFlash.create(path, slot_sectors=image_size // 4096 + 4).close()
    master, slave = os.openpty()
    tty.setraw(slave)
    fds = [master, slave]

    def run() -> None:
        with SimFlash(path) as flash:
            serve(PacedDeviceLink(master, baud), maintenance_port(flash, [key], DEVICE), idle_timeout=3)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return os.ttyname(slave), thread, fds


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
    port, thread, fds = _device(workdir, f"{tool}-{baud}", key, len(image), start_baud)
    try:
        return _smpclient(port, image, baud) if tool == "smpclient" else _posfw(port, image, baud)
    finally:
        thread.join(timeout=10)
        for fd in fds:
            os.close(fd)


def measure(bauds: tuple[int, ...] = (115200, 921600)) -> dict[str, Any]:
    key = generate()
    image = make_image(build_payload(ROOT, version="1.0.0"), version=Version(1), key=key, security_counter=1,
                       device_class=DEVICE)
    out: dict[str, Any] = {"application_image_bytes": len(image)}
    with tempfile.TemporaryDirectory(prefix="smp-bench-") as tmp:
        for baud in bauds:
            smp = _one(Path(tmp), "smpclient", key, image, baud)
            posfw = _one(Path(tmp), "pos-fw", key, image, baud)
            out[f"upload_{baud}"] = {"smpclient_s": round(smp, 2), "pos_fw_flash_s": round(posfw, 2),
                                     "smpclient_over_pos_fw": round(smp / posfw, 2),
                                     "wire_time_of_image_s": round(len(image) * 10 / baud, 2)}
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
