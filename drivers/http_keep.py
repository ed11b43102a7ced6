"""One kept HTTP(S) connection for a platform client (HTTP/1.1 keep-alive), so consecutive requests of a top-up
(lookup, order, status, balance) pay for one TLS handshake instead of one each.

A pool of at most one idle connection: ``take`` hands out the idle connection when it is still clean — not idle
longer than ``keep_alive_s`` and nothing readable on its socket (a readable idle socket means the server closed
it or sent something unasked: it is never read into the next request) — or else a new, unconnected one;
``give`` puts a connection back only after an answer that was read to its end and did not ask to close; anything
else is closed with ``discard``. Two requests at once simply get two connections. What a failure on a reused
connection means for the request stays the caller's decision (``drivers.carrier``).

The server may close an idle connection at any moment (its keep-alive timeout), also just after ``take`` found
it clean and as the request goes out. The request then meets a closed socket and no byte of an answer comes
back: ``response`` raises ``StaleConnection`` (a ``LinkTimeout``: outcome unknown) for a reused connection.
The server most likely never read the request, but the client cannot know; RFC 9112 §9.3.1 lets a client send
again only what is idempotent — the caller decides, on a new connection (``new``), re-signed where the
platform refuses a replayed nonce.

>>> keeper = ConnectionKeeper("127.0.0.1", 1, tls=None, timeout_s=1.0, keep_alive_s=0.0)
>>> keeper.take()[1]  # nothing kept: a new connection
False
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from drivers.http_strict import Connection, TlsConnection
from pos_errors import LinkError, LinkTimeout

__all__ = ["ConnectionKeeper", "StaleConnection"]

T = TypeVar("T")


class StaleConnection(LinkTimeout):
    """A reused connection was closed by the server as the request went out: no answer, not a byte of one.
    Outcome unknown (the server most likely never read it); the connection is closed."""


class ConnectionKeeper:
    """Keeps the last connection to ``host:port`` (HTTPS with ``tls``, else HTTP) open for ``keep_alive_s``
    seconds (0: never)."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None, timeout_s: float,
                 keep_alive_s: float) -> None:
        self._host, self._port, self._tls, self._timeout_s = host, port, tls, timeout_s
        self.keep_alive_s = keep_alive_s
        self.opened = 0  # connections handed out new (tests and the bench count reuse)
        self._idle: http.client.HTTPConnection | None = None
        self._until = 0.0
        self._lock = threading.Lock()

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """(connection, reused): the clean idle connection (connected) or a new one (not connected yet)."""
        with self._lock:
            conn, self._idle = self._idle, None
            until = self._until
        if conn is not None:
            if time.monotonic() < until and _clean(conn):
                return conn, True
            conn.close()
        return self.new(), False

    def sent_again_if_stale(self, exchange: Callable[[tuple[http.client.HTTPConnection, bool]], T]) -> T:
        """``exchange`` on ``take``'s connection; when that kept connection was closed under the request
        (``StaleConnection``), once more on a new one. Only for requests the caller may send again (see above)."""
        try:
            return exchange(self.take())
        except StaleConnection:
            return exchange((self.new(), False))

    def new(self) -> http.client.HTTPConnection:
        """A new connection, not connected yet."""
        self.opened += 1
        # http.client's connections, answers read strictly without the e-mail parser and a request's head and body
        # sent in one write (drivers.http_strict)
        if self._tls is not None:
            return TlsConnection(self._host, self._port, timeout=self._timeout_s, context=self._tls)
        return Connection(self._host, self._port, timeout=self._timeout_s)

    def connect(self, conn: http.client.HTTPConnection, where: str) -> None:
        """Connect ``conn`` (TCP and TLS). Raises LinkError (nothing was sent), the reason in ``where``'s words."""
        try:
            conn.connect()
        except ssl.SSLError as exc:  # certificate not trusted, wrong host name, not TLS at all
            raise LinkError(f"{where}: TLS handshake failed (not sent): {exc}") from exc
        except TimeoutError as exc:
            raise LinkError(f"{where}: connect timed out after {self._timeout_s} s (not sent)") from exc
        except OSError as exc:
            raise LinkError(f"{where} unreachable (not sent): {exc}") from exc

    def send(self, conn: http.client.HTTPConnection, reused: bool, where: str, method: str, target: str,
             body: bytes | None, headers: dict[str, str]) -> http.client.HTTPConnection:
        """Send one request on ``conn`` from ``take`` (connecting it first when new). A kept connection that fails
        before the whole request left is replaced once: the server never had it. Returns the connection used."""
        if not reused:
            self.connect(conn, where)
        try:
            conn.request(method, target, body=body, headers=headers)
            return conn
        except OSError:
            if not reused:
                raise
        conn.close()
        conn = self.new()
        try:
            self.connect(conn, where)
            conn.request(method, target, body=body, headers=headers)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def response(conn: http.client.HTTPConnection, reused: bool, where: str) -> http.client.HTTPResponse:
        """``conn.getresponse()``; raises ``StaleConnection`` when a reused connection ends (closed or reset by
        the server) before the first byte of an answer. Other errors are the caller's, as before."""
        try:
            return conn.getresponse()
        except (ConnectionResetError, BrokenPipeError) as exc:  # http.client.RemoteDisconnected is one
            if not reused:
                raise
            conn.close()
            raise StaleConnection(f"{where}: the kept connection was closed by the server as the request went "
                                  f"out ({type(exc).__name__}); outcome unknown") from exc

    def give(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """Keep ``conn`` for the next request when its answer was read to the end and did not ask to close."""
        if self.keep_alive_s <= 0 or response.will_close or not response.isclosed() or conn.sock is None:
            conn.close()
            return
        with self._lock:
            old, self._idle, self._until = self._idle, conn, time.monotonic() + self.keep_alive_s
        if old is not None:
            old.close()

    @staticmethod
    def discard(conn: http.client.HTTPConnection) -> None:
        conn.close()

    def close(self) -> None:
        """Close the idle connection, if any."""
        with self._lock:
            conn, self._idle = self._idle, None
        if conn is not None:
            conn.close()


def _clean(conn: http.client.HTTPConnection) -> bool:
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    pending = getattr(sock, "pending", None)
    return not readable and not (pending is not None and pending())
