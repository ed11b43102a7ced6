"""``pos-fw`` as a technician uses it: keys, reproducible builds, verify exit codes and messages, info, slots."""

from __future__ import annotations

import pytest

from firmware_image.cli import main
from firmware_image.image import parse_image
from firmware_image.payload import read_manifest

from .conftest import ROOT


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def keyfile(tmp_path, capsys):
    path = tmp_path / "dev.pem"
    assert _run(capsys, "keygen", "-k", str(path))[0] == 0
    return path


def test_keygen_never_overwrites_and_getpub_prints_pem_or_c(tmp_path, capsys, keyfile):
    code, _, err = _run(capsys, "keygen", "-k", str(keyfile))
    assert code == 2 and "never overwritten" in err
    code, pem, _ = _run(capsys, "getpub", "-k", str(keyfile))
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    code, c_src, _ = _run(capsys, "getpub", "-k", str(keyfile), "-e", "lang-c")
    assert "const unsigned char pos_pub_key[]" in c_src and "pos_pub_key_len = 44" in c_src  # Ed25519 SPKI DER


def test_build_is_reproducible_and_verify_exit_codes(tmp_path, capsys, keyfile):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    for out in (a, b):
        code, _, err = _run(capsys, "build", "--root", str(ROOT), "--key", str(keyfile), "-v", "2.3.4+5",
                            "--output", str(out))
        assert code == 0, err
    assert a.read_bytes() == b.read_bytes()
    info = parse_image(a.read_bytes())
    manifest = read_manifest(info.payload)
    assert manifest["version"] == "2.3.4+5" and "terminal" in manifest["packages"] and "serial" in manifest["requires"]
    assert info.build_info["tree_sha256"] == manifest["tree_sha256"]
    assert info.security_counter == (2 << 24) | (3 << 16) | 4  # imgtool's auto counter

    assert _run(capsys, "verify", "-k", str(keyfile), str(a))[0] == 0
    other = tmp_path / "other.pem"
    _run(capsys, "keygen", "-k", str(other), "-t", "ecdsa-p256")
    results = {
        "wrong key": _run(capsys, "verify", "-k", str(other), str(a)),
        "downgrade": _run(capsys, "verify", "-k", str(keyfile), "--min-counter", str(3 << 24), str(a)),
        "class": _run(capsys, "verify", "-k", str(keyfile), "--device-class", "kiosk", str(a)),
    }
    raw = bytearray(a.read_bytes())
    raw[5000] ^= 1
    b.write_bytes(bytes(raw))
    results["tampered"] = _run(capsys, "verify", "-k", str(keyfile), str(b))
    code, _, _ = _run(capsys, "build", "--root", str(ROOT), "-v", "2.3.4", "--output", str(b))
    assert code == 0
    results["unsigned"] = _run(capsys, "verify", "-k", str(keyfile), str(b))
    assert {name: code for name, (code, _, _) in results.items()} == dict.fromkeys(results, 1)
    assert len({err for _, _, err in results.values()}) == len(results)
    assert "unsigned" in results["unsigned"][2] and "device class" in results["class"][2]


def test_info_and_local_slot_commands(tmp_path, capsys, keyfile):
    image, flash = tmp_path / "a.img", tmp_path / "flash.bin"
    _run(capsys, "build", "--root", str(ROOT), "--key", str(keyfile), "--output", str(image))
    code, out, _ = _run(capsys, "info", str(image))
    assert code == 0 and "SEC_CNT" in out and "DEVICE_CLASS" in out and '"entry": "terminal.cli:main"' in out
    code, out, _ = _run(capsys, "slots", "--flash", str(flash), "--create", "4")
    assert code == 0 and out.count("empty") == 2
    code, _, err = _run(capsys, "revert", "--flash", str(flash))
    assert code == 2 and "nothing to revert" in err
    code, out, _ = _run(capsys, "confirm", "--flash", str(flash))
    assert code == 0 and "nothing on trial" in out
    code, _, err = _run(capsys, "test", "--flash", str(flash))
    assert code == 2 and "holds no image" in err


def test_flash_to_a_missing_port_says_what_to_do(tmp_path, capsys, keyfile):
    image = tmp_path / "a.img"
    _run(capsys, "build", "--root", str(ROOT), "--key", str(keyfile), "--output", str(image))
    code, _, err = _run(capsys, "flash", "--port", str(tmp_path / "ttyNONE"), str(image))
    assert code == 3 and "--port" in err
