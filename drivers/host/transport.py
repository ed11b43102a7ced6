"""The acquirer link's transport (TCP, mutual TLS): one frame out, the matching frame back. No ISO 8583 semantics
beyond matching the answer to the request by (MTI, STAN, TID); the errors it raises are the ones
``drivers.host.client`` tabulates (what the caller may conclude about the host).

One connection is kept open across exchanges (``keep_alive_s`` of idleness at most; 0 = a new connection per
exchange), so a top-up pays for one TLS handshake per connection instead of one per message. The rules that keep
that safe for money:

* a kept connection is reused only when it is idle and clean: not older than ``keep_alive_s`` since its last
  answer and nothing readable on it (a host's close, TLS alert or a late answer makes it readable) — otherwise
  it is closed and a new one opened *before* anything is sent;
* if writing on a reused connection fails, the host never had a complete frame (as for any send failure), so
  the frame is written once more on a new connection; a failure there is the caller's ``LinkError``;
* once a frame is out, nothing is ever sent again here: a close, reset or silence after the send is
  ``LinkTimeout`` (outcome unknown) and the caller reverses, exactly as with a connection per exchange;
* any error closes the connection; one exchange uses it at a time (a second thread meanwhile gets a connection
  of its own, closed after its exchange).

A new connection resumes the TLS session of the last one when the host offers it (session ticket), which
saves the certificate exchange and signatures; the host decides whether it accepts the ticket.

>>> Transport("127.0.0.1", 1, timeout_s=1.0, connect_timeout_s=0.5).server_name
'127.0.0.1'
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from drivers.host.header import REQUIRE_SIGN_ON, FrameHeader
from drivers.host.messages import Fields, FrameDecoder, exchange_key, frame, unpack
from drivers.host.tls import handshake, refused_after_send, refused_before_send
from pos_errors import LinkError, LinkTimeout

__all__ = ["Transport"]

log = logging.getLogger(__name__)

_RECV_CHUNK = 4096


def _no_crash_point(name: str) -> None:
    """The default crash-point hook: nothing happens."""


class Transport:
    """The socket side of ``HostClient`` for one acquirer endpoint (parameters as ``HostClient``'s)."""

    def __init__(self, host: str, port: int, *, timeout_s: float, connect_timeout_s: float,
                 tls: ssl.SSLContext | None = None, server_name: str | None = None,
                 crash_point: Callable[[str], None] | None = None, header: FrameHeader | None = None,
                 keep_alive_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.server_name = server_name or host
        self._tls = tls
        self._crash_point = crash_point or _no_crash_point
        self.header = header
        self.sign_on_requested = False  # an answer's header asked for a new sign-on (processing requirement 3)
        self.keep_alive_s = keep_alive_s
        self.connections = 0  # connections opened (TCP connected and, with TLS, handshaken)
        self.resumed = 0  # ... of which resumed a TLS session
        self._kept: socket.socket | None = None
        self._kept_until = 0.0
        self._session: ssl.SSLSession | None = None
        self._lock = threading.Lock()

    def round_trip(self, message: bytes, want: tuple[str, str, str]) -> tuple[Fields, bytes]:
        """Send ``message`` (an ISO 8583 message: framed here, behind the TPDU and header when the dialect has
        them) on the kept connection or a new one, return the first answer whose exchange key is ``want``
        (decoded, and its raw ISO 8583 bytes for the MAC check). Errors as in ``drivers.host.client``; after
        an error no connection is kept."""
        data = frame(self.header.request(message) if self.header is not None else message)
        if self.keep_alive_s <= 0 or not self._lock.acquire(blocking=False):
            sock = self._connect()  # a connection for this exchange alone
            try:
                self._send(sock, data, fresh=True)
                self._crash_point("host.sent")
                return self._receive(sock, want, time.monotonic() + self.timeout_s)
            finally:
                self._remember_session(sock)
                sock.close()
        try:
            return self._kept_round_trip(data, want)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the kept connection (if any); the next exchange opens a new one."""
        with self._lock:
            self._drop()

    def _kept_round_trip(self, data: bytes, want: tuple[str, str, str]) -> tuple[Fields, bytes]:
        sock, fresh = self._reusable(), False
        try:
            if sock is not None:
                try:
                    self._send(sock, data, fresh=False)
                except LinkError as exc:  # not a complete frame at the host: once more on a new connection
                    log.info("kept connection to %s:%d failed on send (%s): reconnecting", self.host, self.port,
                             exc)
                    self._drop()
                    sock = None
            if sock is None:
                sock, fresh = self._connect(), True
                self._kept = sock
                self._send(sock, data, fresh=True)
            self._crash_point("host.sent")
            answer = self._receive(sock, want, time.monotonic() + self.timeout_s)
        except BaseException:
            self._drop()
            raise
        if fresh:
            self._remember_session(sock)
        self._kept_until = time.monotonic() + self.keep_alive_s
        return answer

    def _reusable(self) -> socket.socket | None:
        """The kept connection when it may carry the next frame, else None (and it is closed)."""
        sock = self._kept
        if sock is None:
            return None
        if time.monotonic() >= self._kept_until:
            self._drop()
            return None
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            readable = [sock]
        if readable or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            # the host closed it, sent an alert, or a late answer is waiting: never read into the next exchange
            log.info("kept connection to %s:%d is no longer clean: reconnecting", self.host, self.port)
            self._drop()
            return None
        return sock

    def _drop(self) -> None:
        sock, self._kept = self._kept, None
        if sock is not None:
            sock.close()

    def _remember_session(self, sock: socket.socket) -> None:
        if isinstance(sock, ssl.SSLSocket):
            session = sock.session
            if session is not None and session.has_ticket:
                self._session = session

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:  # refused, reset, unreachable, DNS, connect timeout: nothing was sent
            raise LinkError(f"cannot connect to acquirer {self.host}:{self.port}: {_reason(exc)}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        if self._tls is None:
            return sock
        tls = handshake(self._tls, sock, self.server_name, f"{self.host}:{self.port}", session=self._session)
        if tls.session_reused:
            self.resumed += 1
        return tls

    def _send(self, sock: socket.socket, message: bytes, *, fresh: bool) -> None:
        try:
            sock.settimeout(self.connect_timeout_s)
            sock.sendall(message)
        except OSError as exc:  # sendall raises before the last byte is handed over: no complete frame
            refused = refused_before_send(sock, exc, f"{self.host}:{self.port}") if fresh else None
            raise refused or LinkError(f"request not sent to {self.host}:{self.port}: {_reason(exc)}") from exc

    def _receive(self, sock: socket.socket, want: tuple[str, str, str], deadline: float) -> tuple[Fields, bytes]:
        decoder = FrameDecoder()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout(f"no answer from {self.host}:{self.port} within {self.timeout_s:g} s: "
                                  "outcome unknown")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(_RECV_CHUNK)
            except TimeoutError as exc:
                raise LinkTimeout(f"no answer from {self.host}:{self.port} within {self.timeout_s:g} s: "
                                  "outcome unknown") from exc
            except ssl.SSLError as exc:
                refused = refused_after_send(exc, f"{self.host}:{self.port}")  # TLS 1.3: checked after we sent
                if refused is not None:
                    raise refused from exc
                raise LinkTimeout(f"TLS connection to {self.host}:{self.port} failed after sending: "
                                  f"{exc.reason or type(exc).__name__}; outcome unknown") from exc
            except OSError as exc:
                raise LinkTimeout(f"connection to {self.host}:{self.port} lost after sending: "
                                  f"{_reason(exc)}; outcome unknown") from exc
            if not chunk:
                raise LinkTimeout(f"{self.host}:{self.port} closed the connection without answering: "
                                  "outcome unknown")
            decoder.receive_data(chunk)
            while (raw := decoder.next_frame()) is not None:
                if self.header is not None:
                    body, raw = raw, self.header.split_answer(raw)  # a wrong TPDU or header is no answer
                    if self.header.requirement(body) == REQUIRE_SIGN_ON:
                        self.sign_on_requested = True
                answer = unpack(raw)
                if exchange_key(answer) == want:
                    return answer, raw
                mti, stan, tid = exchange_key(answer)
                log.warning("discarding stale answer %s stan=%s tid=%s (waiting for %s stan=%s)",
                            mti, stan, tid, want[0], want[1])


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
