"""Alipay open platform signatures (RSA2) and the signed part of an answer (pure, no I/O).

Requests (Alipay 自行实现签名): every parameter but ``sign`` whose value is not empty, sorted by name, joined as
``k=v`` with ``&`` (values raw, not URL-encoded), signed SHA256withRSA (PKCS#1 v1.5) with the app private key,
base64. Answers (同步返回验签): ``{"<method>_response": {...}, "sign": "..."}``; the signature covers the exact
bytes of the ``<method>_response`` value as sent, verified with the Alipay public key.

>>> signed_span(b'{"a_response":{"code":"10000"},"sign":"x"}', "a_response")
('{"code":"10000"}', 'x')
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from drivers.strict_json import decode as strict_decode
from pos_errors import ConfigError, RemoteProtocolError

__all__ = ["sign_content", "sign", "verify", "signed_span", "load_private_key", "load_public_key", "AppKey"]

_PLATFORM = "Alipay"


def sign_content(params: Mapping[str, str]) -> str:
    """The string an RSA2 request signature covers."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def sign(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    return sign_text(sign_content(params), key)


def sign_text(text: str, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def verify(text: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """True when ``signature`` (base64) is the SHA256withRSA signature of ``text``."""
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(raw, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


def signed_span(raw: bytes, response_key: str) -> tuple[str, str] | None:
    """(the exact text of ``response_key``'s value, the ``sign``) of an answer; ``sign`` "" when absent; None
    when ``response_key`` is not there. Raises RemoteProtocolError when the answer is not a JSON object we accept
    (``drivers.strict_json``: depth, big numbers, duplicate keys)."""
    body = strict_decode(raw)
    if not isinstance(body, dict):
        raise RemoteProtocolError(f"{_PLATFORM} answer is not a JSON object", raw=raw[:64])
    if response_key not in body:
        return None
    signature = body.get("sign", "")
    if not isinstance(signature, str) or not isinstance(body[response_key], dict):
        raise RemoteProtocolError(f"{_PLATFORM} answer: {response_key} or sign of the wrong type", tag=response_key)
    text = raw.decode("utf-8")
    decoder = json.JSONDecoder()
    index = _skip(text, 0)
    if text[index] != "{":
        raise RemoteProtocolError(f"{_PLATFORM} answer is not a JSON object", raw=raw[:64])
    index += 1
    while True:  # walk the top-level members to find the value's exact span (strict_decode accepted the text)
        index = _skip(text, index)
        key, index = decoder.raw_decode(text, index)
        index = _skip(text, _skip(text, index) + 1)  # past ':'
        _value, end = decoder.raw_decode(text, index)
        if key == response_key:
            return text[index:end], signature
        index = _skip(text, end)
        if text[index] != ",":
            break
        index += 1
    raise RemoteProtocolError(f"{_PLATFORM} answer: {response_key} not found", tag=response_key)


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def load_private_key(pem: bytes, where: str, *, validate: bool = True) -> rsa.RSAPrivateKey:
    """The app private key (PKCS#8 or PKCS#1 PEM, RSA 2048+). Raises ConfigError naming ``where``.

    ``validate=False`` skips the RSA consistency check (about 30 ms): for the boot-time check of ``AppKey`` only,
    never for a key that signs."""
    try:
        key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=not validate)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{where}: not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ConfigError(f"{where}: RSA2 needs an RSA key of at least 2048 bits")
    return key


def load_public_key(data: bytes, where: str) -> rsa.RSAPublicKey:
    """The Alipay public key: PEM, or the bare base64 the open platform shows. Raises ConfigError."""
    text = data.strip()
    try:
        if text.startswith(b"-----"):
            key = serialization.load_pem_public_key(text)
        else:
            key = serialization.load_der_public_key(base64.b64decode(b"".join(text.split()), validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ConfigError(f"{where}: not an RSA public key (PEM or base64)") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ConfigError(f"{where}: the Alipay public key must be RSA, 2048 bits or more")
    return key


class AppKey:
    """The app private key read at boot and loaded on first use (issue 17: not on the boot path).

    Construction checks the PEM at once (an unencrypted RSA private key of 2048 bits or more, else ConfigError
    naming ``where``, so a wrong file still stops the terminal at boot); the full load with the RSA consistency
    check (about 30 ms of CPU) happens the first time ``get()`` is called and is kept. Two threads asking first
    at once both load it, and one result is kept: the same key either way.

    >>> AppKey(b"not a key", "alipay.app_private_key_file")
    Traceback (most recent call last):
    ...
    pos_errors.ConfigError: alipay.app_private_key_file: not an unencrypted PEM private key
    """

    def __init__(self, pem: bytes, where: str) -> None:
        load_private_key(pem, where, validate=False)  # the kind and size now; the consistency check on first use
        self._pem, self._where = pem, where
        self._key: rsa.RSAPrivateKey | None = None
        self.loads = 0  # how many full loads happened (tests: once, on first use)

    @property
    def loaded(self) -> bool:
        return self._key is not None

    def get(self) -> rsa.RSAPrivateKey:
        """The validated key; ConfigError (nothing signed) when the consistency check fails."""
        key = self._key
        if key is None:
            self.loads += 1
            key = self._key = load_private_key(self._pem, self._where)
            self._pem = b""
        return key

    def __repr__(self) -> str:  # never the key material
        return f"AppKey({self._where!r}, loaded={self.loaded})"
