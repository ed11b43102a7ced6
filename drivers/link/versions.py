"""Link versions and how the two ends agree on one at open (docs/protocols/card-reader.md, link rule 10).

A fresh core's SYN offers the highest version it speaks in its SEQ byte (a v1 core: 0). A core that speaks v2
or later answers a SYN offering 2 or more with a SYN reply (SEQ bit 7 set) offering its own; both ends then
speak the lower of the two offers. A v1 core never replies, so the link stays v1. Every version understands
the frames of the versions before it, and a frame only a later version sends proves that the peer speaks it
(the reply may have been lost): a v2 frame proves 2, an answer with an implied OK proves 3.

>>> syn(1).hex(" "), syn(2).hex(" "), syn_reply(2).hex(" ")
('16 00 b4 da', '16 02 94 98', '16 82 05 10')
>>> agreed(3, 2), agreed(3, SYN_REPLY | 3), agreed(2, 3), agreed(3, 0)
(2, 3, 2, 1)
"""

from __future__ import annotations

from drivers.link.frames import Control, encode_control

__all__ = ["VERSIONS", "LATEST", "SYN_REPLY", "syn", "syn_reply", "agreed"]

VERSIONS = (1, 2, 3)
LATEST = 3
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
