"""The simulator's end of a serial line: a pseudo-terminal pair whose slave path the terminal opens with pyserial.

A simulated device owns the master side. ``PtyPort`` gives it raw, non-blocking reads with a timeout and writes
paced at a baud rate (so link efficiency is measurable), and line faults (so robustness is): seeded byte errors,
dropped and duplicated bytes, long silences (``LineFaults``), and a cable pulled and plugged back
(``unplug``/``replug``). The terminal opens ``path``, a symlink that always names the current pty: unplugging
closes the pty (the terminal's reads fail with EIO) and removes the link; replugging makes a new pty behind the
same path, as a USB adapter re-enumerating at the same udev name would.

>>> with PtyPort() as port:
...     os.path.realpath(port.path).startswith("/dev/pts/")
True
"""

from __future__ import annotations

import ctypes
import os
import random
import select
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["LineFaults", "FaultInjector", "PtyPort", "DeviceThread", "sleep_until", "SPIN_S"]

_PR_SET_TIMERSLACK = 29  # linux/prctl.h
_FINE_SLACK_NS = 1000
SPIN_S = 150e-6  # the end of a paced wait is spent awake: longer than a sleeping thread's usual lateness
_thread_state = threading.local()


def sleep_until(deadline: float) -> None:
    """Return when ``time.monotonic()`` reaches ``deadline`` (at once if it has), as close to it as the
    machine allows: sleep until ``SPIN_S`` before it, then stay awake until it has passed. A paced line that
    oversleeps every frame is slower than the wire it models — a sleeping thread wakes 25-100 µs late (the
    timer slack, cut from 50 µs to 1 µs on Linux the first time, and the scheduler's wake-up) — and never
    faster: this never returns early. The last stretch costs at most ``SPIN_S`` of CPU a frame and holds the
    GIL that long (in one process with the terminal, its threads wait for bytes meanwhile)."""
    if not getattr(_thread_state, "fine_slack", False):
        _thread_state.fine_slack = True
        _cut_timer_slack()
    delay = deadline - time.monotonic()
    if delay > SPIN_S:
        time.sleep(delay - SPIN_S)
    while time.monotonic() < deadline:
        pass


def _cut_timer_slack() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, _FINE_SLACK_NS, 0, 0, 0)
        except (OSError, AttributeError):  # no libc symbol: the default slack only costs accuracy
            pass


@dataclass(frozen=True)
class LineFaults:
    """What a bad line does, per byte (rates in 0..1) or per write (``silence_rate``); all draws come from
    ``random.Random`` seeded with ``seed`` and the direction, so a run repeats exactly."""

    seed: int = 0
    error_rate: float = 0.0  # a byte arrives with some bits flipped
    drop_rate: float = 0.0  # a byte never arrives
    dup_rate: float = 0.0  # a byte arrives twice
    silence_rate: float = 0.0  # a write is held back ``silence_s`` first (a device or adapter that stalls)
    silence_s: float = 0.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LineFaults:
        """From a config or scenario table; unknown keys are an error (a typo must not silently test nothing)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown line fault settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: (int(v) if k == "seed" else float(v)) for k, v in values.items()})

    @property
    def active(self) -> bool:
        return any((self.error_rate, self.drop_rate, self.dup_rate, self.silence_rate and self.silence_s))


class FaultInjector:
    """Applies ``LineFaults`` to one direction of a line and counts what it did."""

    def __init__(self, faults: LineFaults, direction: str) -> None:
        self.faults = faults
        self._rng = random.Random(f"{faults.seed}:{direction}")
        self.errors = self.drops = self.dups = self.silences = 0

    def pause_before_write(self) -> float:
        f = self.faults
        if f.silence_rate and f.silence_s and self._rng.random() < f.silence_rate:
            self.silences += 1
            return f.silence_s
        return 0.0

    def apply(self, data: bytes) -> bytes:
        f = self.faults
        if not (f.error_rate or f.drop_rate or f.dup_rate):
            return data
        out = bytearray()
        rnd = self._rng.random
        for sent in data:
            if f.drop_rate and rnd() < f.drop_rate:
                self.drops += 1
                continue
            received = sent
            if f.error_rate and rnd() < f.error_rate:
                self.errors += 1
                received ^= self._rng.randrange(1, 256)  # at least one bit flipped
            out.append(received)
            if f.dup_rate and rnd() < f.dup_rate:
                self.dups += 1
                out.append(received)
        return bytes(out)


class PtyPort:
    """Master side of a pty pair, behind a stable symlink ``path``.

    Args:
        baud: when set, both directions take 10 bits per byte: ``write`` delivers its bytes after their line
            time, ``read`` returns the terminal's bytes after theirs.
        corrupt: optional hook ``bytes -> bytes`` applied to everything written (tests' own fault shapes).
        faults: ``LineFaults`` for this line; ``fault_input`` says whether bytes from the terminal suffer too.
        name: names the line in the fault generators' seeds, so two devices with one profile differ.
    """

    def __init__(self, baud: int | None = None, corrupt: Callable[[bytes], bytes] | None = None, *,
                 faults: LineFaults | None = None, fault_input: bool = True, name: str = "line") -> None:
        self.baud, self.name = baud, name
        self.corrupt = corrupt
        self._fault_input = fault_input
        self._dir = tempfile.mkdtemp(prefix="pos-sim-tty-")
        self.path = os.path.join(self._dir, "tty")
        self._closed = False
        self._write_lock = threading.Lock()
        self._fd_lock = threading.Lock()  # an fd is never read or written while unplug() closes it
        self._hold_until = 0.0
        self.bytes_in = self.bytes_out = 0  # what crossed the line each way (benches count framing with it)
        self.set_faults(faults)
        self._open_pty()

    # --- faults ---

    def set_faults(self, faults: LineFaults | None) -> None:
        """Replace this line's faults (fresh seeded generators; None = a clean line)."""
        self.faults = faults or LineFaults()
        self.out_faults = FaultInjector(self.faults, f"{self.name}:out")  # each line its own random stream
        self.in_faults = FaultInjector(self.faults if self._fault_input else LineFaults(), f"{self.name}:in")

    def silence(self, seconds: float) -> None:
        """Hold every write back for ``seconds`` from now (a device that goes quiet)."""
        self._hold_until = time.monotonic() + seconds

    @property
    def plugged(self) -> bool:
        return self.master >= 0

    def unplug(self) -> None:
        """Pull the cable: close the pty and remove ``path``. The terminal's open port starts failing (EIO)."""
        with self._fd_lock:
            if self.master < 0:
                return
            for fd in (self.master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.master = self._slave = -1
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def replug(self) -> None:
        """Plug it back: a new pty behind the same ``path``."""
        with self._fd_lock:
            if self.master < 0 and not self._closed:
                self._open_pty()

    # --- I/O ---

    def read(self, timeout_s: float) -> bytes:
        """Up to 4096 bytes, or ``b""`` when nothing arrived within ``timeout_s``."""
        master = self.master
        if master < 0:
            time.sleep(timeout_s)
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout_s)
        except (OSError, ValueError):  # closed under us by unplug()
            return b""
        if not ready:
            return b""
        arrived = time.monotonic()
        with self._fd_lock:
            if self.master != master:
                return b""
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                return b""
        if self.baud:  # the terminal's bytes take their line time to arrive (a pty has no baud rate): counted
            sleep_until(arrived + len(data) * 10 / self.baud)  # from when they showed up, to a deadline
        self.bytes_in += len(data)
        return self.in_faults.apply(data)

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.corrupt is not None:
            data = self.corrupt(data)
        with self._write_lock:
            pause = max(self._hold_until - time.monotonic(), 0.0) + self.out_faults.pause_before_write()
            if pause > 0:
                time.sleep(pause)
            view = memoryview(self.out_faults.apply(data))
            self.bytes_out += len(view)
            started, sent = time.monotonic(), 0
            while view:
                chunk = view
                if self.baud:  # a chunk reaches the far end when its last bit has crossed the line
                    chunk = view[:max(4, self.baud // 2000)]  # ~5 ms of line time: a leading ACK is not held back
                    sleep_until(started + (sent + len(chunk)) * 10 / self.baud)
                with self._fd_lock:
                    if self.master < 0:
                        return  # unplugged: the bytes go nowhere
                    try:
                        n = os.write(self.master, chunk)
                    except BlockingIOError:
                        n = 0
                    except OSError:
                        return
                if not n:
                    time.sleep(0.01)
                    continue
                view, sent = view[n:], sent + n

    def close(self) -> None:
        if not self._closed:
            self.unplug()
            self._closed = True
            try:
                os.rmdir(self._dir)
            except OSError:
                pass

    def __del__(self) -> None:  # a simulated device nobody stopped must not leave ptys and temp dirs behind
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: best effort
            pass

    def __enter__(self) -> PtyPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_pty(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        os.set_blocking(self.master, False)
        staging = self.path + ".new"
        os.symlink(os.ttyname(self._slave), staging)
        os.replace(staging, self.path)  # atomic: the terminal never sees a half-made link


class DeviceThread:
    """Runs ``on_bytes(data)`` for every chunk read from a ``PtyPort`` and ``on_tick(now)`` at least every 50 ms.

    A simulated device subclasses nothing: it hands its two callbacks to this thread and writes replies through
    ``port.write``. ``stop()`` ends the thread and closes the port (the terminal then sees the device vanish).
    """

    def __init__(self, name: str, port: PtyPort, on_bytes: Callable[[bytes], None],
                 on_tick: Callable[[float], None] | None = None) -> None:
        self.port = port
        self._on_bytes = on_bytes
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sim-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(0.05)
            if data:
                self._on_bytes(data)
            if self._on_tick is not None:
                self._on_tick(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.port.close()
