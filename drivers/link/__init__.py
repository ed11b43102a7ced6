"""Our serial link protocol: ``frames`` (construct codecs, CRC, scanner), ``core`` (sans-I/O ARQ), ``shell``
(pyserial), ``payload`` (status-byte responses, payload parsing) and ``device`` (``LinkDevice``, the client base).
The card reader and PIN pad command sets ride on it; see docs/protocols/card-reader.md.

>>> from drivers.link import LinkCore
>>> LinkCore(role="device").data_to_send().hex(" ")  # a fresh link announces itself with SYN (offers v3)
'16 04 f4 5e'
>>> LinkCore(role="device", version=1).data_to_send().hex(" ")  # a reader that speaks only v1
'16 00 b4 da'
"""

from drivers.link.core import Event, FrameAcked, FrameReceived, LinkCore, LinkFailed, LinkStats, PeerReset
from drivers.link.frames import Control, crc16_ccitt_false, decode_frame, encode_control, encode_data
from drivers.link.shell import SerialLink

__all__ = [
    "Control",
    "Event",
    "FrameAcked",
    "FrameReceived",
    "LinkCore",
    "LinkFailed",
    "LinkStats",
    "PeerReset",
    "SerialLink",
    "crc16_ccitt_false",
    "decode_frame",
    "encode_control",
    "encode_data",
]
