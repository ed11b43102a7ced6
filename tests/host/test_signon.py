"""The pure MAC and sign-on codec: where the MAC goes, what a forged or damaged message does, key check values."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.host import messages as m
from drivers.host.signon import (
    SessionKeys,
    accept_keys,
    build_sign_on,
    mac_field,
    pack_with_mac,
    unwrap_keys,
    verify_mac,
    wrap_keys,
)
from emv.crypto.des import tdes_ecb_encrypt
from emv.crypto.mac import kcv_tdes
from pos_errors import LinkFault, LinkSecurityError, RemoteProtocolError

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
KEYS = SessionKeys(pik=bytes.fromhex("1C1C1C1C1C1C1C1C0E0E0E0E0E0E0E0E"),
                   mak=bytes.fromhex("4C4C4C4C4C4C4C4C7A7A7A7A7A7A7A7A"))
AT = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
PURCHASE = {"t": "0210", "3": "000000", "11": "000002", "39": "00", "41": "SIM00001"}


def test_mac_in_64_with_primary_bitmap_and_128_with_secondary() -> None:
    assert mac_field(PURCHASE) == "64"
    sign_on = build_sign_on(7, transmitted_at=AT, terminal_id="SIM00001")
    assert mac_field(sign_on) == "128"
    fields = verify_mac(pack_with_mac(sign_on, KEYS.mak), KEYS.mak)
    assert "128" in fields and "64" not in fields


def test_every_flipped_byte_is_refused() -> None:
    packed = pack_with_mac(PURCHASE, KEYS.mak)
    for i in range(len(packed)):
        damaged = bytearray(packed)
        damaged[i] ^= 0x04
        with pytest.raises(RemoteProtocolError):
            verify_mac(bytes(damaged), KEYS.mak)


def test_no_mac_or_another_key_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="no MAC"):
        verify_mac(m.pack(PURCHASE), KEYS.mak)
    with pytest.raises(RemoteProtocolError, match="wrong MAC"):
        verify_mac(pack_with_mac(PURCHASE, KEYS.pik), KEYS.mak)


def test_wrong_kcv_and_malformed_field_62() -> None:
    with pytest.raises(LinkSecurityError) as caught:
        unwrap_keys(wrap_keys(TMK, KEYS, corrupt_kcv=True), TMK)
    assert caught.value.fault is LinkFault.KEY_CHECK
    other_tmk = bytes.fromhex("11111111111111112222222222222222")
    with pytest.raises(LinkSecurityError) as caught:  # keys under another TMK decrypt to garbage: KCV fails
        unwrap_keys(wrap_keys(other_tmk, KEYS), TMK)
    assert caught.value.fault is LinkFault.KEY_CHECK
    for bad in ("", "ZZ" * 40, wrap_keys(TMK, KEYS)[:-2]):
        with pytest.raises(LinkSecurityError) as caught:
            unwrap_keys(bad, TMK)
        assert caught.value.fault is LinkFault.SIGN_ON


def test_single_length_key_is_refused_even_with_a_right_kcv() -> None:
    single = bytes.fromhex("4C4C4C4C4C4C4C4C") * 2
    value = (tdes_ecb_encrypt(TMK, KEYS.pik) + kcv_tdes(KEYS.pik, 4) + tdes_ecb_encrypt(TMK, single)
             + kcv_tdes(single, 4)).hex().upper()
    with pytest.raises(LinkSecurityError, match="single-length"):
        unwrap_keys(value, TMK)


def _flip_parity(key: bytes) -> bytes:
    """The same DES key with every parity bit (the low bit of each byte) inverted: another cryptogram, one KCV."""
    return bytes(b ^ 0x01 for b in key)


@pytest.mark.parametrize("pik", [KEYS.mak, _flip_parity(KEYS.mak)], ids=["same bytes", "same key, other parity"])
def test_a_pin_key_equal_to_the_mac_key_is_refused_on_both_sides(pik: bytes) -> None:
    value = wrap_keys(TMK, SessionKeys(pik=pik, mak=KEYS.mak))
    for unwrap in (unwrap_keys, accept_keys):
        with pytest.raises(LinkSecurityError, match="PIN key and the MAC key") as caught:
            unwrap(value, TMK)
        assert caught.value.fault is LinkFault.KEY_SEPARATION
    assert accept_keys(wrap_keys(TMK, KEYS), TMK).mak == KEYS.mak  # separate keys are taken


@pytest.mark.parametrize("fault", list(LinkFault))
def test_every_link_fault_has_the_cashiers_words_in_both_languages(fault: LinkFault) -> None:
    from flows.messages import t

    en, zh = t(f"link.{fault}", "en"), t(f"link.{fault}", "zh")  # KeyError when the catalogue lacks it
    assert en and zh and en != zh
