"""EMV command APDUs, response splitting and the status-word table (EMV 4.4 Book 1 §11, Book 3 §6.5).

Builders return short APDUs (ISO/IEC 7816-4 §5.1): ``CLA INS P1 P2 [Lc data] [Le]``. Commands that expect data
back carry ``Le = 00``. Over T=0 the card may answer ``61xx`` (``xx`` bytes waiting: fetch with GET RESPONSE)
or ``6Cxx`` (wrong Le: send the same command again with ``Le = xx``); the kernel handles both (Book 1
§9.3.1.3).

>>> select(b"1PAY.SYS.DDF01").hex().upper()
'00A404000E315041592E5359532E444446303100'
>>> split_response(bytes.fromhex("6A82")).meaning
'file or application not found'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from pos_errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CryptogramType",
    "PSE",
    "select",
    "read_record",
    "get_processing_options",
    "generate_ac",
    "get_data",
    "verify",
    "internal_authenticate",
    "external_authenticate",
    "get_challenge",
    "get_response",
    "with_le",
    "Command",
    "parse_command",
    "Response",
    "split_response",
    "STATUS_WORDS",
    "sw_meaning",
]

PSE = b"1PAY.SYS.DDF01"  # Payment System Environment DDF name (Book 1 §12.2.2)


class CryptogramType(IntEnum):
    """Reference control parameter of GENERATE AC P1 and bits 8–7 of the CID ``9F27`` (Book 3 §6.5.5.2)."""

    AAC = 0x00
    TC = 0x40
    ARQC = 0x80

    @classmethod
    def from_cid(cls, cid: int) -> CryptogramType:
        """Type from a Cryptogram Information Data byte; raises RemoteProtocolError for the RFU value."""
        bits = cid & 0xC0
        if bits == 0xC0:
            raise RemoteProtocolError(f"CID {cid:02X} uses the RFU cryptogram type", tag="9F27")
        return cls(bits)


_CDA_REQUESTED = 0x10  # GENERATE AC P1 bit 5 (Book 3 Table 13)

# Status words with one meaning; 61xx, 6Cxx and 63Cx are ranges handled in sw_meaning (ISO 7816-4 §5.1.3).
STATUS_WORDS: dict[int, str] = {
    0x9000: "success",
    0x6200: "no information given, state unchanged",
    0x6281: "part of returned data may be corrupted",
    0x6282: "end of file or record reached before reading Le bytes",
    0x6283: "selected file or application blocked",
    0x6300: "authentication failed",
    0x6400: "execution error, state unchanged",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6983: "authentication method blocked",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed, no current EF",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported (card or application blocked)",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def sw_meaning(sw: int) -> str:
    """What a status word means, including the ``61xx``, ``6Cxx`` and ``63Cx`` ranges."""
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2} response bytes still available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le, exact length is {sw2}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    return STATUS_WORDS.get(sw, f"unknown status {sw:04X}")


# --- command builders ---------------------------------------------------------------------------------------


def _apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", *, le: int | None = None) -> bytes:
    if len(data) > 255:
        raise LocalProtocolError(f"command data of {len(data)} bytes does not fit a short APDU")
    body = bytes([len(data)]) + data if data else b""
    return bytes([cla, ins, p1, p2]) + body + (bytes([le]) if le is not None else b"")


def select(name: bytes, *, next_occurrence: bool = False) -> bytes:
    """SELECT by DF name, first or next occurrence (Book 1 §11.3.2; P2 ``00`` / ``02``)."""
    if not 1 <= len(name) <= 16:
        raise LocalProtocolError(f"a DF name is 1-16 bytes, not {len(name)}")
    return _apdu(0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, name, le=0x00)


def read_record(sfi: int, record: int) -> bytes:
    """READ RECORD ``record`` of the file with short file identifier ``sfi`` (Book 1 §11.2)."""
    if not 1 <= sfi <= 30 or not 1 <= record <= 254:
        raise LocalProtocolError(f"READ RECORD SFI {sfi} record {record} is out of range")
    return _apdu(0x00, 0xB2, record, (sfi << 3) | 0x04, le=0x00)


def get_processing_options(pdol_data: bytes) -> bytes:
    """GET PROCESSING OPTIONS with the PDOL-related data in command template ``83`` (Book 3 §6.5.8)."""
    if len(pdol_data) > 253:
        raise LocalProtocolError("PDOL data does not fit a short APDU")
    return _apdu(0x80, 0xA8, 0x00, 0x00, bytes([0x83, len(pdol_data)]) + pdol_data, le=0x00)


def generate_ac(kind: CryptogramType, cdol_data: bytes, *, cda: bool = False) -> bytes:
    """GENERATE AC asking for ``kind``, optionally with a combined DDA/AC signature (Book 3 §6.5.5)."""
    return _apdu(0x80, 0xAE, int(kind) | (_CDA_REQUESTED if cda else 0), 0x00, cdol_data, le=0x00)


def get_data(tag: int) -> bytes:
    """GET DATA for a one- or two-byte tag: ``9F36`` ATC, ``9F17`` PIN try counter (Book 3 §6.5.7)."""
    if not 0 < tag <= 0xFFFF:
        raise LocalProtocolError(f"GET DATA takes a one or two byte tag, not {tag:X}")
    return _apdu(0x80, 0xCA, tag >> 8, tag & 0xFF, le=0x00)


def verify(pin_data: bytes, *, enciphered: bool = False) -> bytes:
    """VERIFY an offline PIN: plaintext PIN block (P2 ``80``) or enciphered (P2 ``88``) (Book 3 §6.5.12)."""
    return _apdu(0x00, 0x20, 0x00, 0x88 if enciphered else 0x80, pin_data)


def internal_authenticate(ddol_data: bytes) -> bytes:
    """INTERNAL AUTHENTICATE with the DDOL-related data, for DDA (Book 3 §6.5.9)."""
    return _apdu(0x00, 0x88, 0x00, 0x00, ddol_data, le=0x00)


def external_authenticate(issuer_authentication_data: bytes) -> bytes:
    """EXTERNAL AUTHENTICATE with the 8–16 bytes of tag ``91`` (Book 3 §6.5.4)."""
    if not 8 <= len(issuer_authentication_data) <= 16:
        raise LocalProtocolError("issuer authentication data is 8 to 16 bytes")
    return _apdu(0x00, 0x82, 0x00, 0x00, issuer_authentication_data)


def get_challenge() -> bytes:
    """GET CHALLENGE: 8 unpredictable bytes from the card (Book 3 §6.5.6)."""
    return _apdu(0x00, 0x84, 0x00, 0x00, le=0x00)


def get_response(le: int) -> bytes:
    """GET RESPONSE for ``le`` bytes after a ``61xx`` (ISO 7816-4 §7.6.1)."""
    return _apdu(0x00, 0xC0, 0x00, 0x00, le=le & 0xFF)


def with_le(apdu: bytes, le: int) -> bytes:
    """The same command with ``Le`` replaced (or added), as asked for by ``6Cxx``."""
    command = parse_command(apdu)
    return _apdu(command.cla, command.ins, command.p1, command.p2, command.data, le=le & 0xFF)


# --- parsing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A parsed short command APDU; ``le`` is None when absent (0 means 256)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = field(default=b"", repr=False)
    le: int | None = None


def parse_command(apdu: bytes) -> Command:
    """Split a short C-APDU into its cases 1–4. Raises RemoteProtocolError when Lc does not fit."""
    if len(apdu) < 4:
        raise RemoteProtocolError(f"a command APDU has at least 4 bytes, got {len(apdu)}", offset=len(apdu))
    cla, ins, p1, p2 = apdu[:4]
    if len(apdu) == 4:
        return Command(cla, ins, p1, p2)
    if len(apdu) == 5:
        return Command(cla, ins, p1, p2, le=apdu[4])
    lc = apdu[4]
    if lc == 0 or len(apdu) not in (5 + lc, 6 + lc):
        raise RemoteProtocolError(f"Lc {lc} does not match the {len(apdu)} byte command", offset=4)
    le = apdu[5 + lc] if len(apdu) == 6 + lc else None
    return Command(cla, ins, p1, p2, bytes(apdu[5:5 + lc]), le)


@dataclass(frozen=True)
class Response:
    """A response APDU split into data and status word."""

    data: bytes = field(repr=False)
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @property
    def meaning(self) -> str:
        return sw_meaning(self.sw)


def split_response(rapdu: bytes) -> Response:
    """Data and SW1 SW2 of an R-APDU. Raises RemoteProtocolError when there is no status word."""
    if len(rapdu) < 2:
        raise RemoteProtocolError(f"a response APDU ends with SW1 SW2, got {len(rapdu)} byte(s)",
                                  offset=len(rapdu))
    return Response(bytes(rapdu[:-2]), int.from_bytes(rapdu[-2:], "big"))
