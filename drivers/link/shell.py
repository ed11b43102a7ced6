"""Pyserial shell around ``LinkCore``: one port, one reader thread, request/response and unsolicited events.

Two threads drive the core, each under the core's lock. The reader thread waits on the port (``port.py``: one
``select`` with the timeout of that wait, the whole burst in one read), ``pump``s what it read (feed it, run
``handle_timer(now)``) and writes what the core wants sent. While a request waits for its response, the
requesting thread owns the core's timers: it sleeps on its own completion until the core's next deadline and
runs ``handle_timer`` itself, so the reader thread stays blocked on the port with no timeout, and a request
neither re-tunes the port nor wakes the reader. Otherwise (between requests: a delayed ACK, a stalled partial
frame) the reader thread waits at most until the core's timer. The thread that completes a request hands the
timers back at once. A response has CMD = request CMD | 0x80 and echoes the request's SEQ in DATA[0]; other
frames go to ``on_event``. A vanished port fails the pending request: DeviceGone.

>>> SerialLink("loop://").is_open
False
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

import serial

from drivers.link.core import Event, FrameAcked, FrameReceived, LinkCore, LinkFailed
from drivers.link.frames import is_response, response_cmd
from drivers.link.port import IDLE_POLL_S, LinkPort, open_port
from drivers.link.trace import FrameTracer, split_spy_url, trace_line
from pos_errors import DeviceError, DeviceFault, DeviceGone, DeviceTimeout

__all__ = ["SerialLink"]

log = logging.getLogger(__name__)


class _Pending:
    def __init__(self, cmd: int) -> None:
        self.cmd, self.seq, self.done = cmd, -1, threading.Event()
        self.answer_cmd = response_cmd(cmd)
        self.response: FrameReceived | None = None
        self.by_reader = False  # completed by the reader thread (which then owns the core's timers again)
        self.error: DeviceError | None = None


class SerialLink:
    """``url``: a device path or any ``serial.serial_for_url`` URL (``socket://``, ``loop://``). ``spy://PORT``
    ``[?file=PATH]`` traces one masked line per frame (``drivers.link.trace``) to PATH or this module's log,
    never raw bytes. ``on_event`` gets unsolicited ``FrameReceived`` and ``PeerReset`` events, in the order the
    core reported them, on the reader thread."""

    def __init__(self, url: str, *, baud: int = 115200, ack_timeout_s: float = 0.2, retries: int = 8,
                 on_event: Callable[[Event], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.baud, self._on_event, self._clock = url, baud, on_event, clock
        self._new_core = functools.partial(LinkCore, ack_timeout_s=ack_timeout_s, retries=retries,
                                           byte_time_s=10 / baud)  # 10 bits a byte (8N1) on the line
        self._lock = threading.Lock()  # guards the core; writes leave in the order the core made them
        self._request_lock, self._closing = threading.Lock(), threading.Event()
        self._core = self._new_core()
        self._serial: LinkPort | None = None
        self._pending: _Pending | None = None  # while set, its requesting thread runs the core's timers
        self._deferred: list[Event] = []  # for on_event, produced by a requester's timer: the reader delivers them
        self._thread: threading.Thread | None = None
        self._port_url, trace_file = split_spy_url(url)
        self._tracer: FrameTracer | None = None
        if trace_file is not None:
            self._tracer = FrameTracer(functools.partial(_trace_line, trace_file, url))

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        """Open the port (exclusively where supported) with a fresh core. Raises DeviceGone."""
        if self._serial is not None:
            return
        try:  # exclusive: flock() on POSIX, always so on Windows, ignored by socket:// and loop://
            port = open_port(serial.serial_for_url(self._port_url, baudrate=self.baud, timeout=IDLE_POLL_S,
                                                   write_timeout=1.0, exclusive=True))  # flushes stale input
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"cannot open {self.url}: {exc}", fault=DeviceFault.PORT) from exc
        self._core, self._serial = self._new_core(), port
        self._closing.clear()
        with self._lock:
            self._write_out(port)  # the SYN
        self._thread = threading.Thread(target=self._run, args=(port, self._core), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if (port := self._serial) is not None:
            port.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._shut(DeviceGone(f"{self.url} closed", fault=DeviceFault.PORT))

    def request(self, cmd: int, data: bytes, timeout_s: float) -> FrameReceived:
        """Send ``cmd``, block for its response (returned without the echoed SEQ byte in front of ``data``).
        Raises DeviceTimeout (not ACKed after the retries, or no response in ``timeout_s``) or DeviceGone."""
        with self._request_lock:
            pending, core, clock = _Pending(cmd), self._core, self._clock
            with self._lock:
                if (port := self._serial) is None:
                    raise DeviceGone(f"{self.url} is not open", fault=DeviceFault.PORT)
                now = clock()
                pending.seq = core.send(cmd, data, now)
                self._pending = pending
                gone = self._write_out(port)
                timer = core.get_timer()
            end = now + timeout_s
            while gone is None and not pending.done.wait(max(0.0, min(end, end if timer is None else timer) - now)):
                now = clock()
                if now >= end:
                    break
                with self._lock:
                    if self._pending is not pending:
                        continue  # completed meanwhile: ``done`` is set
                    core.handle_timer(now)  # retransmit, give up a stalled frame: what the reader would do
                    events = self._take_mine(_drain(core), port)
                    gone = self._write_out(port)
                    timer = core.get_timer()
                for event in events:
                    self._dispatch(event)
            with self._lock:
                if self._pending is pending:
                    self._pending = None
                handed_back = not pending.by_reader and core.get_timer() is not None
            if handed_back:
                port.wake()  # the reader thread may be blocked with no timeout: it owns the timers again
            if gone is not None:
                self._lost(gone)
            if pending.response is None:  # no error either: nothing came back in time
                raise pending.error or DeviceTimeout(f"no response to command 0x{cmd:02X} in {timeout_s} s",
                                                     fault=DeviceFault.NO_ANSWER)
            return pending.response

    def _run(self, port: LinkPort, core: LinkCore) -> None:
        try:
            while not self._closing.is_set() and self._owns(port):
                with self._lock:  # a request that starts while we wait owns the timers: no need to wake us
                    timer = None if self._pending is not None else core.get_timer()
                data = port.read(None if timer is None else max(0.0, timer - self._clock()))
                if data and self._tracer is not None:
                    self._tracer.feed("D>T", data)
                with self._lock:
                    events = core.pump(data, self._clock())
                    if self._deferred:  # a requester's timer found them first: they go before the new ones
                        events, self._deferred = self._deferred + events, []
                    gone = self._write_out(port)
                for event in events:
                    self._dispatch(event)
                if gone is not None:
                    self._lost(gone)
        except (serial.SerialException, OSError) as exc:
            if not self._closing.is_set() and self._owns(port):
                self._lost(exc)
        finally:
            if not self._owns(port):
                port.close()  # closed here, never under this thread's own read (its descriptor could be reused)

    def _owns(self, port: LinkPort) -> bool:
        return self._serial is port  # else the port was shut (and this thread's read woken): the thread ends

    def _write_out(self, port: LinkPort) -> BaseException | None:
        """Write what the core wants sent (holding ``_lock``); the error if the port vanished."""
        out = self._core.data_to_send()
        if not out or self._serial is not port:
            return None
        if self._tracer is not None:
            self._tracer.feed("T>D", out)
        try:
            port.write(out)
        except serial.SerialTimeoutException:  # the device stopped reading: retried, then not answering
            self._core.send_failed()
        except (serial.SerialException, OSError) as exc:  # the port vanished: gone, not "not answering"
            return exc
        return None

    def _lost(self, exc: BaseException) -> None:
        log.warning("link %s lost: %s", self.url, exc)
        self._shut(DeviceGone(f"{self.url} disconnected", fault=DeviceFault.PORT))

    def _take_mine(self, events: list[Event], port: LinkPort) -> list[Event]:
        """Of the events a requester's timer produced (holding ``_lock``): those only the link handles (ACKs,
        failures, responses); frames and resets for ``on_event`` are left to the reader thread, in order."""
        mine: list[Event] = []
        for event in events:
            linked = isinstance(event, FrameAcked | LinkFailed) or (isinstance(event, FrameReceived)
                                                                     and is_response(event.cmd))
            (mine if linked else self._deferred).append(event)
        if len(mine) < len(events):
            port.wake()
        return mine

    def _dispatch(self, event: Event) -> None:
        pending = self._pending
        if isinstance(event, LinkFailed) and pending is not None and event.seq == pending.seq:
            pending.error = DeviceTimeout(f"not answering ({event.reason}, command 0x{event.cmd:02X})",
                                          fault=DeviceFault.NO_ANSWER)
            self._finish(pending)
        elif isinstance(event, FrameReceived) and is_response(event.cmd):
            if pending is not None and event.cmd == pending.answer_cmd and event.data[:1] == bytes([pending.seq]):
                pending.response = FrameReceived(event.cmd, event.data[1:], event.seq)
                self._finish(pending)
        elif self._on_event is not None and not isinstance(event, FrameAcked | LinkFailed):
            try:
                self._on_event(event)
            except Exception:  # a listener's bug must not kill the reader thread
                log.exception("link event listener failed")

    def _finish(self, pending: _Pending) -> None:
        if self._pending is pending:  # the timers go back to the reader thread before the requester wakes
            self._pending = None  # (only its own requester replaces it, and only after ``done``)
        pending.by_reader = threading.current_thread() is self._thread  # which then sees them on its next wait
        pending.done.set()

    def _shut(self, error: DeviceError) -> None:
        with self._lock:
            port, self._serial = self._serial, None
            pending = self._pending
        if port is None:
            return
        thread = self._thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            port.close()
        else:
            port.wake()  # the reader thread ends and closes the port
        if pending is not None:
            pending.error = error
            pending.done.set()


def _drain(core: LinkCore) -> list[Event]:
    return list(iter(core.next_event, None))


def _trace_line(path: str, url: str, line: str) -> None:
    trace_line(path, url, line, log.info)
