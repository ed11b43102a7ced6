"""How a simulated host ends idle connections, as real acquirer hosts and HTTPS front ends do: after
``idle_timeout_s`` without a request the connection is closed — silently (a TCP FIN, no TLS alert: what many
hosts and load balancers do) or, with ``close_notify``, after a TLS close_notify alert.

And the race a long day brings sooner or later: the host's idle timer fires just as the terminal sends its next
request on the kept connection. ``arm_race()`` makes the next request that arrives on an already used connection
meet exactly that: the host closes the connection without reading it (the request is still unread in its receive
buffer, so the kernel answers with a reset). The host never saw the request; the terminal cannot know that.

Used by the acquirer (``sim.backends.acquirer``) per connection and by the HTTP back ends
(``sim.backends.loopback_http``).

>>> policy = IdlePolicy(idle_timeout_s=0.5)
>>> policy.idle_timeout_s, policy.close_notify, policy.idle_closes
(0.5, False, 0)
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time

__all__ = ["IdlePolicy", "DEFAULT_IDLE_TIMEOUT_S"]

DEFAULT_IDLE_TIMEOUT_S = 60.0  # real acquirer hosts: commonly 30-120 s; tests set a fraction of a second
_SLICE_S = 0.25  # a waiting connection looks at a changed idle_timeout_s this often
_RACE_SETTLE_S = 0.05  # the race closes once the request (headers and body) has arrived
_NOTIFY_WAIT_S = 0.2  # how long the host waits for the peer's own close_notify before closing anyway


class IdlePolicy:
    """When and how a host closes an idle connection; counts what it closed (tests and the bench read them)."""

    def __init__(self, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S, *, close_notify: bool = False) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.close_notify = close_notify
        self.idle_closes = 0  # connections closed for idleness
        self.race_closes = 0  # connections closed with a request unread in them (``arm_race``)
        self._race = False
        self._lock = threading.Lock()

    def arm_race(self, armed: bool = True) -> None:
        """The next request on an already used connection finds the connection closed under it (once)."""
        with self._lock:
            self._race = armed

    @property
    def race_armed(self) -> bool:
        with self._lock:
            return self._race

    def wait_for_request(self, conn: socket.socket, *, used: bool) -> bool:
        """Wait until ``conn`` has something to read. True: read it. False: the connection was closed here —
        idle for ``idle_timeout_s``, or (``used`` and armed) the race: closed with the request unread."""
        if not (isinstance(conn, ssl.SSLSocket) and conn.pending()) and not self._readable(conn):
            self._close(conn, notify=self.close_notify)
            with self._lock:
                self.idle_closes += 1  # counted once closed: a test waiting on it finds the connection closed
            return False
        with self._lock:
            race, self._race = (self._race and used), (self._race and not used)
            if race:
                self.race_closes += 1
        if race:
            time.sleep(_RACE_SETTLE_S)  # the whole request is in (the client's send succeeded), still unread
            self._close(conn, notify=False)
            return False
        return True

    def _readable(self, conn: socket.socket) -> bool:
        """Wait for ``conn`` to become readable, at most ``idle_timeout_s`` since now (a change of the setting
        applies to connections already waiting: they look again every ``_SLICE_S``)."""
        since = time.monotonic()
        while True:
            left = self.idle_timeout_s - (time.monotonic() - since)
            if left <= 0:
                return False
            try:
                readable, _, _ = select.select([conn], [], [], min(left, _SLICE_S))
            except (OSError, ValueError):
                return True  # closed under us: the read that follows says so
            if readable:
                return True

    @staticmethod
    def _close(conn: socket.socket, *, notify: bool) -> None:
        if notify and isinstance(conn, ssl.SSLSocket):
            with contextlib.suppress(OSError, ValueError):
                conn.settimeout(_NOTIFY_WAIT_S)  # unwrap waits for the peer's close_notify: an idle peer sends none
                conn.unwrap()
        with contextlib.suppress(OSError):
            socket.socket.shutdown(conn, socket.SHUT_RDWR)
        conn.close()
