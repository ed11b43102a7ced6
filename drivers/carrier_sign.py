"""Request and answer signatures of the carrier API (``docs/protocols/carrier-api.md``, "Signatures").

Pure functions (no clock, no randomness): the caller passes the timestamp and the nonce. Every request carries
``X-App-Id``, ``X-Timestamp`` (Unix seconds), ``X-Nonce`` and ``X-Signature``; the signature is the lower-case hex
HMAC-SHA256, keyed with the app secret, of the canonical string::

    IOTSIM-HMAC-SHA256\\n<METHOD>\\n<path as sent>\\n<timestamp>\\n<nonce>\\n<app id>\\n<hex SHA-256 of body>

Every answer carries ``X-Timestamp``, ``X-Nonce`` and ``X-Signature`` over::

    IOTSIM-HMAC-SHA256-ANSWER\\n<HTTP status>\\n<timestamp>\\n<nonce>\\n<the request's nonce>\\n<hex SHA-256 of body>

The request's nonce binds the answer to the request, so an old signed answer cannot be replayed as this one.

>>> sign_request(b"k", "GET", "/v1/health", "1", "n", "a")[:16]
'6f768ba20605e0c8'
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["request_string", "answer_string", "sign_request", "sign_answer", "verify", "NONCE", "SCHEME"]

SCHEME = "IOTSIM-HMAC-SHA256"
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_string(method: str, path: str, timestamp: str, nonce: str, app_id: str, body: bytes = b"") -> bytes:
    """The canonical string a request signature covers (UTF-8)."""
    return "\n".join((SCHEME, method.upper(), path, timestamp, nonce, app_id, _body_hash(body))).encode("utf-8")


def answer_string(status: int, timestamp: str, nonce: str, request_nonce: str, body: bytes = b"") -> bytes:
    """The canonical string an answer signature covers (UTF-8)."""
    return "\n".join((SCHEME + "-ANSWER", str(status), timestamp, nonce, request_nonce,
                      _body_hash(body))).encode("utf-8")


def _mac(secret: bytes, text: bytes) -> str:
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def sign_request(secret: bytes, method: str, path: str, timestamp: str, nonce: str, app_id: str,
                 body: bytes = b"") -> str:
    return _mac(secret, request_string(method, path, timestamp, nonce, app_id, body))


def sign_answer(secret: bytes, status: int, timestamp: str, nonce: str, request_nonce: str, body: bytes = b"") -> str:
    return _mac(secret, answer_string(status, timestamp, nonce, request_nonce, body))


def verify(secret: bytes, text: bytes, signature: str) -> bool:
    """Constant-time check of a hex signature over ``text``."""
    return hmac.compare_digest(_mac(secret, text), signature.strip().lower())
