"""Pyserial shell around ``LinkCore``: one port, one reader thread, request/response and unsolicited events.

The reader thread writes ``data_to_send()``, reads with a timeout from ``get_timer()``, then ``pump``s: feeds
what it read and runs ``handle_timer(now)``. With no timer it blocks until bytes arrive: a request whose send
starts an earlier timer, and ``close``, wake it with pyserial's ``cancel_read`` (device paths, ``loop://``;
a URL without it, such as ``socket://``, is polled every 50 ms). A response has CMD = request CMD | 0x80 and
echoes the request's SEQ in DATA[0]; other frames go to ``on_event``. A vanished port fails the pending request:
DeviceGone.

>>> SerialLink("loop://").is_open
False
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable

import serial

from drivers.link.core import Event, FrameAcked, FrameReceived, LinkCore, LinkFailed
from drivers.link.frames import is_response, response_cmd
from drivers.link.trace import FrameTracer, split_spy_url, trace_line
from pos_errors import DeviceError, DeviceFault, DeviceGone, DeviceTimeout

__all__ = ["SerialLink"]

log = logging.getLogger(__name__)
_IDLE_POLL_S = 0.05  # longest read on a port without cancel_read: bounds how late another thread's timer is seen
_TIMEOUT_SLACK_S = 0.005  # a read may end this much past a timer: cheaper than re-tuning the port each loop


class _Pending:
    def __init__(self, cmd: int) -> None:
        self.cmd, self.seq, self.done = cmd, -1, threading.Event()
        self.response: FrameReceived | None = None
        self.error: DeviceError | None = None


class SerialLink:
    """``url``: a device path or any ``serial.serial_for_url`` URL (``socket://``, ``loop://``). ``spy://PORT``
    ``[?file=PATH]`` traces one masked line per frame (``drivers.link.trace``) to PATH or this module's log,
    never raw bytes. ``on_event`` gets unsolicited ``FrameReceived`` and ``PeerReset`` events, on the reader
    thread."""

    def __init__(self, url: str, *, baud: int = 115200, ack_timeout_s: float = 0.2, retries: int = 8,
                 on_event: Callable[[Event], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.baud, self._on_event, self._clock = url, baud, on_event, clock
        self._new_core = functools.partial(LinkCore, ack_timeout_s=ack_timeout_s, retries=retries,
                                           byte_time_s=10 / baud)  # 10 bits a byte (8N1) on the line
        self._lock = threading.Lock()  # guards the core; writes leave in the order the core made them
        self._request_lock, self._closing = threading.Lock(), threading.Event()
        self._core = self._new_core()
        self._serial: serial.SerialBase | None = None
        self._pending: _Pending | None = None
        self._thread: threading.Thread | None = None
        self._reading_until = 0.0  # when the reader thread's read ends by itself (inf: blocked until bytes come)
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
            port = serial.serial_for_url(self._port_url, baudrate=self.baud, timeout=_IDLE_POLL_S,
                                         write_timeout=1.0, exclusive=True)  # open() flushes stale input
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"cannot open {self.url}: {exc}", fault=DeviceFault.PORT) from exc
        self._core, self._serial = self._new_core(), port
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, args=(port, self._core), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._wake(float("-inf"))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._shut(DeviceGone(f"{self.url} closed", fault=DeviceFault.PORT))

    def request(self, cmd: int, data: bytes, timeout_s: float) -> FrameReceived:
        """Send ``cmd``, block for its response (returned without the echoed SEQ byte in front of ``data``).
        Raises DeviceTimeout (not ACKed after the retries, or no response in ``timeout_s``) or DeviceGone."""
        with self._request_lock:
            pending = _Pending(cmd)
            with self._lock:
                if self._serial is None:
                    raise DeviceGone(f"{self.url} is not open", fault=DeviceFault.PORT)
                pending.seq = self._core.send(cmd, data, self._clock())
                self._pending = pending
                timer = self._core.get_timer()
            self._flush()
            if timer is not None:
                self._wake(timer)  # the reader thread must see the new retransmission deadline
            pending.done.wait(timeout_s)
            self._pending = None
            if pending.response is None:  # no error either: nothing came back in time
                raise pending.error or DeviceTimeout(f"no response to command 0x{cmd:02X} in {timeout_s} s",
                                                     fault=DeviceFault.NO_ANSWER)
            return pending.response

    def _run(self, port: serial.SerialBase, core: LinkCore) -> None:
        wakeable = hasattr(port, "cancel_read")  # else poll: nothing could wake a blocked read
        try:
            while not self._closing.is_set() and self._owns(port):
                self._flush()
                with self._lock:  # a request's send between here and the read wakes it (``_wake``)
                    timer = core.get_timer()  # an empty read returns by then and pump() runs the timer
                    now = self._clock()
                    wait = None if timer is None else max(0.0, timer - now)
                    if not wakeable:
                        wait = _IDLE_POLL_S if wait is None else min(_IDLE_POLL_S, wait)
                    if wait != port.timeout and (wait is None or port.timeout is None
                                                 or abs(port.timeout - wait) > _TIMEOUT_SLACK_S):
                        port.timeout = wait  # each change is a termios call in pyserial: only when it matters
                    self._reading_until = float("inf") if port.timeout is None else now + port.timeout
                data = port.read(port.in_waiting or 1)
                if data and (rest := port.in_waiting):  # the rest of the burst that woke us: one pump, not two
                    data += port.read(rest)
                if data and self._tracer is not None:
                    self._tracer.feed("D>T", data)
                with self._lock:
                    self._reading_until = 0.0
                    events = core.pump(data, self._clock())
                self._flush()
                for event in events:
                    self._dispatch(event)
        except (serial.SerialException, OSError) as exc:
            if not self._closing.is_set() and self._owns(port):
                log.warning("link %s lost: %s", self.url, exc)
                self._shut(DeviceGone(f"{self.url} disconnected", fault=DeviceFault.PORT))

    def _owns(self, port: serial.SerialBase) -> bool:
        return self._serial is port  # else the port was shut (and this thread's read woken): the thread ends

    def _wake(self, deadline: float) -> None:
        """Wake the reader thread if its read would end after ``deadline`` (a spare wake-up costs one loop)."""
        port = self._serial
        with self._lock:
            late = deadline < self._reading_until
        if late and port is not None and hasattr(port, "cancel_read"):
            with contextlib.suppress(serial.SerialException, OSError):
                port.cancel_read()

    def _flush(self) -> None:
        gone: BaseException | None = None
        with self._lock:
            out = self._core.data_to_send()
            if out and self._serial is not None:
                if self._tracer is not None:
                    self._tracer.feed("T>D", out)
                try:
                    self._serial.write(out)
                except serial.SerialTimeoutException:  # the device stopped reading: retried, then not answering
                    self._core.send_failed()
                except (serial.SerialException, OSError) as exc:  # the port vanished: gone, not "not answering"
                    gone = exc
        if gone is not None:
            log.warning("link %s lost: %s", self.url, gone)
            self._shut(DeviceGone(f"{self.url} disconnected", fault=DeviceFault.PORT))

    def _dispatch(self, event: Event) -> None:
        pending = self._pending
        if isinstance(event, LinkFailed) and pending is not None and event.seq == pending.seq:
            pending.error = DeviceTimeout(f"not answering ({event.reason}, command 0x{event.cmd:02X})",
                                          fault=DeviceFault.NO_ANSWER)
            pending.done.set()
        elif isinstance(event, FrameReceived) and is_response(event.cmd):
            if pending is not None and (event.cmd, event.data[:1]) == (response_cmd(pending.cmd),
                                                                        bytes([pending.seq])):
                pending.response = FrameReceived(event.cmd, event.data[1:], event.seq)
                pending.done.set()
        elif self._on_event is not None and not isinstance(event, FrameAcked | LinkFailed):
            try:
                self._on_event(event)
            except Exception:  # a listener's bug must not kill the reader thread
                log.exception("link event listener failed")

    def _shut(self, error: DeviceError) -> None:
        with self._lock:
            port, self._serial = self._serial, None
        if port is None:
            return
        with contextlib.suppress(serial.SerialException, OSError):
            if hasattr(port, "cancel_read"):
                port.cancel_read()  # a reader thread blocked on the port ends (it stops: the port is gone)
            port.close()
        if (pending := self._pending) is not None:
            pending.error = error
            pending.done.set()


def _trace_line(path: str, url: str, line: str) -> None:
    trace_line(path, url, line, log.info)
