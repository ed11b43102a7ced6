"""Simulated serial QR scanner on a pty: the device end of ``drivers.scanner`` (docs/protocols/scanner.md).

A person (or a scenario) *shows* a code: in continuous mode the scanner sends it at once; in triggered mode it
sends it when the terminal triggers (``SYN T CR``), or at once if already triggered. Each code goes out as ASCII
+ CR LF, optionally byte by byte; ``noise`` writes raw garbage; ``unplug`` closes the pty.

``make_code(wallet, outcome)`` builds a payment code whose digits choose the simulated wallet platform's outcome
(see ``sim.backends.wallet``).

>>> sim = ScannerSim(mode="continuous")
>>> import os
>>> os.path.realpath(sim.start()).startswith("/dev/pts/")  # the path the terminal opens links to the pty
True
>>> sim.stop()
"""

from __future__ import annotations

import threading
import time

from drivers.scanner_codec import TRIGGER, UNTRIGGER
from sim.devices.pty import DeviceThread, PtyPort

__all__ = ["ScannerSim"]



class ScannerSim:
    def __init__(self, *, mode: str = "triggered", baud: int | None = None) -> None:
        self.mode = mode
        self.port = PtyPort(baud=baud)
        self._thread = DeviceThread("scanner", self.port, self._on_bytes)
        self._lock = threading.Lock()
        self._inbox = bytearray()
        self._showing: tuple[str, bool] | None = None
        self.triggered = False
        self.triggers = 0
        self.sent: list[str] = []
        self._started = False

    def start(self) -> str:
        if not self._started:
            self._started = True
            self._thread.start()
        return self.port.path

    def stop(self) -> None:
        self._thread.stop()

    def unplug(self) -> None:
        self.port.close()

    # --- what a person does ----------------------------------------------------------------------------------

    def show(self, code: str, *, byte_at_a_time: bool = False) -> None:
        """Hold a code (a phone screen) in front of the scanner."""
        with self._lock:
            if self.mode == "continuous" or self.triggered:
                self._send(code, byte_at_a_time)
            else:
                self._showing = (code, byte_at_a_time)

    def noise(self, data: bytes) -> None:
        self.port.write(data)

    # --- device side -----------------------------------------------------------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        with self._lock:
            self._inbox += data
            while True:
                trig, untrig = self._inbox.find(TRIGGER), self._inbox.find(UNTRIGGER)
                hits = [i for i in (trig, untrig) if i >= 0]
                if not hits:
                    del self._inbox[:-2]  # keep a possible partial command
                    return
                first = min(hits)
                del self._inbox[:first + 3]
                if first == trig:
                    self.triggered, self.triggers = True, self.triggers + 1
                    if self._showing is not None:
                        code, slow = self._showing
                        self._send(code, slow)
                else:
                    self.triggered = False

    def _send(self, code: str, byte_at_a_time: bool) -> None:
        """Called with the lock held. One good read ends a trigger; the code is taken away."""
        self._showing, self.triggered = None, False
        self.sent.append(code)
        wire = code.encode("ascii") + b"\r\n"
        if byte_at_a_time:
            for i in range(len(wire)):
                self.port.write(wire[i:i + 1])
                time.sleep(0.0002)
        elif self.port.baud:  # paced: small writes, so the last byte arrives about when the wire would carry it
            for i in range(0, len(wire), 16):
                self.port.write(wire[i:i + 16])
        else:
            self.port.write(wire)
