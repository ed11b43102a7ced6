"""Payload helpers shared by the command sets that ride on our link (card reader, PIN pad): status-byte
responses and ``construct`` parsing with our error type at the boundary. Pure: no I/O.

A response's DATA after the echoed SEQ is one STATUS byte then the payload (docs/protocols/card-reader.md).

>>> decode_response(encode_response(0x00, b"\\x01"))
(0, b'\\x01')
"""

from __future__ import annotations

from typing import Any

from construct import ConstructError, Struct

from pos_errors import RemoteProtocolError

__all__ = ["encode_response", "decode_response", "parse_payload"]


def encode_response(status: int, payload: bytes = b"") -> bytes:
    """A response's DATA after the echoed SEQ: STATUS then payload."""
    return bytes([status]) + payload


def decode_response(data: bytes) -> tuple[int, bytes]:
    """(STATUS, payload). Raises RemoteProtocolError for an empty response."""
    if not data:
        raise RemoteProtocolError("response without a status byte", offset=0, raw=b"")
    return data[0], data[1:]


def parse_payload(struct: Struct, payload: bytes, what: str) -> Any:
    """``struct.parse(payload)``; RemoteProtocolError (``offset`` at the end, never the raw bytes: a payload may
    hold a PAN or track data) for anything that does not parse."""
    try:
        return struct.parse(payload)
    except (ConstructError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"malformed {what}: {exc}", offset=len(payload)) from exc
