"""When ``pos-sim``'s terminal goes away (tmux pane killed, SSH dropped, window closed), notice it and say so once.

Textual's input thread reads the tty in a loop; once the tty is hung up every read returns at once with nothing
(end of file), and the UI went on polling it at full speed with every simulated device and back end still up.
``TerminalWatch`` notices the terminal leaving in either of the ways it can:

* ``SIGHUP`` (the kernel sends it to the session's controlling process when the tty hangs up, a shell passes it
  on to its jobs) and ``SIGTERM`` (someone stopping the simulator): the handler only writes a byte to a pipe;
* the tty itself: ``poll`` with no events asked for still reports ``POLLHUP`` / ``POLLERR`` / ``POLLNVAL``, so
  the watching thread sleeps until the tty hangs up, fails or is closed (the state in which reads give end of
  file or ``EIO``), without ever reading the cashier's keys.

Either way ``on_gone(reason)`` is called once, from the watching thread, and should ask the UI to quit; the
caller then stops the world as on a normal quit. Should that not have happened ``grace_s`` later (a UI wedged
writing to the dead tty), ``on_stuck(reason)`` is called (``pos-sim``: stop the world, leave at once).

>>> exit_code("SIGHUP"), exit_code("SIGTERM"), exit_code("hang-up"), exit_code(None)
(129, 143, 129, 0)
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

__all__ = ["TerminalWatch", "exit_code", "GRACE_S"]

GRACE_S = 10.0  # from on_gone to on_stuck, unless the watch was closed meanwhile
_SIGNALS: dict[int, str] = {signal.SIGHUP: "SIGHUP", signal.SIGTERM: "SIGTERM"}
_TTY_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def exit_code(reason: str | None) -> int:
    """The process's exit status after ``reason`` (None: the user quit), as a shell reports a signal: 128 + n."""
    if reason is None:
        return 0
    return 128 + (signal.SIGTERM if reason == "SIGTERM" else signal.SIGHUP)


class TerminalWatch:
    """Watches one tty (by file descriptor) and the signals that mean "stop"; a context manager.

    Enter it on the main thread (signal handlers can only be set there); leaving it restores the previous
    handlers and ends the watching thread. ``reason`` is None until the terminal went away, then ``"SIGHUP"``,
    ``"SIGTERM"`` or ``"hang-up"`` (the tty reported ``POLLHUP``, ``POLLERR`` or ``POLLNVAL``).
    """

    def __init__(self, fd: int, on_gone: Callable[[str], None], on_stuck: Callable[[str], None] | None = None,
                 grace_s: float = GRACE_S) -> None:
        self.fd = fd
        self.reason: str | None = None
        self._on_gone = on_gone
        self._on_stuck = on_stuck
        self._grace_s = grace_s
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._closed = threading.Event()
        self._previous: dict[int, object] = {}
        self._thread = threading.Thread(target=self._watch, name="pos-sim-tty-watch", daemon=True)

    def __enter__(self) -> TerminalWatch:
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._signalled)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Restore the signal handlers and end the watching thread (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # what signal.signal returned before
        self._wake(b"x")
        self._thread.join(timeout=5)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        self._wake(bytes([signum]))  # no locks in a signal handler: the watching thread does the rest

    def _wake(self, byte: bytes) -> None:
        try:
            os.write(self._wake_w, byte)
        except (BlockingIOError, OSError):  # the pipe is full (it already says wake up) or closed
            pass

    def _watch(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(self.fd, 0)  # no events asked: only hang-up, error, or a closed descriptor come back
        reason: str | None = None
        while reason is None:
            events = dict(poller.poll())
            if self._closed.is_set():
                return
            if events.get(self.fd, 0) & _TTY_GONE:
                reason = "hang-up"
            if events.get(self._wake_r):
                received = os.read(self._wake_r, 64)
                reason = _SIGNALS.get(received[-1], reason) if received else reason
        self.reason = reason
        self._on_gone(reason)
        if not self._closed.wait(self._grace_s) and self._on_stuck is not None:
            self._on_stuck(reason)
