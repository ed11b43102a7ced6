"""MCUboot image format: exact header bytes, TLV areas, signatures, and one distinct reason per rejection."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_image.errors import FirmwareImageError
from firmware_image.image import REASONS, Version, make_image, parse_image, verify_image
from firmware_image.keys import generate, key_hash, public_der, public_of
from firmware_image.layout import BOOT_MAGIC, TLV_DEVICE_CLASS, TLV_SEC_CNT

from .conftest import DEVICE, signed

# MCUboot bootutil/include/bootutil/image.h: IMAGE_MAGIC 0x96f3b83d, IMAGE_TLV_INFO_MAGIC 0x6907,
# IMAGE_TLV_PROT_INFO_MAGIC 0x6908, header struct of 32 bytes, little-endian.
EXPECTED_HEADER = bytes.fromhex(
    "3db8f396"  # ih_magic
    "00000000"  # ih_load_addr
    "2000"      # ih_hdr_size 0x20
    "1b00"      # ih_protect_tlv_size: 4 (info) + 8 (SEC_CNT) + 4 + 11 ("iotsim-test" DEVICE_CLASS)
    "05000000"  # ih_img_size
    "00000000"  # ih_flags
    "01020300"  # major 1, minor 2, revision 3
    "04000000"  # build 4
    "00000000"  # _pad1
)


def test_header_and_protected_area_bytes_match_mcuboot_layout():
    blob = make_image(b"hello", version=Version.parse("1.2.3+4"), key=None, security_counter=7,
                      device_class="iotsim-test")
    assert blob[:32] == EXPECTED_HEADER
    assert blob[32:37] == b"hello"
    prot = blob[37:37 + 0x1B]
    assert prot == bytes.fromhex("0869" "1b00" "5000" "0400" "07000000" "a000" "0b00") + b"iotsim-test"
    tlvs = blob[37 + 0x1B:]
    assert tlvs[:4] == bytes.fromhex("0769") + (4 + 4 + 32).to_bytes(2, "little")
    assert tlvs[4:8] == bytes.fromhex("1000" "2000")  # SHA256 TLV type 0x10, length 32
    assert tlvs[8:40] == hashlib.sha256(blob[:37 + 0x1B]).digest()


def test_boot_magic_is_mcuboots():
    # bootutil_public.c boot_img_magic (BOOT_MAX_ALIGN 8)
    assert BOOT_MAGIC == bytes([0x77, 0xC2, 0x95, 0xF3, 0x60, 0xD2, 0xEF, 0x7F,
                                0x35, 0x52, 0x50, 0x0F, 0x2C, 0xB6, 0x79, 0x80])


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_round_trip_and_reproducible(kind):
    key = generate(kind)
    a = signed(key, b"payload" * 50, "2.0.1+9", counter=5)
    b = signed(key, b"payload" * 50, "2.0.1+9", counter=5)
    assert a == b  # same inputs and key: same bytes (Ed25519 and RFC 6979 ECDSA are deterministic)
    info = verify_image(a, [public_of(key)], device_class=DEVICE, min_counter=5)
    assert (str(info.version), info.security_counter, info.device_class) == ("2.0.1+9", 5, DEVICE)
    assert info.tlv(0x01) == key_hash(key) == hashlib.sha256(public_der(key)).digest()
    assert info.tlv(TLV_SEC_CNT) == (5).to_bytes(4, "little")
    assert info.tlv(TLV_DEVICE_CLASS) == DEVICE.encode()


def _reason(blob, keys, **policy):
    with pytest.raises(FirmwareImageError) as err:
        verify_image(blob, keys, **policy)
    return err.value.reason, str(err.value)


def test_each_rejection_has_its_own_reason_and_message(key, other_key):
    good = signed(key, b"x" * 300, counter=3)
    tampered = bytearray(good)
    tampered[40] ^= 0x01
    unsigned = make_image(b"x" * 300, version=Version(1), key=None, security_counter=3, device_class=DEVICE)
    results = {
        "malformed": _reason(b"\x00" * 64, [key]),
        "tampered": _reason(bytes(tampered), [key]),
        "unsigned": _reason(unsigned, [key]),
        "wrong-key": _reason(good, [other_key]),
        "downgrade": _reason(good, [key], min_counter=4),
        "wrong-device-class": _reason(good, [key], device_class="other-terminal"),
    }
    assert {k: v[0] for k, v in results.items()} == {r: r for r in REASONS}
    assert len({message for _, message in results.values()}) == len(REASONS)
    assert "downgrade" in results["downgrade"][1] and "--security-counter" in results["downgrade"][1]


def test_every_flipped_byte_is_rejected(key):
    good = signed(key, bytes(range(256)) * 2, counter=2)
    verify_image(good, [key])
    positions = sorted(set(random.Random(7).sample(range(len(good)), 120)) | set(range(32))
                       | set(range(len(good) - 140, len(good))))
    for pos in positions:
        bad = bytearray(good)
        bad[pos] ^= 0x40
        with pytest.raises(FirmwareImageError):
            verify_image(bytes(bad), [key])


def test_truncated_and_garbage_images_are_malformed_not_crashes(key):
    good = signed(key, b"abc" * 100)
    for cut in (0, 10, 31, 32, 100, len(good) - 1):
        with pytest.raises(FirmwareImageError):
            parse_image(good[:cut])
    rng = random.Random(3)
    for _ in range(200):
        junk = b"\x3d\xb8\xf3\x96" + rng.randbytes(rng.randrange(0, 200))
        with pytest.raises(FirmwareImageError):
            verify_image(junk, [key])


def test_version_text():
    assert str(Version.parse("1.4")) == "1.4.0+0"
    with pytest.raises(FirmwareImageError, match="major.minor"):
        Version.parse("v1")
    with pytest.raises(FirmwareImageError, match="out of range"):
        Version.parse("256.0.0")


@settings(max_examples=40, deadline=None)
@given(version=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 65535), st.integers(0, 2**32 - 1)),
       counter=st.integers(0, 2**32 - 1), device=st.text(min_size=1, max_size=20), payload=st.binary(max_size=300),
       header_size=st.sampled_from([0x20, 0x80, 0x200]))
def test_parse_of_make_is_identity(key, version, counter, device, payload, header_size):
    blob = make_image(payload, version=Version(*version), key=key, security_counter=counter, device_class=device,
                      header_size=header_size)
    info = verify_image(blob, [key], device_class=device, min_counter=counter)
    assert (info.version, info.security_counter, info.device_class, info.payload, info.header_size,
            info.total_size) == (Version(*version), counter, device, payload, header_size, len(blob))
