"""Firmware policy from protected data only (issue 19 item 4): the crafted images of the security review.

MCUboot's rules: security counter and device class are read from the protected TLV area alone and are required
there when the verifier checks them; the unprotected area holds only hash, key and signature; each TLV once; no
byte after the TLV area; the rollback counter rises only from a verified image.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_image.errors import FirmwareImageError
from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image, parse_image, verify_image
from firmware_image.keys import key_hash, load_key, sign, signature_tlv
from firmware_image.layout import (
    HEADER,
    TLV,
    TLV_DEVICE_CLASS,
    TLV_INFO,
    TLV_INFO_MAGIC,
    TLV_KEYHASH,
    TLV_PROT_INFO_MAGIC,
    TLV_SEC_CNT,
    TLV_SHA256,
)
from firmware_image.slots import confirm_flash, mark_tried, read_counter, read_trailer, set_pending

from .conftest import DEVICE, app_payload, boot, new_flash, signed

IMGTOOL = shutil.which("imgtool", path=str(Path(sys.executable).parent)) or shutil.which("imgtool")


def _area(magic: int, entries: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(TLV.build(dict(type=t, length=len(v), value=v)) for t, v in entries)
    return TLV_INFO.build(dict(magic=magic, total=len(body) + 4)) + body


def _append_unprotected(blob: bytes, kind: int, value: bytes) -> bytes:
    """What the attacker does after signing: one more TLV in the unprotected area (hash and signature still hold)."""
    info = parse_image(blob)
    return info.hashed_region + _area(TLV_INFO_MAGIC, [*info.unprotected, (kind, value)])


def _signed_with_protected(key, payload: bytes, protected: list[tuple[int, bytes]]) -> bytes:
    """A correctly signed image whose protected area is exactly ``protected`` (duplicates allowed)."""
    prot = _area(TLV_PROT_INFO_MAGIC, protected)
    header = HEADER.build(dict(load_addr=0, hdr_size=32, protect_tlv_size=len(prot), img_size=len(payload),
                               flags=0, version=dict(major=2, minor=0, revision=0, build=0)))
    region = header + payload + prot
    unprotected = [(TLV_SHA256, hashlib.sha256(region).digest()), (TLV_KEYHASH, key_hash(key)),
                   (signature_tlv(key), sign(key, region))]
    return region + _area(TLV_INFO_MAGIC, unprotected)


def _counter(n: int) -> bytes:
    return n.to_bytes(4, "little")


def _pos_fw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware_image.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.slow
@pytest.mark.skipif(IMGTOOL is None, reason="imgtool is in the dev extra: pip install -e '.[dev]'")
def test_imgtool_image_with_a_counter_appended_after_signing_is_refused(tmp_path):
    key, payload, image = tmp_path / "k.pem", tmp_path / "app.bin", tmp_path / "app.img"
    assert subprocess.run([IMGTOOL, "keygen", "-k", str(key), "-t", "ed25519"], check=False).returncode == 0
    payload.write_bytes(bytes(range(256)) * 4)
    made = subprocess.run([IMGTOOL, "sign", "-k", str(key), "-v", "2.0.0", "-H", "0x20", "--pad-header",
                           "-S", "0x10000", "--custom-tlv", "0xa0", "0x" + DEVICE.encode().hex(),
                           str(payload), str(image)], capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    genuine = image.read_bytes()
    assert _pos_fw("verify", "-k", str(key), "--device-class", DEVICE, str(image)).returncode == 0
    no_counter = _pos_fw("verify", "-k", str(key), "--min-counter", "1", str(image))
    assert no_counter.returncode == 1 and "no security counter in its protected TLVs" in no_counter.stderr

    image.write_bytes(_append_unprotected(genuine, TLV_SEC_CNT, _counter(1000)))
    assert "SEC_CNT" in _pos_fw("info", str(image)).stdout  # the tool still shows what is there
    for floor in ("5", "0"):
        crafted = _pos_fw("verify", "-k", str(key), "--min-counter", floor, str(image))
        assert crafted.returncode == 1, crafted.stdout
        assert "SEC_CNT TLV in the unprotected area" in crafted.stderr
    plain = _pos_fw("verify", "-k", str(key), str(image))
    assert plain.returncode == 1 and "tampered" in plain.stderr

    flash = new_flash(tmp_path / "flash.bin", slot_sectors=16)
    flash.write(flash.geometry.slot_base(0), image.read_bytes() + b"\xff" * (-len(image.read_bytes()) % 8))
    set_pending(flash, 0)
    decision = boot(flash, load_key(key))
    assert decision.slot is None and read_counter(flash) == 0
    assert any("slot 0 refused (tampered)" in m for m in decision.messages)
    assert not read_trailer(flash, 0).magic  # taken out of the boot choice
    flash.close()


@pytest.mark.parametrize(("case", "reason", "words"), [
    ("counter-unprotected", "tampered", "SEC_CNT TLV in the unprotected area"),
    ("class-unprotected", "tampered", "DEVICE_CLASS TLV in the unprotected area"),
    ("duplicate-counter", "malformed", "SEC_CNT appears twice"),
    ("counter-in-both-areas", "malformed", "SEC_CNT appears twice"),
    ("duplicate-class", "malformed", "DEVICE_CLASS appears twice"),
    ("short-counter", "malformed", "security counter TLV is 2 bytes"),
    ("no-class", "wrong-device-class", "names no device class"),
    ("trailing-bytes", "malformed", "bytes follow the TLV area"),
])
def test_crafted_images_are_refused(key, case, reason, words):
    payload = app_payload(600, 3)
    good = signed(key, payload, "2.0.0", 9)
    crafted = {
        "counter-unprotected": lambda: _append_unprotected(
            _signed_with_protected(key, payload, [(TLV_DEVICE_CLASS, DEVICE.encode())]), TLV_SEC_CNT, _counter(99)),
        "class-unprotected": lambda: _append_unprotected(
            _signed_with_protected(key, payload, [(TLV_SEC_CNT, _counter(9))]), TLV_DEVICE_CLASS, DEVICE.encode()),
        "counter-in-both-areas": lambda: _append_unprotected(good, TLV_SEC_CNT, _counter(99)),
        "duplicate-counter": lambda: _signed_with_protected(key, payload, [
            (TLV_SEC_CNT, _counter(1)), (TLV_DEVICE_CLASS, DEVICE.encode()), (TLV_SEC_CNT, _counter(99))]),
        "duplicate-class": lambda: _signed_with_protected(key, payload, [
            (TLV_SEC_CNT, _counter(9)), (TLV_DEVICE_CLASS, b"kiosk"), (TLV_DEVICE_CLASS, DEVICE.encode())]),
        "short-counter": lambda: _signed_with_protected(key, payload, [
            (TLV_SEC_CNT, b"\x09\x00"), (TLV_DEVICE_CLASS, DEVICE.encode())]),
        "no-class": lambda: _signed_with_protected(key, payload, [(TLV_SEC_CNT, _counter(9))]),
        "trailing-bytes": lambda: good + b"\xff" * 8,
    }[case]()
    assert verify_image(good, [key], device_class=DEVICE, min_counter=9).security_counter == 9
    with pytest.raises(FirmwareImageError, match=words) as caught:
        verify_image(crafted, [key], device_class=DEVICE, min_counter=1)
    assert caught.value.reason == reason


def test_policy_values_come_only_from_the_protected_area(key):
    blob = _append_unprotected(_signed_with_protected(key, b"app", [(TLV_DEVICE_CLASS, DEVICE.encode())]),
                               TLV_SEC_CNT, _counter(500))
    info = parse_image(blob)  # pos-fw info still shows it; the appended 500 is never read as the counter
    assert (info.security_counter, info.has_counter, info.device_class) == (0, False, DEVICE)
    bare = parse_image(_signed_with_protected(key, b"app", []))
    assert (bare.security_counter, bare.has_counter, bare.device_class) == (0, False, None)
    assert verify_image(_signed_with_protected(key, b"app", []), [key]).payload == b"app"  # no policy asked


def test_counter_rises_on_confirm_only_from_a_verified_image(tmp_path, key, other_key):
    """A slot on trial holding an image the device's key did not sign: confirm with keys refuses and changes
    nothing; confirm without keys marks it but leaves the counter for the launcher, which refuses the image."""
    path = tmp_path / "flash.bin"
    flash = new_flash(path, slot_sectors=8)
    foreign = make_image(app_payload(500, 5), version=Version.parse("9.0.0"), key=other_key,
                         security_counter=1000, device_class=DEVICE)
    flash.write(flash.geometry.slot_base(1), foreign + b"\xff" * (-len(foreign) % 8))
    set_pending(flash, 1)
    mark_tried(flash, 1)
    with pytest.raises(FirmwareImageError) as caught:
        confirm_flash(flash, [key], DEVICE)
    assert caught.value.reason == "wrong-key"
    assert (read_trailer(flash, 1).image_ok, read_counter(flash)) == (False, 0)
    assert confirm_flash(flash) is True
    assert (read_trailer(flash, 1).image_ok, read_counter(flash)) == (True, 0)
    assert boot(flash, key).slot is None and read_counter(flash) == 0  # the launcher refuses it; counter stays
    flash.close()
    with SimFlash(path, sector_size=1024) as again:
        assert read_counter(again) == 0
