"""Life cycle shared by the simulated HTTP back ends (carrier, wallet): serve on 127.0.0.1, stop, and play
"unreachable" by closing the listening socket and reopening it later on the same port.

A subclass sets ``handler_class`` (its request handler reaches the simulator as ``self.server.sim``) and
``thread_name``, and calls ``_init_http(port)`` in its ``__init__``; setting ``tls`` (a server ``SSLContext``)
before ``start()`` serves HTTPS (the handshake happens in the handler thread, so a silent client blocks nobody).
Connections are HTTP/1.1 keep-alive; ``idle`` (``sim.backends.idle_close.IdlePolicy``, 30 s like a front end's
``keepalive_timeout``) closes idle ones and can race a close with the next request (``idle.arm_race()``).
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sim.backends.idle_close import IdlePolicy

__all__ = ["LoopbackHttp", "HTTP_IDLE_TIMEOUT_S"]

HTTP_IDLE_TIMEOUT_S = 30.0  # an idle kept connection is closed after this long (tests set less)


class _Server(ThreadingHTTPServer):
    """Counts the connections it accepts and, when closed, closes the kept-alive ones still open (a server that
    stops or becomes unreachable answers nothing more, not even on a connection a client kept)."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        # before the bind: a bind that fails (port taken) calls server_close(), which needs them
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
            self.accepted += 1
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)  # type: ignore[arg-type]

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:  # the handler thread reading it sees the end of the stream and finishes
            try:
                socket.socket.shutdown(conn, socket.SHUT_RDWR)  # under the TLS layer: no close_notify from here
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            return  # a client that does not trust our test CA (a test of exactly that): nothing to report
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackHttp:
    handler_class: type[BaseHTTPRequestHandler]
    thread_name = "sim-http"
    tls: ssl.SSLContext | None = None

    def _init_http(self, port: int = 0) -> None:
        self._port = port
        self.idle = IdlePolicy(HTTP_IDLE_TIMEOUT_S)
        self._stopping = threading.Event()  # set on stop(): wakes handlers sleeping out a delay or "no answer"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://127.0.0.1:{self._port}"

    def start(self) -> str:
        """Serve on 127.0.0.1 (an ephemeral port unless one was given); returns the base URL. Started already:
        the same URL, nothing bound again."""
        self._stopping.clear()
        if self._server is None:
            self._listen()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        self._close()

    @property
    def connections_accepted(self) -> int:
        """Connections accepted since the server last started listening (tests count keep-alive reuse)."""
        return self._server.accepted if self._server is not None else 0

    def set_unreachable(self, unreachable: bool) -> None:
        """Close the listening socket (clients get connection refused) or open it again on the same port."""
        if unreachable:
            self._close()
        elif self._server is None:
            self._listen()

    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self._port), self.handler_class)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.sim = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
