"""The simulator's own EMV PKI: a certification authority, issuers and ICC keys, all RSA with exponent 3.

Keys are generated from a seed string by a deterministic prime search (``random.Random(seed)`` candidates,
Miller–Rabin), so the same seed always gives the same key on every machine and the CA's public key can ship
in the terminal's CAPK table (``emv.capk``) as plain data. ``functools.cache`` keeps each key once per process,
so tests stay fast. Certificates follow EMV 4.4 Book 2: the issuer public key certificate ``90`` (§5.3,
Table 6), the ICC public key certificate ``9F46`` (§6.3, Table 14), signed static application data ``93``
(§5.4, Table 7), signed dynamic application data ``9F4B`` (§6.5, Table 17) and its CDA variant (§6.6).

These are TEST keys of a simulator: the private exponents are computable by anyone with this file.

The CA's public key is a TEST key: a terminal trusts it only with ``[terminal] profile = "test"``, through the
``[[emv.capks]]`` entries ``capk_entries()`` gives the simulated terminal's configuration (``test = true``).

>>> ca = ca_key()
>>> SIM_CAPKS[(bytes.fromhex("A000000333"), SIM_CA_INDEX)].modulus == ca.modulus_bytes, ca.bits
(True, 1152)
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RsaKey", "make_key", "ca_key", "issuer_key", "icc_key", "sign", "issuer_certificate",
           "icc_certificate", "signed_static_data", "signed_dynamic_data", "SIM_CA_INDEX", "SIM_RIDS",
           "SIM_RETIRED_CA_INDEX", "SIM_RETIRED_CA_EXPIRY",
           "SIM_CAPKS", "SIM_TRUST", "capk_entries",
           "HASH_SHA1", "RSA"]

from emv.capk import SHIPPED_CAPKS, Capk, capk_table

SIM_CA_INDEX = 0xE0  # the index the simulator CA uses under every RID it serves
# a retired simulator CA key: listed (test = true) with the expiry Mastercard's live 05 had, 31 Dec 2024; a card
# whose issuer certificate names it must fail ODA (the terminal withdraws a CA key at its expiry, Book 2 §5.1).
# It is the simulator CA's key pair under another index: no second 1152-bit key to compute in every process.
SIM_RETIRED_CA_INDEX, SIM_RETIRED_CA_EXPIRY = 0xE1, "241231"
SIM_RIDS = ("A000000333", "A000000003", "A000000004")  # UnionPay, Visa, Mastercard

HASH_SHA1, RSA = 0x01, 0x01  # hash and public key algorithm indicators (Book 2 Annex B)
CA_BITS, ISSUER_BITS, ICC_BITS = 1152, 1024, 768  # issuer and ICC keys longer than the space: remainders



@dataclass(frozen=True)
class RsaKey:
    """An RSA key pair as integers; ``modulus_bytes`` is the big-endian modulus the card and terminal use."""

    n: int
    e: int
    d: int

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    @property
    def size(self) -> int:
        return (self.bits + 7) // 8

    @property
    def modulus_bytes(self) -> bytes:
        return self.n.to_bytes(self.size, "big")

    @property
    def exponent_bytes(self) -> bytes:
        return self.e.to_bytes((self.e.bit_length() + 7) // 8, "big")


def _probably_prime(n: int, rng: random.Random) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random, e: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1  # top two bits: n has exactly 2*bits
        if (candidate - 1) % e and _probably_prime(candidate, rng):
            return candidate


@functools.cache
def make_key(seed: str, bits: int, e: int = 3) -> RsaKey:
    """A deterministic RSA key of exactly ``bits`` bits from ``seed``."""
    rng = random.Random(f"sim-pki:{seed}:{bits}")
    while True:
        p, q = _prime(bits // 2, rng, e), _prime(bits - bits // 2, rng, e)
        n = p * q
        if p != q and n.bit_length() == bits:
            return RsaKey(n, e, pow(e, -1, (p - 1) * (q - 1) // _gcd(p - 1, q - 1)))


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def ca_key() -> RsaKey:
    return make_key("ca", CA_BITS)


def issuer_key(issuer: str) -> RsaKey:
    return make_key(f"issuer:{issuer}", ISSUER_BITS)


def icc_key(card: str) -> RsaKey:
    return make_key(f"icc:{card}", ICC_BITS)


def sign(key: RsaKey, recovered: bytes) -> bytes:
    """The RSA private operation on a block exactly as long as the modulus (Book 2 Annex A2.1)."""
    if len(recovered) != key.size or int.from_bytes(recovered, "big") >= key.n:
        raise ValueError("the block to sign must be as long as the modulus and smaller than it")
    return pow(int.from_bytes(recovered, "big"), key.d, key.n).to_bytes(key.size, "big")


def _wrap(signer: RsaKey, body: bytes, hashed_tail: bytes) -> bytes:
    """``6A || body || SHA-1(body || hashed_tail) || BC`` signed with ``signer`` (body already padded)."""
    digest = hashlib.sha1(body + hashed_tail).digest()  # noqa: S324 - EMV Book 2 mandates SHA-1
    return sign(signer, b"\x6a" + body + digest + b"\xbc")


def _split_modulus(key: RsaKey, room: int) -> tuple[bytes, bytes]:
    """The part of ``key``'s modulus inside a certificate (padded with BB) and the remainder outside."""
    modulus = key.modulus_bytes
    inside, remainder = modulus[:room], modulus[room:]
    return inside + b"\xbb" * (room - len(inside)), remainder


def issuer_certificate(ca: RsaKey, issuer: RsaKey, *, issuer_id: str, expiry_mmyy: str, serial: bytes,
                       hash_algorithm: int = HASH_SHA1, key_algorithm: int = RSA) -> tuple[bytes, bytes]:
    """Issuer public key certificate ``90`` and remainder ``92`` (Book 2 Table 6). ``issuer_id``: 3–8 digits."""
    field, remainder = _split_modulus(issuer, ca.size - 36)
    body = (b"\x02" + bytes.fromhex(issuer_id.ljust(8, "F")) + bytes.fromhex(expiry_mmyy) + serial
            + bytes([hash_algorithm, key_algorithm, issuer.size, len(issuer.exponent_bytes)]) + field)
    return _wrap(ca, body, remainder + issuer.exponent_bytes), remainder


def icc_certificate(issuer: RsaKey, icc: RsaKey, *, pan: str, expiry_mmyy: str, serial: bytes,
                    static_data: bytes) -> tuple[bytes, bytes]:
    """ICC public key certificate ``9F46`` and remainder ``9F48`` over the static data (Book 2 Table 14)."""
    field, remainder = _split_modulus(icc, issuer.size - 42)
    body = (b"\x04" + bytes.fromhex(pan.ljust(20, "F")) + bytes.fromhex(expiry_mmyy) + serial
            + bytes([HASH_SHA1, RSA, icc.size, len(icc.exponent_bytes)]) + field)
    return _wrap(issuer, body, remainder + icc.exponent_bytes + static_data), remainder


def signed_static_data(issuer: RsaKey, static_data: bytes, data_authentication_code: bytes) -> bytes:
    """Signed Static Application Data ``93`` (Book 2 Table 7)."""
    body = b"\x03" + bytes([HASH_SHA1]) + data_authentication_code
    body += b"\xbb" * (issuer.size - 22 - len(body))
    return _wrap(issuer, body, static_data)


def signed_dynamic_data(icc: RsaKey, icc_dynamic_data: bytes, terminal_dynamic_data: bytes) -> bytes:
    """Signed Dynamic Application Data ``9F4B`` for DDA and CDA (Book 2 Table 17, §6.6.1)."""
    body = b"\x05" + bytes([HASH_SHA1, len(icc_dynamic_data)]) + icc_dynamic_data
    body += b"\xbb" * (icc.size - 22 - len(body))
    return _wrap(icc, body, terminal_dynamic_data)


def _sim_capks() -> tuple[Capk, ...]:
    ca = ca_key()
    source = "sim.backends.pki (private key computable: TEST)"
    return tuple(Capk(bytes.fromhex(rid), index, ca.modulus_bytes, ca.exponent_bytes, expiry=expiry, label=label,
                      source=source, test=True)
                 for rid in SIM_RIDS
                 for index, expiry, label in ((SIM_CA_INDEX, "491231", "simulator CA"),
                                              (SIM_RETIRED_CA_INDEX, SIM_RETIRED_CA_EXPIRY, "simulator CA, expired")))


SIM_CAPKS: Mapping[tuple[bytes, int], Capk] = capk_table(_sim_capks())
# what a test-profile kernel trusts in the simulator: the shipped live and test keys plus the simulator CA
SIM_TRUST: Mapping[tuple[bytes, int], Capk] = capk_table((*SHIPPED_CAPKS.values(), *SIM_CAPKS.values()))


def capk_entries() -> list[dict[str, Any]]:
    """The simulator CA as ``[[emv.capks]]`` entries of a test terminal's configuration."""
    return [{"rid": c.rid.hex().upper(), "index": f"{c.index:02X}", "modulus": c.modulus.hex().upper(),
             "exponent": c.exponent.hex().upper(), "checksum": c.checksum.hex().upper(), "label": c.label,
             "source": c.source, "test": True, "expiry": c.expiry} for c in SIM_CAPKS.values()]
