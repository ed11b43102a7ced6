"""Issue 17 item 3: the image ships its modules as bytecode, so a terminal booting from its image does not compile
every module it imports; the bytecode is deterministic, covered by the image's signature, and a device Python of
another version is told so by the self-test."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from firmware_image.errors import FirmwareImageError
from firmware_image.image import Version, make_image, verify_image
from firmware_image.keys import generate, public_of
from firmware_image.payload import SOURCE_ONLY, build_payload, bytecode, read_manifest
from firmware_image.selftest import SelfTestFailed, check
from tests.firmware.conftest import DEVICE, ROOT

PACKAGES = ("pos_errors", "firmware_image")  # small and self-contained: quick to build and to import


@pytest.fixture(scope="module")
def payload() -> bytes:
    return build_payload(ROOT, version="1.0.0", packages=PACKAGES, dependencies=[])


def test_every_module_ships_as_its_unchecked_hash_pyc_but_the_self_tests_own(payload: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = archive.namelist()
        compiled = [n for n in names if n.endswith(".pyc")]
        assert "pos_errors/__init__.pyc" in compiled and "firmware_image/image.pyc" in compiled
        sources = sorted(n for n in names if n.endswith(".py"))
        assert sources == ["__main__.py", *sorted(SOURCE_ONLY)]  # stdlib-only: they run before the check
        for name in compiled:
            pyc, source = archive.read(name), (ROOT / name[:-1]).read_bytes()
            assert pyc[:4] == importlib.util.MAGIC_NUMBER
            assert int.from_bytes(pyc[4:8], "little") == 1  # PEP 552: hash-based, source not checked
            assert pyc[8:16] == importlib.util.source_hash(source)
    assert read_manifest(payload)["bytecode"] == {"tag": sys.implementation.cache_tag,
                                                  "magic": importlib.util.MAGIC_NUMBER.hex()}


def test_a_device_python_of_another_version_fails_the_self_test_with_a_message(payload: bytes) -> None:
    manifest = read_manifest(payload)
    assert check({"bytecode": manifest["bytecode"]}) == []  # the building interpreter: passes
    foreign = {"bytecode": {"tag": "cpython-399", "magic": "ffff0d0a"}}
    with pytest.raises(SelfTestFailed, match=r"bytecode for cpython-399, this device runs cpython-3\d+: build"):
        check(foreign)


def test_the_same_tree_gives_the_same_bytes_and_sources_only_stays_possible(payload: bytes) -> None:
    assert build_payload(ROOT, version="1.0.0", packages=PACKAGES, dependencies=[]) == payload
    plain = build_payload(ROOT, version="1.0.0", packages=PACKAGES, dependencies=[], compiled=False)
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]
    assert "bytecode" not in read_manifest(plain)


def test_a_module_that_does_not_compile_builds_no_image() -> None:
    with pytest.raises(FirmwareImageError, match=r"broken/x.py does not compile"):
        bytecode("broken/x.py", b"def f(:\n")


def test_the_interpreter_runs_the_shipped_bytecode_not_a_compile_of_the_source(payload: bytes,
                                                                                tmp_path: Path) -> None:
    """The code objects carry the name they were compiled under in the build ("pos_errors/__init__.py"); a
    module compiled from the zip's source at import would carry the archive's path instead."""
    probe = ("import pos_errors, firmware_image.errors as e; "
             "print(pos_errors.__file__); print(e.FirmwareImageError.__init__.__code__.co_filename)")
    seen = {}
    for compiled in (True, False):
        archive = tmp_path / f"app-{compiled}.pyz"
        archive.write_bytes(payload if compiled else
                            build_payload(ROOT, version="1.0.0", packages=PACKAGES, dependencies=[], compiled=False))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,
                             env={**env, "PYTHONPATH": str(archive)}, cwd=tmp_path)
        module_file, code_file = run.stdout.splitlines()
        assert module_file.startswith(str(archive))  # imported from the image, not from the tree
        seen[compiled] = code_file
    assert seen[True] == "firmware_image/errors.py"
    assert seen[False] == str(tmp_path / "app-False.pyz" / "firmware_image" / "errors.py")


def test_the_signature_covers_the_bytecode(payload: bytes) -> None:
    key = generate()
    image = make_image(payload, version=Version.parse("1.0.0"), key=key, security_counter=1, device_class=DEVICE)
    verify_image(image, [public_of(key)], device_class=DEVICE)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        info = archive.getinfo("pos_errors/__init__.pyc")
    start = image.index(payload)
    at = start + info.header_offset + 30 + len(info.filename) + 20  # inside the marshalled code
    tampered = image[:at] + bytes([image[at] ^ 0x01]) + image[at + 1:]
    with pytest.raises(FirmwareImageError) as refused:
        verify_image(tampered, [public_of(key)], device_class=DEVICE)
    assert refused.value.reason == "tampered"
