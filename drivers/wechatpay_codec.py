"""WeChat Pay merchant API v2 wire format: flat ``<xml>`` bodies and the HMAC-SHA256 ``sign`` (pure, no I/O).

API v2 is the one WeChat Pay offers 付款码支付 (``/pay/micropay``) in; the POS uses it for every call (see
``docs/protocols/wallet-api.md``). The signature (WeChat Pay 签名算法, ``sign_type=HMAC-SHA256``): the non-empty
parameters except ``sign``, sorted by name (ASCII), joined as ``k=v`` with ``&``, then ``&key=<API key>``;
HMAC-SHA256 keyed with the merchant API key, upper-case hex. The platform's published example:

>>> params = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
...           "nonce_str": "ibuaiVcKdpRxkhJA"}
>>> sign(params, b"192006250b4c09247ec02edce69f6a2d")
'6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6'

Decoding trusts nothing: at most ``MAX_XML`` bytes, parsed by ``defusedxml`` with DTDs, entities and external
references forbidden, root ``<xml>``, only leaf children without attributes, no duplicates, values at most
``MAX_VALUE`` characters. Anything else is ``RemoteProtocolError`` naming WeChat Pay.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from pos_errors import RemoteProtocolError

__all__ = ["sign", "verify", "encode", "decode", "sign_string", "MAX_XML", "MAX_VALUE"]

MAX_XML = 64 * 1024
MAX_VALUE = 4096
_PLATFORM = "WeChat Pay"


def sign_string(params: Mapping[str, str], key: bytes) -> bytes:
    """``k=v&…&key=KEY`` over the non-empty parameters but ``sign``, sorted by name (what the HMAC covers)."""
    pairs = [f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != ""]
    return ("&".join(pairs) + "&key=").encode("utf-8") + key


def sign(params: Mapping[str, str], key: bytes) -> str:
    """The ``sign`` of ``params`` with ``sign_type`` HMAC-SHA256 (upper-case hex)."""
    return hmac.new(key, sign_string(params, key), hashlib.sha256).hexdigest().upper()


def verify(params: Mapping[str, str], key: bytes) -> bool:
    """True when ``params["sign"]`` is the HMAC-SHA256 sign of the other parameters (constant time)."""
    given = params.get("sign", "")
    return bool(given) and hmac.compare_digest(sign(params, key), given.upper())


def encode(params: Mapping[str, str]) -> bytes:
    """``<xml><k><![CDATA[v]]></k>…</xml>`` (UTF-8). Values must not contain ``]]>`` (raises ValueError)."""
    parts = ["<xml>"]
    for name in sorted(params):
        value = params[name]
        if "]]>" in value or not name.isidentifier():
            raise ValueError(f"cannot encode {name!r} in WeChat Pay XML")
        parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts).encode("utf-8")


def decode(raw: bytes) -> dict[str, str]:
    """The fields of a flat ``<xml>`` body. Raises RemoteProtocolError (never an XML library's exception)."""
    if len(raw) > MAX_XML:
        raise RemoteProtocolError(f"{_PLATFORM} answer over {MAX_XML} bytes", raw=raw[:64])
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise RemoteProtocolError(f"{_PLATFORM} answer carries a DTD or entities: refused", raw=raw[:64])
    try:
        root = SafeTree.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise RemoteProtocolError(f"{_PLATFORM} answer is not XML: {exc}", raw=raw[:64]) from exc
    if root.tag != "xml" or root.attrib:
        raise RemoteProtocolError(f"{_PLATFORM} answer: root is <{root.tag!s:.20}>, not <xml>", tag="xml")
    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str) or len(child) or child.attrib:
            raise RemoteProtocolError(f"{_PLATFORM} answer: <{child.tag!s:.20}> is not a plain field", tag="xml")
        if child.tag in fields:
            raise RemoteProtocolError(f"{_PLATFORM} answer: <{child.tag:.20}> twice", tag=child.tag)
        value = child.text or ""
        if len(value) > MAX_VALUE:
            raise RemoteProtocolError(f"{_PLATFORM} answer: <{child.tag:.20}> too long", tag=child.tag)
        fields[child.tag] = value
    return fields
