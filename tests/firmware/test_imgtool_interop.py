"""Interop with MCUboot's own tool: ``imgtool`` verifies and dumps pos-fw images, pos-fw verifies imgtool's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_image.image import verify_image
from firmware_image.keys import load_key

IMGTOOL = shutil.which("imgtool", path=str(Path(sys.executable).parent)) or shutil.which("imgtool")
pytestmark = [pytest.mark.skipif(IMGTOOL is None, reason="imgtool is in the dev extra: pip install -e '.[dev]'"),
              pytest.mark.slow]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False)


def _pos_fw(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "firmware_image.cli", *args)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_imgtool_verifies_and_dumps_pos_fw_images(tmp_path, kind):
    key, payload, image = tmp_path / "k.pem", tmp_path / "app.pyz", tmp_path / "app.img"
    assert _pos_fw("keygen", "-k", str(key), "-t", kind).returncode == 0
    payload.write_bytes(b"PK\x05\x06" + bytes(18) + b"not really a zip, but bytes" * 40)
    made = _pos_fw("sign", "-k", str(key), "-v", "1.4.2+77", "-s", "9", str(payload), str(image))
    assert made.returncode == 0, made.stderr
    checked = _run(IMGTOOL, "verify", "-k", str(key), str(image))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Image was correctly validated" in checked.stdout and "1.4.2+77" in checked.stdout
    dumped = _run(IMGTOOL, "dumpinfo", str(image))
    assert dumped.returncode == 0, dumped.stderr
    assert "SEC_CNT (0x50)" in dumped.stdout and ("ED25519 (0x24)" in dumped.stdout or "ECDSASIG" in dumped.stdout)
    assert "version:            1.4.2+77" in dumped.stdout


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_pos_fw_verifies_images_signed_by_imgtool(tmp_path, kind):
    key, payload, image = tmp_path / "k.pem", tmp_path / "app.bin", tmp_path / "app.img"
    assert _run(IMGTOOL, "keygen", "-k", str(key), "-t", kind).returncode == 0
    payload.write_bytes(bytes(range(256)) * 8)
    signed = _run(IMGTOOL, "sign", "-k", str(key), "-v", "3.1.0+5", "-H", "0x20", "--pad-header", "-S", "0x10000",
                  "-s", "12",
                  "--custom-tlv", "0xa0", "0x" + b"iotsim-pos-1".hex(), str(payload), str(image))
    assert signed.returncode == 0, signed.stdout + signed.stderr
    ok = _pos_fw("verify", "-k", str(key), "--device-class", "iotsim-pos-1", "--min-counter", "12", str(image))
    assert ok.returncode == 0, ok.stderr
    info = verify_image(image.read_bytes(), [load_key(key)])
    assert (str(info.version), info.security_counter, info.payload) == ("3.1.0+5", 12, payload.read_bytes())
    public = tmp_path / "pub.pem"
    public.write_text(_pos_fw("getpub", "-k", str(key)).stdout)
    assert _pos_fw("verify", "-k", str(public), str(image)).returncode == 0  # a public key is enough
    image.write_bytes(image.read_bytes()[:100] + b"\xff" + image.read_bytes()[101:])
    bad = _pos_fw("verify", "-k", str(key), str(image))
    assert bad.returncode == 1 and "tampered" in bad.stderr
