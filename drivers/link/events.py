"""Events (facts) the link core reports, and its counters. See ``drivers.link.core``.

>>> FrameReceived(cmd=0x40, data=b"secret", seq=3)
FrameReceived(cmd=64, seq=3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FrameReceived", "FrameAcked", "LinkFailed", "PeerReset", "Event", "LinkStats"]



@dataclass(frozen=True)
class FrameReceived:
    """A new data frame from the peer, delivered exactly once. ``data`` may hold a PAN: not in ``repr``."""

    cmd: int
    data: bytes = field(repr=False)
    seq: int


@dataclass(frozen=True)
class FrameAcked:
    """The peer ACKed our data frame ``seq``."""

    seq: int
    cmd: int


@dataclass(frozen=True)
class LinkFailed:
    """Our data frame ``seq`` was never ACKed (or could not be written); shells map it to DeviceTimeout."""

    seq: int
    cmd: int
    reason: str


@dataclass(frozen=True)
class PeerReset:
    """The peer's link restarted (it sent SYN): it may have lost state, e.g. a reader that rebooted."""


Event = FrameReceived | FrameAcked | LinkFailed | PeerReset


@dataclass
class LinkStats:
    """Counters that make link efficiency and robustness measurable."""

    frames_sent: int = 0
    frames_received: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    bad_frames: int = 0
    naks_sent: int = 0
    bytes_dropped: int = 0
    failures: int = 0
    acks_sent: int = 0  # separate ACK frames (v2 acknowledges inside answers and commands when it can)
