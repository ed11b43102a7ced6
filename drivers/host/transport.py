"""The acquirer link's transport: one connection per exchange (TCP, mutual TLS), one frame out, the matching
frame back. No ISO 8583 semantics beyond matching the answer to the request by (MTI, STAN, TID); the errors it
raises are the ones ``drivers.host.client`` tabulates (what the caller may conclude about the host).

>>> Transport("127.0.0.1", 1, timeout_s=1.0, connect_timeout_s=0.5).server_name
'127.0.0.1'
"""

from __future__ import annotations

import logging
import socket
import ssl
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
                 crash_point: Callable[[str], None] | None = None, header: FrameHeader | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.server_name = server_name or host
        self._tls = tls
        self._crash_point = crash_point or _no_crash_point
        self.header = header
        self.sign_on_requested = False  # an answer's header asked for a new sign-on (processing requirement 3)

    def round_trip(self, message: bytes, want: tuple[str, str, str]) -> tuple[Fields, bytes]:
        """Connect, send ``message`` (an ISO 8583 message: framed here, behind the TPDU and header when the
        dialect has them), return the first answer whose exchange key is ``want`` (decoded, and its raw ISO
        8583 bytes for the MAC check); close. Errors as in ``drivers.host.client``."""
        sock = self._connect()
        try:
            self._send(sock, frame(self.header.request(message) if self.header is not None else message))
            self._crash_point("host.sent")
            return self._receive(sock, want, time.monotonic() + self.timeout_s)
        finally:
            sock.close()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:  # refused, reset, unreachable, DNS, connect timeout: nothing was sent
            raise LinkError(f"cannot connect to acquirer {self.host}:{self.port}: {_reason(exc)}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock if self._tls is None else handshake(self._tls, sock, self.server_name, f"{self.host}:{self.port}")

    def _send(self, sock: socket.socket, message: bytes) -> None:
        try:
            sock.settimeout(self.connect_timeout_s)
            sock.sendall(message)
        except OSError as exc:  # sendall raises before the last byte is handed over: no complete frame
            refused = refused_before_send(sock, exc, f"{self.host}:{self.port}")
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
