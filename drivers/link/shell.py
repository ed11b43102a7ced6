"""Pyserial shell around ``LinkCore``: one port, one reader thread, request/response and unsolicited events.

Two threads drive the core, each under the core's lock, reading the port only under it (so bytes reach the
core in order). While a request waits for its response, the requesting thread owns the port and the core's
timers: on a POSIX device (``port.SelectPort``) it waits on the port itself until the core's next deadline,
feeds what arrives and runs ``handle_timer``, so its response wakes it directly (no hand-off from another
thread) and the reader thread, which leaves the port alone then, is not woken for it. The reader thread
watches the port when no request is under way, in a burst (a request sent within ``ack_timeout / 4``, the
delay of an ACK that could ride on it, of the last one's end) only that long after the last one, so a burst
does not wake it once a request; it waits at most until the core's timer (a delayed ACK, a stalled partial
frame) and delivers unsolicited frames (one that comes in a burst, at most ``ack_timeout / 4`` late). Ports without
a descriptor (``loop://``, ``socket://``: ``port.PolledPort``) are read by the reader thread only, the
requester sleeping on its completion until the core's timer. A response has CMD = request CMD | 0x80 and
echoes the request's SEQ in DATA[0]; other frames go to ``on_event``. A vanished port fails the pending
request: DeviceGone.

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
from drivers.link.port import IDLE_POLL_S, READER, REQUESTER, LinkPort, SelectPort, open_port
from drivers.link.trace import FrameTracer, split_spy_url, trace_line
from pos_errors import DeviceError, DeviceFault, DeviceGone, DeviceTimeout

__all__ = ["SerialLink"]

log = logging.getLogger(__name__)
_INF = float("inf")
_EVENT_ORDER_S = 0.5  # longest a response waits for the events that came before it (a listener may be slow)


class _Pending:
    def __init__(self, cmd: int) -> None:
        self.cmd, self.seq, self.done = cmd, -1, threading.Event()
        self.answer_cmd = response_cmd(cmd)
        self.response: FrameReceived | None = None
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
        self._linger_s = ack_timeout_s / 4  # the reader stays off the port this long after a request
        self._lock = threading.Lock()  # guards the core and reads; writes leave in the order the core made them
        self._request_lock, self._closing = threading.Lock(), threading.Event()
        self._core = self._new_core()
        self._serial: LinkPort | None = None
        self._pending: _Pending | None = None  # while set, its requesting thread runs the core's timers
        self._deferred: list[Event] = []  # for on_event, met by a requester: the reader thread delivers them
        self._delivered = threading.Condition(self._lock)  # a requester waits on it for the events before its answer
        self._deferred_total = self._delivered_total = 0
        self._quiet_until = 0.0  # the reader thread watches the port again from then (no request meanwhile)
        self._reader_due = _INF  # when the reader thread looks at the core next by itself (0: it is awake)
        self._reader_watches = True  # it waits on the port (else it is parked, off it)
        self._last_end = -_INF  # when the last request ended
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
        self._core, self._serial, self._quiet_until = self._new_core(), port, 0.0
        self._closing.clear()
        with self._lock:
            self._write_out(port)  # the SYN
        self._thread = threading.Thread(target=self._run, args=(port, self._core), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if (port := self._serial) is not None:
            port.ring(READER)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._shut(DeviceGone(f"{self.url} closed", fault=DeviceFault.PORT))

    def request(self, cmd: int, data: bytes, timeout_s: float) -> FrameReceived:
        """Send ``cmd``, block for its response (returned without the echoed SEQ byte in front of ``data``).
        Raises DeviceTimeout (not ACKed after the retries, or no response in ``timeout_s``) or DeviceGone."""
        with self._request_lock:
            pending, core = _Pending(cmd), self._core
            with self._lock:
                if (port := self._serial) is None:
                    raise DeviceGone(f"{self.url} is not open", fault=DeviceFault.PORT)
                now = self._clock()
                burst = now - self._last_end < self._linger_s  # another request may well follow this one
                pending.seq = core.send(cmd, data, now)
                self._pending = pending
                gone = self._write_out(port)
                timer = core.get_timer()
            if gone is None:
                gone = self._await(pending, port, timer, now + timeout_s)
            if gone is not None:
                self._lost(gone)  # fails ``pending``: DeviceGone
            with self._lock:
                if self._pending is pending:
                    self._pending = None
                now = self._last_end = self._clock()
                timer = core.get_timer()
                quiet = now + self._linger_s if burst else now  # a delayed ACK due sooner ends it: one wake-up
                self._quiet_until = quiet if timer is None else min(quiet, max(now, timer))
                late = (timer is not None and timer < self._reader_due) or not (burst or self._reader_watches)
            if late:
                port.ring(READER)  # its next look would come after the core's next deadline, or it is parked
            self._after_earlier_events()
            if pending.response is None:  # no error either: nothing came back in time
                raise pending.error or DeviceTimeout(f"no response to command 0x{cmd:02X} in {timeout_s} s",
                                                     fault=DeviceFault.NO_ANSWER)
            return pending.response

    def _await(self, pending: _Pending, port: LinkPort, timer: float | None, end: float) -> BaseException | None:
        """Wait for ``pending`` until ``end``, running the core's timers (``timer``: the next) and, on a
        SelectPort, reading the port; the error if the port vanished."""
        core, clock = self._core, self._clock
        while not pending.done.is_set():
            now = clock()
            if now >= end:
                return None
            wait = end - now if timer is None else max(0.0, min(end, timer) - now)
            if isinstance(port, SelectPort):
                try:
                    readable = port.wait(REQUESTER, True, wait)
                except (OSError, ValueError) as exc:  # closed under the wait: shut (``done``) or vanished
                    return None if pending.done.is_set() else exc
            elif pending.done.wait(wait):
                return None
            with self._lock:
                if self._pending is not pending or self._serial is not port:
                    return None  # shut (the port may be closed: never read it then)
                try:
                    data = port.read_now() if isinstance(port, SelectPort) and readable else b""
                except (serial.SerialException, OSError) as exc:
                    return exc
                if data and self._tracer is not None:
                    self._tracer.feed("D>T", data)
                events = self._take_mine(core.pump(data, clock()), port)
                gone = self._write_out(port)
                timer = core.get_timer()
            for event in events:
                self._dispatch(event)
            if gone is not None:
                return gone
        return None

    def _run(self, port: LinkPort, core: LinkCore) -> None:
        selectable = isinstance(port, SelectPort)
        try:
            while not self._closing.is_set() and self._owns(port):
                with self._lock:
                    now, pending = self._clock(), self._pending
                    timer = None if pending is not None else core.get_timer()  # else the requester's
                    watch = not selectable or (pending is None and now >= self._quiet_until)
                    if not watch:  # a requester reads the port, or did just now: look again after a while
                        back = now + self._linger_s if pending is not None else self._quiet_until
                        timer = back if timer is None else min(timer, back)
                    self._reader_due, self._reader_watches = _INF if timer is None else timer, watch
                wait = None if timer is None else max(0.0, timer - now)
                if isinstance(port, SelectPort):
                    readable, data = port.wait(READER, watch, wait), b""
                else:
                    data = port.read(wait)
                with self._lock:
                    self._reader_due = 0.0
                    events, self._deferred = self._deferred, []
                    taken = len(events)
                    if (self._pending is None or not selectable) and self._owns(port):  # else the requester
                        if isinstance(port, SelectPort) and readable:  # reads and runs the timers
                            data = port.read_now()
                        if data and self._tracer is not None:
                            self._tracer.feed("D>T", data)
                        events += core.pump(data, self._clock())
                        gone = self._write_out(port)
                    else:
                        gone = None
                for event in events:
                    self._dispatch(event)
                if taken:
                    with self._lock:
                        self._delivered_total += taken
                        self._delivered.notify_all()
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
        """Of the events a requester met (holding ``_lock``): those only the link handles (ACKs, failures,
        responses); frames and resets for ``on_event`` are left to the reader thread, in order."""
        mine: list[Event] = []
        for event in events:
            linked = isinstance(event, FrameAcked | LinkFailed) or (isinstance(event, FrameReceived)
                                                                     and is_response(event.cmd))
            (mine if linked else self._deferred).append(event)
            self._deferred_total += not linked
        if len(mine) < len(events):
            port.ring(READER)
        return mine

    def _after_earlier_events(self) -> None:
        """A response returns only after the events that arrived before it reached ``on_event`` (a card inserted
        before the answer to GET_STATUS must not be counted after it), delivered by the reader thread."""
        if threading.current_thread() is self._thread:
            return
        with self._lock:
            target = self._deferred_total
            self._delivered.wait_for(lambda: self._delivered_total >= target or self._serial is None,
                                     _EVENT_ORDER_S)

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
        pending.done.set()

    def _shut(self, error: DeviceError) -> None:
        with self._lock:
            port, self._serial = self._serial, None
            pending = self._pending
        if port is None:
            return
        if pending is not None:
            pending.error = error
            pending.done.set()
            port.ring(REQUESTER)
        thread = self._thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            port.close()
        else:
            port.ring(READER)  # the reader thread ends and closes the port


def _trace_line(path: str, url: str, line: str) -> None:
    trace_line(path, url, line, log.info)
