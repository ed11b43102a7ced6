"""Offline data authentication on the simulated card: certificates, SDA, DDA and CDA signatures.

``CardOda`` personalises a card of ``sim.backends.pki``: the issuer certificate signed by the simulator CA (index
``E0``), then either the Signed Static Application Data ``93`` (SDA) or the ICC certificate (DDA, CDA) over
the card's static data to be authenticated — the contents of the records the AFL marks for ODA followed by
the AIP (``9F4A`` = ``82``), as the terminal rebuilds them (EMV 4.4 Book 3 §10.3). It then answers INTERNAL
AUTHENTICATE (Book 2 §6.5.1) and signs GENERATE AC answers for CDA (Book 2 §6.6.1).

Faults a test card can carry (``SimCardProfile.oda_fault``):

* ``bad-issuer-cert``: one byte of the issuer certificate ``90`` is changed after signing;
* ``expired-issuer-cert``: the issuer certificate expired in December 2023 (properly signed);
* ``tampered-static``: the static data were changed after the issuer signed them;
* ``expired-capk``: the issuer certificate is signed under the simulator's retired CA key (index ``E1``, expired
  31 Dec 2024, as Mastercard's live 05): properly signed, but no terminal may use that key any more.

>>> from sim.devices.cards import CATALOGUE
>>> oda = CardOda(CATALOGUE["dda-good"], aip=bytes.fromhex("3800"), static_data=b"\\x5a\\x01\\x00")
>>> sorted(f"{t.tag:X}" for t in oda.records()[(3, 1)]), len(oda.internal_authenticate(bytes(4), b"\\x11" * 8))
(['8F', '90', '92', '9F32'], 96)
"""

from __future__ import annotations

import hashlib

from emv.tlv import Tlv
from sim.backends import pki
from sim.devices.cards import SimCardProfile

__all__ = ["CardOda", "ODA_AFL_ENTRY", "DDOL"]

ODA_AFL_ENTRY = bytes.fromhex("18010200")  # SFI 3 records 1-2: certificates, not themselves signed
DDOL = bytes.fromhex("9F3704")


class CardOda:
    """The ODA personality of one card; ``static_data`` is what the issuer signed (before any tampering)."""

    def __init__(self, profile: SimCardProfile, *, aip: bytes, static_data: bytes) -> None:
        self.profile = profile
        self.method = profile.oda
        ca = pki.ca_key()
        issuer = pki.issuer_key(profile.pan[:6])
        expiry = "1223" if profile.oda_fault == "expired-issuer-cert" else "1230"
        issuer_cert, issuer_rem = pki.issuer_certificate(ca, issuer, issuer_id=profile.pan[:6],
                                                         expiry_mmyy=expiry, serial=b"\x00\x00\x01")
        if profile.oda_fault == "bad-issuer-cert":
            issuer_cert = issuer_cert[:40] + bytes([issuer_cert[40] ^ 0x5A]) + issuer_cert[41:]
        index = pki.SIM_RETIRED_CA_INDEX if profile.oda_fault == "expired-capk" else pki.SIM_CA_INDEX
        self._issuer_record = [Tlv(0x8F, bytes([index])), Tlv(0x90, issuer_cert),
                               Tlv(0x92, issuer_rem), Tlv(0x9F32, issuer.exponent_bytes)]
        signed = static_data + aip
        self._icc = pki.icc_key(profile.key)
        self._pin = self._icc
        if self.method == "sda":
            dac = hashlib.sha1(profile.pan.encode()).digest()[:2]  # noqa: S324 - any 2 bytes will do
            self._icc_record = [Tlv(0x93, pki.signed_static_data(issuer, signed, dac))]
        else:
            icc_cert, icc_rem = pki.icc_certificate(issuer, self._icc, pan=profile.pan,
                                                    expiry_mmyy=profile.expiry[2:4] + profile.expiry[:2],
                                                    serial=b"\x00\x00\x02", static_data=signed)
            self._icc_record = [Tlv(0x9F46, icc_cert), Tlv(0x9F47, self._icc.exponent_bytes),
                                Tlv(0x9F48, icc_rem), Tlv(0x9F49, DDOL)]
        self._pin = self._icc
        if profile.pin_key:  # a separate ICC PIN encipherment key, certified without static data (Book 2 §7.1)
            self._pin = pki.make_key(f"pin:{profile.key}", pki.ICC_BITS)
            pin_cert, pin_rem = pki.icc_certificate(issuer, self._pin, pan=profile.pan,
                                                    expiry_mmyy=profile.expiry[2:4] + profile.expiry[:2],
                                                    serial=b"\x00\x00\x03", static_data=b"")
            self._icc_record += [Tlv(0x9F2D, pin_cert), Tlv(0x9F2E, self._pin.exponent_bytes),
                                 Tlv(0x9F2F, pin_rem)]

    @property
    def aip_bits(self) -> int:
        """AIP byte 1 bits: SDA 0x40, DDA 0x20, CDA 0x01 (CDA cards support DDA too)."""
        return {"sda": 0x40, "dda": 0x20, "cda": 0x21}[self.method]

    def records(self) -> dict[tuple[int, int], list[Tlv]]:
        return {(3, 1): self._issuer_record, (3, 2): self._icc_record}

    def decipher(self, data: bytes) -> bytes | None:
        """The card's private RSA operation on an enciphered PIN block (Book 2 §7.2); None if malformed."""
        value, key = int.from_bytes(data, "big"), self._pin
        if len(data) != key.size or value >= key.n:
            return None
        return pow(value, key.d, key.n).to_bytes(key.size, "big")

    def internal_authenticate(self, ddol_data: bytes, icc_dynamic_number: bytes) -> bytes:
        """Signed Dynamic Application Data over the DDOL data (Book 2 §6.5.1)."""
        dynamic = bytes([len(icc_dynamic_number)]) + icc_dynamic_number
        return pki.signed_dynamic_data(self._icc, dynamic, ddol_data)

    def cda_signature(self, icc_dynamic_number: bytes, cid: int, cryptogram: bytes,
                      transaction_hash_input: bytes, unpredictable_number: bytes) -> bytes:
        """``9F4B`` of a GENERATE AC answer: IDN, CID, AC and the transaction data hash (Book 2 §6.6.1)."""
        digest = hashlib.sha1(transaction_hash_input).digest()  # noqa: S324 - Book 2 mandates SHA-1
        dynamic = bytes([len(icc_dynamic_number)]) + icc_dynamic_number + bytes([cid]) + cryptogram + digest
        return pki.signed_dynamic_data(self._icc, dynamic, unpredictable_number)
