"""One HTTPS POST to a payment platform (WeChat Pay, Alipay): TLS verified, answer size capped, errors sorted
into "not sent" and "sent, outcome unknown" — the shell under ``drivers.wechatpay`` and ``drivers.alipay``.

====================  =========================================================  ===========================
raised                when                                                       did the platform act?
====================  =========================================================  ===========================
LinkError             refused, unreachable, TLS handshake failed, connect        no (nothing was sent)
                      timed out
LinkTimeout           no answer after sending, connection lost after sending,    UNKNOWN: query the order
                      short body, HTTP 5xx
====================  =========================================================  ===========================

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

from pos_errors import ConfigError, LinkError, LinkTimeout

__all__ = ["PlatformHttp", "MAX_ANSWER"]

MAX_ANSWER = 64 * 1024


def _no_crash_point(name: str) -> None:
    """The default crash-point hook: nothing happens."""


class PlatformHttp:
    """POSTs to ``url`` (``https://host[:port]/path``; plain http only with ``insecure_plaintext``)."""

    def __init__(self, url: str, *, platform: str, ca_file: str = "", insecure_plaintext: bool = False,
                 timeout_s: float = 10.0, client_cert: tuple[str, str] | None = None,
                 crash_point: Callable[[str], None] | None = None, crash_name: str = "wallet.sent") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{platform} url must be https://host[:port][/path], not {url!r}")
        if parts.scheme == "http" and not insecure_plaintext:
            raise ConfigError(f"{platform} url {url} is plain http: use https (set ca_file), or "
                              "insecure_plaintext = true on a test bench only")
        self.platform, self.url, self.timeout_s = platform, url, timeout_s
        self._host, self._https = parts.hostname, parts.scheme == "https"
        self._port = parts.port or (443 if self._https else 80)
        self.path = parts.path or "/"
        self._crash_point, self._crash_name = crash_point or _no_crash_point, crash_name
        self._tls: ssl.SSLContext | None = None
        if self._https:
            try:
                self._tls = ssl.create_default_context(cafile=ca_file or None)
                if client_cert is not None:  # WeChat Pay's /secapi/ calls: the merchant API certificate
                    self._tls.load_cert_chain(*client_cert)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"{platform}: CA file {ca_file!r} or client certificate not usable ({exc})") \
                    from exc

    @property
    def where(self) -> str:
        return f"{self.platform} {self._host}:{self._port}"

    def post(self, body: bytes, content_type: str, path: str = "") -> tuple[int, bytes]:
        """Send ``body``; returns (HTTP status below 500, raw answer of at most MAX_ANSWER + 1 bytes)."""
        conn: http.client.HTTPConnection
        if self._tls is not None:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s, context=self._tls)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        where = self.where
        headers = {"Content-Type": content_type, "Accept": "*/*", "Connection": "close",
                   "User-Agent": "iotsim-pos/0.1"}
        try:
            try:
                conn.connect()
            except ssl.SSLError as exc:
                raise LinkError(f"{where}: TLS handshake failed (not sent): {exc}") from exc
            except TimeoutError as exc:
                raise LinkError(f"{where}: connect timed out after {self.timeout_s} s (not sent)") from exc
            except OSError as exc:
                raise LinkError(f"{where} unreachable (not sent): {exc}") from exc
            try:
                conn.request("POST", path or self.path, body=body, headers=headers)
                self._crash_point(self._crash_name)
                response = conn.getresponse()
                raw = response.read(MAX_ANSWER + 1)
                declared = response.getheader("Content-Length", "")
                if len(raw) <= MAX_ANSWER and declared.isdigit() and len(raw) < int(declared):
                    raise http.client.IncompleteRead(raw, int(declared) - len(raw))
            except TimeoutError as exc:
                raise LinkTimeout(f"{where}: no answer within {self.timeout_s} s; outcome unknown") from exc
            except (http.client.HTTPException, OSError) as exc:
                raise LinkTimeout(f"{where}: connection lost ({type(exc).__name__}); outcome unknown") from exc
        finally:
            conn.close()
        if response.status >= 500:
            raise LinkTimeout(f"{where}: HTTP {response.status}; outcome unknown")
        return response.status, raw
