"""Link versions and how the two ends agree on one at open (docs/protocols/card-reader.md, link rule 10).

A fresh core's SYN offers the highest version it speaks in its SEQ byte (a v1 core: 0). A core that speaks v2
or later answers a SYN offering 2 or more with a SYN reply (SEQ bit 7 set) offering its own; both ends then
speak the lower of the two offers. A v1 core never replies, so the link stays v1. Every version understands
the frames of the versions before it, and a frame only a later version sends proves that the peer speaks it
(the reply may have been lost): a v2 frame proves 2, an answer with an implied OK proves 3, an answer with an
implied 90 00 or a frame with an implied CMD (STX4) proves 4.

>>> syn(1).hex(" "), syn(2).hex(" "), syn_reply(2).hex(" ")
('16 00 b4 da', '16 02 94 98', '16 82 05 10')
>>> agreed(3, 2), agreed(3, SYN_REPLY | 3), agreed(2, 3), agreed(3, 0), agreed(4, SYN_REPLY | 4), agreed(4, 3)
(2, 3, 2, 1, 4, 3)
"""

from __future__ import annotations

from drivers.link.frames import (
    STX,
    STX2,
    STX4,
    Control,
    Frame,
    V2Frame,
    decode_frame,
    encode_control,
    encode_v2_control,
)
from pos_errors import RemoteProtocolError

__all__ = ["VERSIONS", "LATEST", "SYN_REPLY", "syn", "syn_reply", "agreed", "decode_on", "nak_for"]

VERSIONS = (1, 2, 3, 4)
LATEST = 4
SYN_REPLY = 0x80  # bit 7 of a SYN's SEQ byte: a reply to a SYN (no restart); bits 6-0: the version offered


def syn(version: int) -> bytes:
    """The SYN a fresh core sends first, offering ``version``."""
    return encode_control(Control.SYN, 0 if version == 1 else version)


def syn_reply(version: int) -> bytes:
    """The reply of a v2-or-later core to a peer's SYN that offered v2 or later."""
    return encode_control(Control.SYN, SYN_REPLY | version)


def agreed(mine: int, offer: int) -> int:
    """The version two ends speak: the lower offer (a SYN's or a reply's SEQ byte), 1 if either is below 2."""
    offer &= 0x7F
    return min(mine, offer) if mine >= 2 and offer >= 2 else 1


def decode_on(raw: bytes, version: int) -> Frame:
    """Decode a candidate on an end that speaks up to ``version``: a frame only a later version sends is
    damaged there (raises ``RemoteProtocolError`` like any bad frame)."""
    if version == 1 and raw and raw[0] in (STX2, STX4):
        raise RemoteProtocolError("a v2 frame on a v1 link", offset=0)
    frame = decode_frame(raw)
    if isinstance(frame, V2Frame) and frame.version > version:
        raise RemoteProtocolError(f"a v{frame.version} frame on a v{version} link", offset=1)
    return frame


def nak_for(raw: bytes | bytearray, version: int) -> bytes:
    """The NAK asking again for the damaged candidate ``raw`` (its SEQ byte as read); b"" if it does not start
    a data frame of the versions this end speaks."""
    if raw[0] == STX:
        return encode_control(Control.NAK, raw[3])
    if raw[0] == STX2 and version >= 2 or raw[0] == STX4 and version >= 4:
        return encode_v2_control(Control.NAK, raw[1])
    return b""
