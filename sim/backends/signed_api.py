"""Request authentication and answer signing shared by the simulated HTTP/JSON platforms (wallet platform).

The scheme is the one of ``docs/protocols/carrier-api.md`` ("Signatures") and ``docs/protocols/wallet-api.md``:
every request carries ``X-App-Id``, ``X-Timestamp`` (Unix seconds, within ±5 minutes), ``X-Nonce`` (never seen
before) and ``X-Signature``, the hex HMAC-SHA256 with the app secret of::

    IOTSIM-HMAC-SHA256\\n<METHOD>\\n<path as sent>\\n<timestamp>\\n<nonce>\\n<app id>\\n<hex SHA-256 of body>

anything else is refused with 401 (``unsigned``, ``unknown_app``, ``stale_timestamp``, ``bad_signature``,
``replayed_nonce``) before the platform acts. Every answer is signed over its status, a fresh timestamp and nonce,
the request's nonce and the body's SHA-256. Checked here independently of ``drivers.carrier_sign`` on purpose: the
canonical strings are written as the documents say, so a driver bug cannot hide behind a shared one.

>>> api = SignedApi()
>>> api._init_signing(app_id="A", app_secret=b"s" * 16, tls=False, workdir=None, clock=lambda: 100.0, name="x")
>>> try:
...     api.authenticate("GET", "/v1/x", b"", {})
... except Unauthorized as exc:
...     print(exc.status, exc.error)
401 unsigned
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sim.backends.http_tls import LoopbackCa

__all__ = ["SignedApi", "Unauthorized", "SKEW_S", "forge_field"]

SKEW_S = 300  # ±5 minutes
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class Unauthorized(Exception):
    """A request the platform refuses with 401; nothing changed."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = 401, error, message


class SignedApi:
    """Mix-in: ``_init_signing`` once, ``authenticate`` each request, ``sign_answer`` each answer."""

    app_id: str
    app_secret: bytes
    test_ca: LoopbackCa | None
    tamper: Callable[[str, str, int, bytes], tuple[int, bytes]] | None

    def _init_signing(self, *, app_id: str, app_secret: bytes | None, tls: bool, workdir: str | None,
                      clock: Callable[[], float], name: str) -> None:
        self.app_id = app_id
        self.app_secret = app_secret or secrets.token_hex(32).encode()
        self._wall_clock = clock
        self._nonces: dict[str, float] = {}
        self._nonce_lock = threading.Lock()
        self.refused: list[str] = []  # the error code of every request refused with 401
        self.tamper = None
        self._tls_tmp = None if workdir or not tls else tempfile.TemporaryDirectory(prefix=f"{name}-tls-")
        self.test_ca = None
        if tls:
            self.test_ca = LoopbackCa.create(workdir or self._tls_tmp.name, name)  # type: ignore[union-attr]
            self.tls = self.test_ca.server_context()

    @property
    def ca_file(self) -> str:
        """The test CA a client must trust ("" when serving plain http)."""
        return self.test_ca.ca_file if self.test_ca else ""

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the driver (besides the URL) that this platform accepts."""
        return {"app_id": self.app_id, "app_secret": self.app_secret, "ca_file": self.ca_file,
                "insecure_plaintext": self.test_ca is None}

    def write_secret(self, path: str) -> str:
        """Write the app secret to ``path`` with mode 0600 (as a technician would); returns the path."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.app_secret + b"\n")
        os.chmod(path, 0o600)
        return path

    def authenticate(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise ``Unauthorized`` for what the real platform refuses; remember the nonce of what it accepts."""
        app_id, timestamp = headers.get("X-App-Id", ""), headers.get("X-Timestamp", "")
        nonce, signature = headers.get("X-Nonce", ""), headers.get("X-Signature", "")
        if not (app_id and timestamp and nonce and signature):
            self._refuse("unsigned", "X-App-Id, X-Timestamp, X-Nonce and X-Signature are required")
        if app_id != self.app_id:
            self._refuse("unknown_app", f"unknown app id {app_id[:64]!r}")
        now = self._wall_clock()
        if not timestamp.isdigit() or len(timestamp) > 12 or abs(int(timestamp) - now) > SKEW_S:
            self._refuse("stale_timestamp", f"timestamp {timestamp[:16]!r} is not within ±{SKEW_S} s of {int(now)}")
        if not _NONCE.fullmatch(nonce):
            self._refuse("unsigned", "X-Nonce must be 16-64 of A-Z a-z 0-9 _ -")
        canonical = "\n".join(["IOTSIM-HMAC-SHA256", method, path, timestamp, nonce, app_id,
                               hashlib.sha256(body).hexdigest()]).encode()
        expected = hmac.new(self.app_secret, canonical, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            self._refuse("bad_signature", "signature does not verify")
        with self._nonce_lock:
            for old, seen in list(self._nonces.items()):
                if seen < now - 2 * SKEW_S:
                    del self._nonces[old]
            if nonce in self._nonces:
                self._refuse("replayed_nonce", "this nonce was used already")
            self._nonces[nonce] = now

    def _refuse(self, code: str, message: str) -> None:
        self.refused.append(code)
        raise Unauthorized(code, message)

    def sign_answer(self, status: int, body: bytes, request_nonce: str) -> dict[str, str]:
        """The signature headers of an answer."""
        timestamp, nonce = str(int(self._wall_clock())), secrets.token_hex(16)
        canonical = "\n".join(["IOTSIM-HMAC-SHA256-ANSWER", str(status), timestamp, nonce, request_nonce,
                               hashlib.sha256(body).hexdigest()]).encode()
        return {"X-Timestamp": timestamp, "X-Nonce": nonce,
                "X-Signature": hmac.new(self.app_secret, canonical, hashlib.sha256).hexdigest()}

    def _stop_signing(self) -> None:
        if self._tls_tmp is not None:
            self._tls_tmp.cleanup()
            self._tls_tmp = None


def forge_field(body: bytes, key: str, field: str, value: Any) -> bytes:
    """``body`` (JSON) with ``body[key][field] = value``, as a man in the middle would rewrite it (unchanged when
    it has no such object)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and isinstance(data.get(key), dict):
        data[key][field] = value
        return json.dumps(data).encode()
    return body
