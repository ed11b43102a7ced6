"""Application cryptograms: ICC master key, session key, AC (ARQC/TC/AAC) and ARPC (EMV 4.4 Book 2 §8, Annex
A1).

The card and the issuer compute the same cryptogram from the same inputs:

1. ICC master key from the issuer master key, PAN and PAN sequence number: Option A (Book 2 Annex A1.4.1).
2. AC session key from the ICC master key and the ATC: common session key derivation (Book 2 Annex A1.3.1).
3. AC = ISO/IEC 9797-1 MAC algorithm 3, padding method 2, 8-byte result (Book 2 §8.1.2, Annex A1.2.1) over
   ``ac_input``: the minimum data set of Book 2 §8.1.1 followed by the Card Verification Results, as in the
   Common Core Definitions (CCD, Book 3 Annex C7). The CVR travels in the Issuer Application Data ``9F10``
   (format A: ``0F A5 DKI CVR(5) counters(8) 0F discretionary(15)``), so the acquirer can rebuild the input
   from the field-55 data alone.
4. ARPC method 1 (Book 2 §8.2.1): ``TDES(SK)[ARQC xor (ARC || 00*6)]``, sent back in ``91`` as ARPC || ARC.

>>> imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> derive_icc_master_key(imk, "12345678901234567", "01").hex().upper()
'73AD54688CEF2934B0979857E3C719F1'
"""

from __future__ import annotations

from collections.abc import Mapping

from emv.crypto.des import odd_parity, tdes_cbc_encrypt, tdes_ecb_encrypt, xor
from pos_errors import CryptoError, LocalProtocolError

__all__ = [
    "derive_icc_master_key",
    "derive_session_key",
    "generate_ac",
    "generate_arpc",
    "generate_arpc_method2",
    "script_mac",
    "ac_input",
    "AC_INPUT_TAGS",
    "issuer_application_data",
    "cvr_from_iad",
    "IAD_CCI_FORMAT_A_TDES",
]

# Tag -> length of the data elements the AC is computed over, in order (Book 2 §8.1.1, Table 26).
AC_INPUT_TAGS: tuple[tuple[int, int], ...] = (
    (0x9F02, 6),  # Amount, Authorised
    (0x9F03, 6),  # Amount, Other
    (0x9F1A, 2),  # Terminal Country Code
    (0x95, 5),  # Terminal Verification Results
    (0x5F2A, 2),  # Transaction Currency Code
    (0x9A, 3),  # Transaction Date
    (0x9C, 1),  # Transaction Type
    (0x9F37, 4),  # Unpredictable Number
    (0x82, 2),  # Application Interchange Profile
    (0x9F36, 2),  # Application Transaction Counter
)

IAD_CCI_FORMAT_A_TDES = 0xA5  # Common Core Identifier: IAD format A, cryptogram version 5 (TDES)
_IAD_LENGTH = 32
_CVR = slice(3, 8)


def _check_key(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise CryptoError(f"{what} must be a 16-byte double-length TDES key, not {len(key)} bytes")


def derive_icc_master_key(issuer_master_key: bytes, pan: str, psn: str = "00") -> bytes:
    """Option A: ``Y`` = rightmost 16 digits of PAN || PSN; ``MK = TDES(IMK)[Y] || TDES(IMK)[Y xor FF..]``.

    Raises:
        CryptoError: the issuer key is not 16 bytes. LocalProtocolError: PAN or PSN are not digits.
    """
    _check_key(issuer_master_key, "the issuer master key")
    if not (pan.isdigit() and pan.isascii() and 12 <= len(pan) <= 19):
        raise LocalProtocolError("the PAN must be 12 to 19 digits")
    if not (psn.isdigit() and psn.isascii() and len(psn) == 2):
        raise LocalProtocolError("the PAN sequence number must be 2 digits")
    y = bytes.fromhex((pan + psn)[-16:].rjust(16, "0"))
    z = tdes_ecb_encrypt(issuer_master_key, y + xor(y, b"\xff" * 8))
    return odd_parity(z)


def derive_session_key(icc_master_key: bytes, atc: bytes) -> bytes:
    """Common session key derivation with ``R = ATC || 00*6`` (Book 2 Annex A1.3.1).

    ``SK = TDES(MK)[R0 R1 F0 R3..R7] || TDES(MK)[R0 R1 0F R3..R7]``, parity adjusted.
    """
    _check_key(icc_master_key, "the ICC master key")
    if len(atc) != 2:
        raise CryptoError(f"the ATC is 2 bytes, not {len(atc)}")
    r = atc + bytes(6)
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return odd_parity(tdes_ecb_encrypt(icc_master_key, left + right))


def generate_ac(session_key: bytes, data: bytes) -> bytes:
    """8-byte ISO/IEC 9797-1 MAC algorithm 3, padding method 2 (``80`` then ``00``s), under ``session_key``.

    Single DES with K_L chains every block; the last block goes through TDES (E_KL, D_KR, E_KL).
    """
    _check_key(session_key, "the AC session key")
    padded = data + b"\x80" + bytes((7 - len(data)) % 8)
    head, last = padded[:-8], padded[-8:]
    chain = tdes_cbc_encrypt(session_key[:8], head)[-8:] if head else bytes(8)  # single DES with K_L
    return tdes_ecb_encrypt(session_key, xor(chain, last))  # last block: E_KL(D_KR(E_KL(.)))


def generate_arpc(session_key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1: ``TDES(SK)[ARQC xor (ARC || 00*6)]`` (Book 2 §8.2.1)."""
    _check_key(session_key, "the AC session key")
    if len(arqc) != 8 or len(arc) != 2:
        raise CryptoError("ARPC method 1 takes an 8-byte ARQC and a 2-byte ARC")
    return tdes_ecb_encrypt(session_key, xor(arqc, arc + bytes(6)))


def generate_arpc_method2(session_key: bytes, arqc: bytes, csu: bytes, proprietary: bytes = b"") -> bytes:
    """ARPC method 2 (Book 2 §8.2.2): the 4 leftmost bytes of the MAC (Annex A1.2.1) over ARQC || CSU || PAD;
    ``91`` then carries ARPC || CSU || PAD."""
    if len(arqc) != 8 or len(csu) != 4 or len(proprietary) > 8:
        raise CryptoError("ARPC method 2 takes an 8-byte ARQC, a 4-byte CSU and 0-8 bytes of proprietary data")
    return generate_ac(session_key, arqc + csu + proprietary)[:4]


def script_mac(session_key: bytes, header: bytes, atc: bytes, arqc: bytes, data: bytes) -> bytes:
    """4-byte secure messaging MAC of an issuer script command (Book 2 §9.2.1, Annex A1.2.1) over
    ``CLA INS P1 P2 Lc`` (Lc counting the MAC), ATC, the ARQC and the command data."""
    if len(header) != 5 or len(atc) != 2 or len(arqc) != 8:
        raise CryptoError("script MAC takes a 5-byte header, 2-byte ATC and 8-byte ARQC")
    return generate_ac(session_key, header + atc + arqc + data)[:4]


def issuer_application_data(cvr: bytes, dki: int = 1, counters: bytes = bytes(8)) -> bytes:
    """A 32-byte CCD format A ``9F10`` carrying the 5-byte CVR (Book 3 Annex C7)."""
    if len(cvr) != 5 or len(counters) != 8 or not 0 <= dki <= 0xFF:
        raise LocalProtocolError("format A IAD takes a 5-byte CVR, a DKI byte and 8 counter bytes")
    return bytes([0x0F, IAD_CCI_FORMAT_A_TDES, dki]) + cvr + counters + b"\x0f" + bytes(15)


def cvr_from_iad(iad: bytes) -> bytes:
    """The Card Verification Results inside a format A ``9F10``; LocalProtocolError for any other layout."""
    if len(iad) != _IAD_LENGTH or iad[0] != 0x0F or iad[1] >> 4 != 0xA:
        raise LocalProtocolError("9F10 is not CCD format A issuer application data", tag="9F10")
    return iad[_CVR]


def ac_input(values: Mapping[int, bytes]) -> bytes:
    """The bytes the AC is computed over: ``AC_INPUT_TAGS`` values in order, then the CVR from ``9F10``.

    Raises:
        LocalProtocolError: naming the tag that is missing or has the wrong length.
    """
    out = bytearray()
    for tag, length in AC_INPUT_TAGS:
        value = values.get(tag)
        if value is None or len(value) != length:
            got = "missing" if value is None else f"{len(value)} bytes"
            raise LocalProtocolError(f"AC input {tag:X} must be {length} bytes, it is {got}", tag=f"{tag:X}")
        out += value
    iad = values.get(0x9F10)
    if iad is None:
        raise LocalProtocolError("AC input needs 9F10 for the CVR", tag="9F10")
    return bytes(out) + cvr_from_iad(iad)
