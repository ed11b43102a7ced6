"""The shipped CA public keys, byte for byte against their PUBLISHED checksums (EMV 4.4 Book 2 §5.1 / Book 3
Annex: the CAPK check value is ``SHA-1(RID || index || modulus || exponent)``, published by the scheme with the
key). The checksums below are copied from the public lists, not computed here: emv-utils
``src/emv_capk_static_data.h`` (``visa_09_hash``, ``mastercard_06_hash``, ...) and proxmark3
``client/resources/capk.txt`` (the ``sha1`` column) give the same values. A key without a published checksum is
not shipped; a modulus one byte off is refused at start-up."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from emv.capk import LIVE_CAPKS, RETIRED_CAPKS, SHIPPED_CAPKS, TEST_CAPKS, Capk
from emv.config import trusted_capks
from pos_errors import ConfigError

# RID, index, bits, exponent, published SHA-1 checksum, kind, published expiry (YYMMDD)
PUBLISHED = [
    ("A000000003", 0x09, 1984, "03", "1FF80A40173F52D7D27E0F26A146A1C8CCB29046", "live", "331231"),
    ("A000000004", 0x06, 1984, "03", "F910A1504D5FFB793D94F3B500765E1ABCAD72D9", "live", "331231"),
    ("A000000003", 0x92, 1408, "03", "429C954A3859CEF91295F663C963E582ED6EB253", "test", "491231"),
    ("A000000003", 0x94, 1984, "03", "C4A3C43CCF87327D136B804160E47D43B60E6E0F", "test", "491231"),
    ("A000000003", 0x95, 1152, "03", "EE1511CEC71020A9B90443B37B1D5F6E703030F6", "test", "491231"),
    ("A000000003", 0x01, 1024, "03", "D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC", "retired", "091231"),
    ("A000000004", 0x05, 1408, "03", "EBFA0D5D06D8CE702DA3EAE890701D45E274C845", "retired", "241231"),
]
TABLES = {"live": LIVE_CAPKS, "test": TEST_CAPKS, "retired": RETIRED_CAPKS}
TODAY = dt.date(2026, 12, 3)


@pytest.mark.parametrize(("rid", "index", "bits", "exponent", "checksum", "kind", "expiry"), PUBLISHED,
                         ids=[f"{r}-{i:02X}" for r, i, *_ in PUBLISHED])
def test_every_key_hashes_to_its_published_checksum(rid, index, bits, exponent, checksum, kind, expiry):
    capk = TABLES[kind][(bytes.fromhex(rid), index)]
    assert (len(capk.modulus) * 8, capk.exponent.hex(), capk.expiry, capk.test) == (bits, exponent, expiry,
                                                                                     kind == "test")
    digest = hashlib.sha1(capk.rid + bytes([capk.index]) + capk.modulus + capk.exponent).digest()  # noqa: S324
    assert digest.hex().upper() == checksum
    assert capk.source and capk.label


def test_every_table_entry_has_a_published_checksum_here():
    """Nothing is shipped that the table above does not vouch for (a key added without its checksum fails)."""
    listed = {(bytes.fromhex(r), i) for r, i, *_ in PUBLISHED}
    assert set(SHIPPED_CAPKS) | set(RETIRED_CAPKS) == listed
    assert set(SHIPPED_CAPKS) == set(LIVE_CAPKS) | set(TEST_CAPKS) and not set(LIVE_CAPKS) & set(TEST_CAPKS)


def test_no_shipped_key_has_expired_at_a_fixed_date_and_the_next_expiry_is_2033():
    assert [c.key for c in SHIPPED_CAPKS.values() if c.expired(TODAY)] == []
    assert min(c.expiry for c in LIVE_CAPKS.values()) == "331231"  # README: "the next shipped key expires …"
    assert all(c.expired(TODAY) for c in RETIRED_CAPKS.values())


def test_production_trusts_the_live_keys_only_and_test_adds_the_test_keys():
    production = {c.key for c in trusted_capks({}, "production", TODAY)}
    assert production == set(LIVE_CAPKS)
    assert not any(c.test for c in trusted_capks({}, "production", TODAY))
    assert {c.key for c in trusted_capks({}, "test", TODAY)} == set(LIVE_CAPKS) | set(TEST_CAPKS)


@pytest.mark.parametrize("where", [0, 100, 247])
def test_a_live_modulus_one_byte_off_is_refused_with_its_published_checksum(where):
    visa = LIVE_CAPKS[(bytes.fromhex("A000000003"), 0x09)]
    bad = bytearray(visa.modulus)
    bad[where] ^= 0x01
    with pytest.raises(ConfigError, match="A000000003/09: the checksum does not match"):
        Capk(visa.rid, visa.index, bytes(bad), visa.exponent, bytes.fromhex(PUBLISHED[0][4]))
    entry = {"rid": "A000000003", "index": "09", "modulus": bytes(bad).hex(), "checksum": PUBLISHED[0][4],
             "expiry": "331231"}  # the same through the configuration: the terminal refuses to start
    with pytest.raises(ConfigError, match=r"emv\.capks\[0\].*checksum does not match"):
        trusted_capks({"capks": [entry]}, "production", TODAY)
