"""HTTPS POSTs to a payment platform (WeChat Pay, Alipay) on one kept connection: TLS verified, answer size
capped, errors sorted into "not sent" and "sent, outcome unknown" — the shell under ``drivers.wechatpay`` and
``drivers.alipay``.

====================  =========================================================  ===========================
raised                when                                                       did the platform act?
====================  =========================================================  ===========================
LinkError             refused, unreachable, TLS handshake failed, connect        no (nothing was sent)
                      timed out
LinkTimeout           no answer after sending, connection lost after sending,    UNKNOWN: query the order
                      short body, HTTP 5xx
====================  =========================================================  ===========================

The connection is HTTP/1.1 keep-alive (``drivers.http_keep``, ``keep_alive_s``: 20 s by default, below the
platforms' own idle timeouts; 0 = ``Connection: close`` and a new connection per request), so a sale's requests
(pay, query, cancel) pay for one TLS handshake, and the next sale within ``keep_alive_s`` for none. A kept
connection the platform closed while idle is replaced before sending. One it closes as the request goes out (no
byte of an answer comes back: ``StaleConnection``) is sent once more on a new connection when ``post`` was given
a function that signs the body afresh (both platforms' requests are safe to send again, see the adapters);
given plain bytes, that close is outcome unknown (``LinkTimeout``).

>>> PlatformHttp("http://127.0.0.1:1/x", platform="WeChat Pay", insecure_plaintext=True, timeout_s=0.5).post(
...     b"", "text/xml")
Traceback (most recent call last):
...
pos_errors.LinkError: WeChat Pay 127.0.0.1:1 unreachable (not sent): [Errno 111] Connection refused
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from drivers.http_keep import ConnectionKeeper
from drivers.secret_file import load_identity
from pos_errors import ConfigError, LinkTimeout

__all__ = ["PlatformHttp", "MAX_ANSWER", "ServerError"]

MAX_ANSWER = 64 * 1024


def _no_crash_point(name: str) -> None:
    """The default crash-point hook: nothing happens."""


class ServerError(LinkTimeout):
    """The platform answered 5xx: an answer (its front end had the request and refused it), outcome unknown."""


class PlatformHttp:
    """POSTs to ``url`` (``https://host[:port]/path``; plain http only with ``insecure_plaintext``)."""

    def __init__(self, url: str, *, platform: str, ca_file: str = "", insecure_plaintext: bool = False,
                 timeout_s: float = 10.0, client_cert: tuple[str, str] | None = None,
                 crash_point: Callable[[str], None] | None = None, crash_name: str = "wallet.sent",
                 keep_alive_s: float = 20.0, client_key_pem: bytes | None = None) -> None:
        """``client_cert``: (certificate file, key file); ``client_key_pem``: that key as ``drivers.secret_file``
        already read and checked it — loaded from these bytes, the key file is not opened again."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{platform} url must be https://host[:port][/path], not {url!r}")
        if parts.scheme == "http" and not insecure_plaintext:
            raise ConfigError(f"{platform} url {url} is plain http: use https (set ca_file), or "
                              "insecure_plaintext = true on a test bench only")
        if not 0 <= keep_alive_s <= 3600:
            raise ConfigError(f"{platform} keep_alive_s must be 0..3600 seconds (0 = a new connection per request)")
        self.platform, self.url, self.timeout_s = platform, url, timeout_s
        self._host, self._https = parts.hostname, parts.scheme == "https"
        self._port = parts.port or (443 if self._https else 80)
        self.path = parts.path or "/"
        self._crash_point, self._crash_name = crash_point or _no_crash_point, crash_name
        tls: ssl.SSLContext | None = None
        if self._https:
            try:
                tls = ssl.create_default_context(cafile=ca_file or None)
                if client_cert is not None and client_key_pem is not None:  # WeChat Pay's /secapi/ calls
                    load_identity(tls, client_cert[0], client_cert[1], client_key_pem)
                elif client_cert is not None:
                    tls.load_cert_chain(*client_cert)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"{platform}: CA file {ca_file!r} or client certificate not usable ({exc})") \
                    from exc
        self.connections = ConnectionKeeper(self._host, self._port, tls=tls, timeout_s=timeout_s,
                                            keep_alive_s=keep_alive_s)

    @property
    def where(self) -> str:
        return f"{self.platform} {self._host}:{self._port}"

    def close(self) -> None:
        """Close the kept connection, if any (the client stays usable)."""
        self.connections.close()

    def post(self, body: bytes | Callable[[], bytes], content_type: str, path: str = "") -> tuple[int, bytes]:
        """Send ``body`` (or what ``body()`` makes: called again, for a fresh signature, when the request is sent
        once more after a kept connection closed under it); returns (HTTP status below 500, raw answer of at most
        MAX_ANSWER + 1 bytes)."""
        if not callable(body):
            return self._post(body, content_type, path, self.connections.take())
        return self.connections.sent_again_if_stale(lambda taken: self._post(body(), content_type, path, taken))

    def _post(self, body: bytes, content_type: str, path: str,
              taken: tuple[http.client.HTTPConnection, bool]) -> tuple[int, bytes]:
        conn, reused = taken
        where = self.where
        headers = {"Content-Type": content_type, "Accept": "*/*", "User-Agent": "iotsim-pos/0.1"}
        if self.connections.keep_alive_s <= 0:
            headers["Connection"] = "close"
        kept = False
        try:
            try:
                conn = self.connections.send(conn, reused, where, "POST", path or self.path, body, headers)
                self._crash_point(self._crash_name)
                response = self.connections.response(conn, reused, where)
                raw = response.read(MAX_ANSWER + 1)
                declared = response.getheader("Content-Length", "")
                if len(raw) <= MAX_ANSWER and declared.isdigit() and len(raw) < int(declared):
                    raise http.client.IncompleteRead(raw, int(declared) - len(raw))
            except TimeoutError as exc:
                raise LinkTimeout(f"{where}: no answer within {self.timeout_s} s; outcome unknown") from exc
            except (http.client.HTTPException, OSError) as exc:
                raise LinkTimeout(f"{where}: connection lost ({type(exc).__name__}); outcome unknown") from exc
            kept = len(raw) <= MAX_ANSWER
        finally:
            if kept:
                self.connections.give(conn, response)
            else:
                conn.close()
        if response.status >= 500:
            raise ServerError(f"{where}: HTTP {response.status}; outcome unknown")
        return response.status, raw
