"""The update agent's I/O shell: serves POSFW1 and SMP (``MaintenancePort``) on the maintenance port until a reset.

``python -m firmware_image.agent_shell --flash F --key PUB.pem --device-class C --port /dev/ttyS2`` on a device;
``--pty`` instead opens a pseudo-terminal pair, prints ``PORT /dev/pts/N`` and serves its master side (tests, the
simulator). ``--pace`` emulates the UART's line rate on the device's output.
"""

from __future__ import annotations

import os
import sys
import time
import tty
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from firmware_image.agent import AgentCore, ChangeBaud, ResetRequested
from firmware_image.boot import device_parser
from firmware_image.errors import FirmwareError
from firmware_image.flash import SimFlash
from firmware_image.keys import PrivateKey, PublicKey, load_key
from firmware_image.link import FdLink, Link, SerialFlashLink
from firmware_image.maintenance import LazySmpServer, MaintenancePort

if TYPE_CHECKING:
    from firmware_image.smp_server import SmpServer

__all__ = ["serve", "main", "maintenance_port", "Core"]


class Core(Protocol):
    def receive_data(self, data: bytes) -> None: ...
    def data_to_send(self) -> bytes: ...
    def next_event(self) -> ChangeBaud | ResetRequested | None: ...


def maintenance_port(flash: SimFlash, keys: list[PrivateKey | PublicKey], device_class: str,
                     running: int | None = None) -> MaintenancePort:
    """POSFW1 and SMP on one port, both on ``flash``; the SMP server (and the smp package with its pydantic) is
    made at the first SMP request."""
    posfw = AgentCore(flash, keys, device_class, running)
    slot = posfw.running

    def smp_server() -> SmpServer:
        from firmware_image.smp_image import ImageGroup
        from firmware_image.smp_server import SmpServer

        return SmpServer(ImageGroup(flash, keys, device_class, slot), device_class)

    return MaintenancePort(posfw, LazySmpServer(smp_server))


def _log_notes(core: Core) -> None:
    notes = getattr(getattr(core, "smp", None), "notes", None)
    while notes:
        print(f"agent: {notes.popleft()}", file=sys.stderr, flush=True)


def serve(link: Link, core: Core, *, idle_timeout: float | None = None) -> str:
    """Pump bytes between ``link`` and ``core``; returns ``"reset"`` or ``"idle"``."""
    idle = 0.0
    while True:
        data = link.read(0.25)
        if data:
            idle = 0.0
            core.receive_data(data)
        else:
            idle += 0.25
            line_idle = getattr(core, "line_idle", None)
            if line_idle is not None:
                line_idle()
            if idle_timeout is not None and idle >= idle_timeout:
                return "idle"
        out = core.data_to_send()
        if out:
            link.write(out)
        _log_notes(core)
        while (event := core.next_event()) is not None:
            if isinstance(event, ChangeBaud):
                link.set_baud(event.baud)
            elif isinstance(event, ResetRequested):
                return "reset"


def main(argv: list[str] | None = None) -> int:
    parser = device_parser("python -m firmware_image.agent_shell",
                           "Update agent on the terminal's maintenance serial port.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device, e.g. /dev/ttyS2")
    where.add_argument("--pty", action="store_true", help="open a pty pair and print its slave path")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--pace", action="store_true", help="emulate the line rate on what the agent sends")
    parser.add_argument("--running-slot", type=int, choices=(0, 1), default=None,
                        help="slot the application runs from (default: from the trailers; the launcher sets "
                             "POS_FW_SLOT)")
    parser.add_argument("--idle-timeout", type=float, default=None, help="exit after this long without data")
    opts = parser.parse_args(argv)
    running = opts.running_slot
    if running is None and os.environ.get("POS_FW_SLOT", "").isdigit():
        running = int(os.environ["POS_FW_SLOT"])
    if not Path(opts.flash).is_file():
        print(f"agent: no flash file {opts.flash}: make one with 'pos-fw slots --flash {opts.flash} --create 768' "
              "(slots of 768 sectors of 4 KiB, 3 MiB), then flash an image with 'pos-fw flash' or 'smpmgr upgrade'",
              file=sys.stderr, flush=True)
        return 2
    try:
        flash = SimFlash(opts.flash)
        keys = [load_key(k) for k in opts.key]
    except (FirmwareError, OSError) as exc:
        print(f"agent: {exc}", file=sys.stderr, flush=True)
        return 2
    link: Link
    if opts.pty:
        master, slave = os.openpty()
        tty.setraw(slave)
        link = FdLink(master, opts.baud if opts.pace else None)
        print(f"PORT {os.ttyname(slave)}", flush=True)
    else:
        link = SerialFlashLink(opts.port, opts.baud, pace=opts.pace)
    with flash:
        how = serve(link, maintenance_port(flash, keys, opts.device_class, running),
                    idle_timeout=opts.idle_timeout)
    print(f"agent: {how}", flush=True)
    time.sleep(0.3)  # a UART has sent its last bytes before the chip resets; a pty master must not close earlier
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
