"""Offline data authentication crypto: certificate recovery, SDA, DDA and CDA signatures (EMV 4.4 Book 2).

Pure functions over bytes; ``emv.authentication`` runs them inside the kernel. RSA recovery is the public
operation ``X = S^e mod n`` on a block exactly as long as the modulus (Book 2 Annex A2.1). Every recovered
block is ``6A || format || ... || SHA-1 || BC``; the hash covers the recovered data between the header and the
hash, then data outside the certificate (remainder, exponent, static data, dynamic data).

* ``recover_issuer_public_key``: Book 2 §5.3 steps 1–11 (Table 6, format ``02``): header, trailer, format,
  hash, issuer identifier against the PAN, expiry, revocation list, algorithm indicators, modulus = leftmost
  digits || remainder ``92``.
* ``recover_icc_public_key``: Book 2 §6.4 (Table 14, format ``04``): the hash also covers the static data to
  be authenticated; the recovered PAN must equal ``5A``.
* ``verify_signed_static_data``: SDA, Book 2 §5.4 (Table 7, format ``03``) → Data Authentication Code ``9F45``.
* ``verify_signed_dynamic_data``: DDA, Book 2 §6.5.2 (Table 17, format ``05``) → ICC Dynamic Number ``9F4C``.
* ``verify_cda_signature``: CDA, Book 2 §6.6.2: the ICC dynamic data carry the IDN, the CID, the cryptogram
  and the Transaction Data Hash Code, which the terminal recomputes (``transaction_data_hash``).

Any failure raises ``OdaError`` (a ``RemoteProtocolError``, so a ``ValueError``) saying which check failed;
the kernel turns it into the TVR bit of the method (Book 3 §10.3).

>>> recover_issuer_public_key(Capk(b"\\xa0\\x00\\x00\\x00\\x03", 1, b"\\x99" * 64), b"\\x00" * 63, b"", b"\\x03")
Traceback (most recent call last):
...
pos_errors.OdaError: the issuer public key certificate is 63 bytes, the CA key 64
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from emv.capk import Capk
from pos_errors import OdaError

__all__ = ["RecoveredKey", "CdaResult", "recover_issuer_public_key", "recover_icc_public_key",
           "verify_signed_static_data", "verify_signed_dynamic_data", "verify_cda_signature",
           "transaction_data_hash", "rsa_recover", "HASH_SHA1", "RSA"]

HASH_SHA1, RSA = 0x01, 0x01  # Book 2 Annex B2.1, B2.2
_ISSUER_FORMAT, _SSAD_FORMAT, _ICC_FORMAT, _SDAD_FORMAT = 0x02, 0x03, 0x04, 0x05
_HASH = 20


@dataclass(frozen=True)
class RecoveredKey:
    """A public key recovered from a certificate, with the certificate's fields (Book 2 Tables 6 and 14).

    ``identifier`` is the issuer identifier (3–8 leftmost PAN digits) or the full PAN of an ICC certificate;
    ``expiry`` is ``MMYY``.
    """

    identifier: str = ""
    expiry: str = ""
    serial: bytes = b""
    hash_algorithm: int = HASH_SHA1
    key_algorithm: int = RSA
    modulus: bytes = b""
    exponent: bytes = b""

    def __repr__(self) -> str:  # an ICC identifier is a PAN: never print it whole
        ident = self.identifier if len(self.identifier) <= 8 else self.identifier[:6] + "…" + self.identifier[-4:]
        return (f"RecoveredKey(identifier={ident!r}, expiry={self.expiry!r}, serial={self.serial.hex()!r}, "
                f"bits={len(self.modulus) * 8})")


@dataclass(frozen=True)
class CdaResult:
    """What a verified CDA signature vouches for (Book 2 Table 19)."""

    icc_dynamic_number: bytes
    cid: int
    cryptogram: bytes


def rsa_recover(modulus: bytes, exponent: bytes, signed: bytes, what: str) -> bytes:
    """``signed^exponent mod modulus`` as a block of the modulus length; OdaError unless the lengths agree."""
    if not modulus or not exponent:
        raise OdaError(f"no public key to recover the {what}")
    if len(signed) != len(modulus):
        raise OdaError(f"the {what} is {len(signed)} bytes, the {'CA' if 'issuer public' in what else 'signing'} "
                       f"key {len(modulus)}")
    n, value = int.from_bytes(modulus, "big"), int.from_bytes(signed, "big")
    if value >= n:
        raise OdaError(f"the {what} is not smaller than the modulus")
    return pow(value, int.from_bytes(exponent, "big"), n).to_bytes(len(modulus), "big")


def _open(block: bytes, fmt: int, what: str, hashed_tail: bytes) -> bytes:
    """Check header, trailer, format and SHA-1; return the recovered body (format byte to before the hash)."""
    if block[0] != 0x6A or block[-1] != 0xBC:
        raise OdaError(f"the recovered {what} lacks the 6A header or the BC trailer")
    if block[1] != fmt:
        raise OdaError(f"the recovered {what} has format {block[1]:02X}, not {fmt:02X}")
    body, digest = block[1:-1 - _HASH], block[-1 - _HASH:-1]
    if hashlib.sha1(body + hashed_tail).digest() != digest:  # noqa: S324 - Book 2 mandates SHA-1
        raise OdaError(f"the hash in the {what} does not match")
    return body


def _check_expiry(mmyy: bytes, today: dt.date | None, what: str) -> str:
    digits = mmyy.hex()
    if not digits.isdigit() or not 1 <= int(digits[:2]) <= 12:
        raise OdaError(f"the {what} expiry {digits.upper()} is not MMYY")
    if today is not None:
        month, year = int(digits[:2]), 2000 + int(digits[2:])
        first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
        if today >= first_of_next:
            raise OdaError(f"the {what} expired at the end of {digits[:2]}/{digits[2:]}")
    return digits


def _check_algorithms(hash_algorithm: int, key_algorithm: int, what: str) -> None:
    if hash_algorithm != HASH_SHA1 or key_algorithm != RSA:
        raise OdaError(f"the {what} uses hash {hash_algorithm:02X} / key algorithm {key_algorithm:02X}, "
                       "not SHA-1 / RSA")


def _modulus(leftmost: bytes, remainder: bytes, length: int, what: str) -> bytes:
    room = len(leftmost)
    if length > room and len(remainder) != length - room:
        raise OdaError(f"the {what} remainder is {len(remainder)} bytes, {length - room} expected")
    if length <= room:
        if any(b != 0xBB for b in leftmost[length:]):
            raise OdaError(f"the {what} is not padded with BB")
        return leftmost[:length]
    return leftmost + remainder


def recover_issuer_public_key(capk: Capk, certificate: bytes, remainder: bytes, exponent: bytes, *,
                              pan: str | None = None, today: dt.date | None = None,
                              revoked: Collection[tuple[bytes, int, bytes]] = ()) -> RecoveredKey:
    """Recover the issuer public key from ``90`` with the CA key (Book 2 §5.3).

    Args:
        capk: the CA public key named by RID and ``8F``.
        certificate, remainder, exponent: tags ``90``, ``92`` (may be empty), ``9F32``.
        pan: the card's PAN (``5A`` digits); when given, the issuer identifier must be its leading digits.
        today: when given, the certificate must not have expired.
        revoked: the certificate revocation list, entries (RID, CA index, certificate serial number).

    Raises:
        OdaError: naming the step of Book 2 §5.3 that failed.
    """
    what = "issuer public key certificate"
    block = rsa_recover(capk.modulus, capk.exponent, certificate, what)
    body = _open(block, _ISSUER_FORMAT, what, remainder + exponent)
    identifier = body[1:5].hex().upper().rstrip("F")
    if not identifier.isdigit() or not 3 <= len(identifier) <= 8:
        raise OdaError(f"the issuer identifier {body[1:5].hex().upper()} is not 3-8 digits")
    if pan is not None and not pan.startswith(identifier):
        raise OdaError("the issuer identifier does not match the PAN")
    expiry = _check_expiry(body[5:7], today, what)
    serial = body[7:10]
    if (capk.rid, capk.index, serial) in revoked:
        raise OdaError(f"the {what} (serial {serial.hex().upper()}) is on the revocation list")
    _check_algorithms(body[10], body[11], what)
    modulus = _modulus(body[14:], remainder, body[12], "issuer public key")
    if body[13] != len(exponent):
        raise OdaError("the issuer public key exponent length does not match 9F32")
    return RecoveredKey(identifier, expiry, serial, body[10], body[11], modulus, exponent)


def recover_icc_public_key(issuer: RecoveredKey, certificate: bytes, remainder: bytes, exponent: bytes,
                           static_data: bytes, *, pan: str | None = None,
                           today: dt.date | None = None) -> RecoveredKey:
    """Recover the ICC public key from ``9F46`` with the issuer key (Book 2 §6.4); ``static_data`` is the
    static data to be authenticated (records marked by the AFL, then the AIP if ``9F4A`` asks for it)."""
    what = "ICC public key certificate"
    block = rsa_recover(issuer.modulus, issuer.exponent, certificate, what)
    body = _open(block, _ICC_FORMAT, what, remainder + exponent + static_data)
    card_pan = body[1:11].hex().upper().rstrip("F")
    if not card_pan.isdigit():
        raise OdaError("the PAN in the ICC public key certificate is not digits")
    if pan is not None and card_pan != pan:
        raise OdaError("the PAN in the ICC public key certificate does not match 5A")
    expiry = _check_expiry(body[11:13], today, what)
    _check_algorithms(body[16], body[17], what)
    modulus = _modulus(body[20:], remainder, body[18], "ICC public key")
    if body[19] != len(exponent):
        raise OdaError("the ICC public key exponent length does not match 9F47")
    return RecoveredKey(card_pan, expiry, body[13:16], body[16], body[17], modulus, exponent)


def verify_signed_static_data(issuer: RecoveredKey, signed: bytes, static_data: bytes) -> bytes:
    """SDA (Book 2 §5.4): verify ``93`` over the static data; returns the Data Authentication Code ``9F45``."""
    what = "signed static application data"
    body = _open(rsa_recover(issuer.modulus, issuer.exponent, signed, what), _SSAD_FORMAT, what, static_data)
    _check_algorithms(body[1], RSA, what)
    return body[2:4]


def _dynamic(icc: RecoveredKey, signed: bytes, tail: bytes) -> bytes:
    what = "signed dynamic application data"
    body = _open(rsa_recover(icc.modulus, icc.exponent, signed, what), _SDAD_FORMAT, what, tail)
    _check_algorithms(body[1], RSA, what)
    length = body[2]
    if 3 + length > len(body):
        raise OdaError("the ICC dynamic data length runs past the signature")
    return body[3:3 + length]


def _icc_dynamic_number(dynamic: bytes) -> tuple[bytes, bytes]:
    if not dynamic or not 2 <= dynamic[0] <= 8 or len(dynamic) < 1 + dynamic[0]:
        raise OdaError("the ICC dynamic number length is not 2-8 bytes")
    return dynamic[1:1 + dynamic[0]], dynamic[1 + dynamic[0]:]


def verify_signed_dynamic_data(icc: RecoveredKey, signed: bytes, terminal_dynamic_data: bytes) -> bytes:
    """DDA (Book 2 §6.5.2): verify ``9F4B`` over the DDOL data sent in INTERNAL AUTHENTICATE; returns the
    ICC Dynamic Number ``9F4C``."""
    number, _ = _icc_dynamic_number(_dynamic(icc, signed, terminal_dynamic_data))
    return number


def verify_cda_signature(icc: RecoveredKey, signed: bytes, unpredictable_number: bytes, *, cid: int,
                         transaction_hash: bytes) -> CdaResult:
    """CDA (Book 2 §6.6.2): verify ``9F4B`` of a GENERATE AC response; the CID inside must equal the one in the
    response and the Transaction Data Hash Code must equal ``transaction_hash``."""
    number, rest = _icc_dynamic_number(_dynamic(icc, signed, unpredictable_number))
    if len(rest) < 1 + 8 + _HASH:
        raise OdaError("the CDA dynamic data lack the CID, cryptogram or transaction data hash")
    signed_cid, cryptogram, code = rest[0], rest[1:9], rest[9:9 + _HASH]
    if signed_cid != cid:
        raise OdaError(f"the CID in the CDA signature ({signed_cid:02X}) differs from 9F27 ({cid:02X})")
    if code != transaction_hash:
        raise OdaError("the transaction data hash code does not match")
    return CdaResult(number, signed_cid, cryptogram)


def transaction_data_hash(pdol_data: bytes, cdol1_data: bytes, cdol2_data: bytes | None,
                          response_objects: bytes) -> bytes:
    """SHA-1 over the PDOL values, CDOL1 values, CDOL2 values (second GENERATE AC only) and the response's
    data objects except ``9F4B``, in the order received (Book 2 §6.6.1)."""
    data = pdol_data + cdol1_data + (cdol2_data or b"") + response_objects
    return hashlib.sha1(data).digest()  # noqa: S324 - Book 2 mandates SHA-1
