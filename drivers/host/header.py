"""The dialect's frame header of UnionPay-style acquirers: a 5-byte TPDU and a 6-byte application header between
the 2-byte length and the ISO 8583 message. Pure: no sockets.

::

    len (2) | TPDU (5)                           | application header (6)                | ISO 8583 message
            | 60 | destination (2) | source (2)  | type | version | status·req | sub-version (3)

* **TPDU** (ISO 8583 over X.25/NAC heritage): ID ``60``, the destination address (the acquirer's NII, e.g.
  ``0003``) and the source address (the terminal's, usually ``0000``). The answer carries the two addresses
  swapped. The acquirer's front end routes by the destination NII: a request for another NII gets no answer.
* **Application header** (银联 POS 终端规范): application type (``60`` = POS financial), software version
  (e.g. ``31``), a byte whose high nibble is the terminal status (0 = normal) and low nibble the processing
  requirement (in answers: 0 = none, 3 = sign on again, ...), and a 3-byte software sub-version.

The MAC (``drivers.host.signon``) covers the ISO 8583 message only, never TPDU or header.

>>> h = FrameHeader.from_config("6000030000", "603100310701")
>>> h.request(b"0800").hex(" ").upper()
'60 00 03 00 00 60 31 00 31 07 01 30 38 30 30'
>>> h.answer(h.request(b"0800")[:11], b"0810").hex(" ").upper()
'60 00 00 00 03 60 31 00 31 07 01 30 38 31 30'
"""

from __future__ import annotations

from dataclasses import dataclass

from pos_errors import ConfigError, RemoteProtocolError

__all__ = ["FrameHeader", "TPDU_ID", "TPDU_LEN", "APP_HEADER_LEN", "REQUIRE_SIGN_ON"]

TPDU_ID = 0x60
TPDU_LEN = 5
APP_HEADER_LEN = 6
REQUIRE_SIGN_ON = 3  # processing requirement of an answer header: "sign on again" (银联: 重新签到)


@dataclass(frozen=True)
class FrameHeader:
    """The terminal's TPDU (its own destination and source) and application header (empty: none)."""

    tpdu: bytes
    app_header: bytes = b""

    @classmethod
    def from_config(cls, tpdu: str, app_header: str) -> FrameHeader | None:
        """From ``[host] tpdu`` / ``app_header`` (hex); None when both are empty. ConfigError names the key."""
        if not tpdu:
            if app_header:
                raise ConfigError("host.app_header needs host.tpdu: the application header follows the TPDU")
            return None
        raw_tpdu, raw_header = _hex(tpdu, "host.tpdu"), _hex(app_header, "host.app_header")
        if len(raw_tpdu) != TPDU_LEN or raw_tpdu[0] != TPDU_ID:
            raise ConfigError(f"host.tpdu must be 10 hex digits starting with 60 (e.g. 6000030000), not {tpdu!r}")
        if len(raw_header) not in (0, APP_HEADER_LEN):
            raise ConfigError(f"host.app_header must be 12 hex digits (e.g. 603100310701) or empty, not {app_header!r}")
        return cls(raw_tpdu, raw_header)

    @property
    def size(self) -> int:
        return TPDU_LEN + len(self.app_header)

    def request(self, message: bytes) -> bytes:
        """What goes inside the length prefix: TPDU, application header, message."""
        return self.tpdu + self.app_header + message

    def answer_tpdu(self, request_tpdu: bytes) -> bytes:
        """The TPDU of the answer to ``request_tpdu``: the same ID, the addresses swapped."""
        return request_tpdu[:1] + request_tpdu[3:5] + request_tpdu[1:3]

    def answer(self, request_head: bytes, message: bytes, requirement: int = 0) -> bytes:
        """Host side: the answer's TPDU and header for ``request_head`` (the request's TPDU + header), with
        processing requirement ``requirement`` in the low nibble of the header's third byte."""
        header = bytearray(request_head[TPDU_LEN:self.size])
        if header:
            header[2] = (header[2] & 0xF0) | (requirement & 0x0F)
        return self.answer_tpdu(request_head[:TPDU_LEN]) + bytes(header) + message

    def split_answer(self, body: bytes) -> bytes:
        """Terminal side: the ISO 8583 message of an answer, after checking its TPDU is ours swapped and its
        application header is of our application type. RemoteProtocolError (offset) otherwise: no answer."""
        if len(body) < self.size:
            raise RemoteProtocolError(f"answer of {len(body)} bytes is shorter than TPDU and header", offset=0)
        if body[:TPDU_LEN] != self.answer_tpdu(self.tpdu):
            raise RemoteProtocolError(f"answer TPDU {body[:TPDU_LEN].hex().upper()} is not "
                                      f"{self.answer_tpdu(self.tpdu).hex().upper()}", offset=0)
        if self.app_header and body[TPDU_LEN] != self.app_header[0]:
            raise RemoteProtocolError(f"answer application type {body[TPDU_LEN]:02X} is not "
                                      f"{self.app_header[0]:02X}", offset=TPDU_LEN)
        return body[self.size:]

    def requirement(self, body: bytes) -> int:
        """The processing requirement (low nibble of the application header's third byte) of an answer whose
        header ``split_answer`` accepted; 0 without an application header."""
        return body[TPDU_LEN + 2] & 0x0F if self.app_header else 0

    def split_request(self, body: bytes) -> tuple[bytes, bytes]:
        """Host side: (TPDU + header, ISO 8583 message) of a request, after checking the TPDU ID, that the
        destination is this host's NII, and the application type and software version. RemoteProtocolError
        otherwise (the host does not answer it)."""
        if len(body) < self.size:
            raise RemoteProtocolError(f"request of {len(body)} bytes is shorter than TPDU and header", offset=0)
        if body[0] != TPDU_ID or body[1:3] != self.tpdu[1:3]:
            raise RemoteProtocolError(f"request TPDU {body[:TPDU_LEN].hex().upper()}: not ID 60 to NII "
                                      f"{self.tpdu[1:3].hex().upper()}", offset=0)
        if self.app_header and body[TPDU_LEN:TPDU_LEN + 2] != self.app_header[:2]:
            raise RemoteProtocolError(f"request application header {body[TPDU_LEN:self.size].hex().upper()}: "
                                      f"not type/version {self.app_header[:2].hex().upper()}", offset=TPDU_LEN)
        return body[:self.size], body[self.size:]


def _hex(text: str, key: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(f"{key} must be hexadecimal, not {text!r}") from exc
