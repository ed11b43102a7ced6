"""Images that cannot run must not be confirmed: the manifest lists every runtime dependency with the version built
against, the self-test checks them and imports every entry point (``*.cli`` included). A device whose Python lacks
``segno`` test-boots a new build, the self-test fails, and the launcher reverts it."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from firmware_image.boot import launch
from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image
from firmware_image.payload import build_payload, read_manifest
from firmware_image.selftest import SelfTestFailed, check, satisfies
from firmware_image.slots import SlotState, read_trailer, set_pending
from tests.firmware.conftest import DEVICE, ROOT


@pytest.fixture(scope="module")
def payload() -> bytes:
    return build_payload(ROOT, version="1.1.0")


def test_manifest_lists_every_runtime_dependency_with_its_installed_version_and_the_entry_points(payload):
    manifest = read_manifest(payload)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for d in declared["dependencies"]]
    assert [d["name"] for d in manifest["dependencies"]] == names
    for dep in manifest["dependencies"]:
        assert dep["version"] == importlib.metadata.version(dep["name"])
    assert {d["name"]: d["import"] for d in manifest["dependencies"]}["pyserial"] == "serial"
    assert "segno" in [d["name"] for d in manifest["dependencies"]]
    assert "terminal.cli:main" in manifest["entry_points"] and "firmware_image.cli:main" in manifest["entry_points"]


@pytest.mark.parametrize(("version", "spec", "ok"), [
    ("1.6.6", ">=1.6", True), ("1.5.9", ">=1.6", False), ("4.2.0", ">=4.0,<5", True), ("5.0", ">=4.0,<5", False),
    ("2.10.70", ">=2.10,<2.11", True), ("2.11.0", ">=2.10,<2.11", False), ("1.4.2", "~=1.4.0", True),
    ("1.5.0", "~=1.4.0", False), ("3.5", "==3.5", True), ("3.5.1", "==3.5.*", True), ("3.6", "==3.5.*", False),
    ("3.5", "!=3.5", False), ("50.0.2", ">=44", True), ("1.0", "", True),
])
def test_requirement_clauses(version, spec, ok):
    assert satisfies(version, spec) is ok


@pytest.mark.parametrize(("dependency", "words"), [
    ({"name": "segno", "spec": ">=99", "version": "99.0"}, "does not satisfy >=99"),
    ({"name": "no-such-distribution", "spec": ">=1", "version": "1.0"}, "is not installed on this device"),
    ({"name": "segno", "spec": ">=1", "version": "1.6.6", "import": "no_such_module"}, "does not import"),
])
def test_a_missing_or_wrong_dependency_fails_the_self_test_with_its_name(dependency, words):
    with pytest.raises(SelfTestFailed, match=words):
        check({"dependencies": [dependency]})


def test_an_entry_point_without_its_function_fails():
    with pytest.raises(SelfTestFailed, match="has no nope"):
        check({"entry_points": ["firmware_image.cli:nope"]})


def _python_without(tmp_path: Path, dropped: str) -> str:
    """A device interpreter: a venv that sees every installed package of this one except ``dropped``."""
    venv = tmp_path / "device-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)  # noqa: S603
    python = venv / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],  # noqa: S603
                                 capture_output=True, text=True, check=True).stdout.strip())
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(dropped) and not (target / entry.name).exists():
            os.symlink(entry, target / entry.name)
    return str(python)


def _device(tmp_path: Path, key, payload: bytes) -> Path:
    """1.0.0 confirmed in slot 0, the new build (1.1.0, this tree) pending in slot 1."""
    path = tmp_path / "flash.bin"
    new = make_image(payload, version=Version(1, 1), key=key, security_counter=1, device_class=DEVICE)
    old = make_image(b"old build", version=Version(1), key=key, security_counter=1, device_class=DEVICE)
    with SimFlash.create(path, slot_sectors=len(new) // 4096 + 4) as flash:
        for slot, blob in ((0, old), (1, new)):
            flash.write(flash.geometry.slot_base(slot), blob + b"\xff" * (-len(blob) % 8))
            set_pending(flash, slot, permanent=slot == 0)
    return path


@pytest.mark.scenario
def test_a_device_without_segno_reverts_the_new_build(tmp_path, key, payload):
    python = _python_without(tmp_path, "segno")
    missing = subprocess.run([python, "-c", "import segno"], capture_output=True, timeout=60, check=False)  # noqa: S603
    assert missing.returncode != 0  # the device really lacks it
    flash = _device(tmp_path, key, payload)
    env = {"POS_FW_SELFTEST_ONLY": "1"}
    trial, code = launch(flash, [key], DEVICE, env=env, capture=True, python=python, timeout=120)
    assert (trial.slot, trial.trial, code) == (1, True, 3)
    assert any("self-test FAILED: dependency segno >=1.6 is not installed on this device" in m
               for m in trial.messages), trial.messages
    after, _ = launch(flash, [key], DEVICE, env=env, capture=True, python=python, timeout=120)
    assert after.slot == 0 and "slot 1: trial boot was not confirmed: reverted" in after.messages
    with SimFlash(flash) as f:
        assert read_trailer(f, 1).state is SlotState.IDLE and read_trailer(f, 0).state is SlotState.CONFIRMED


@pytest.mark.scenario
def test_the_same_build_confirms_itself_on_a_device_that_has_everything(tmp_path, key, payload):
    flash = _device(tmp_path, key, payload)
    trial, code = launch(flash, [key], DEVICE, env={"POS_FW_SELFTEST_ONLY": "1"}, capture=True, timeout=120)
    assert (trial.slot, trial.trial, code) == (1, True, 0), trial.messages
    assert "app: self-test passed: image 1.1.0 confirmed" in trial.messages
    with SimFlash(flash) as f:
        assert read_trailer(f, 1).state is SlotState.CONFIRMED


def test_a_confirmed_boot_checks_versions_but_imports_nothing():
    """The imports ran on the trial boot; a confirmed image's boots skip them (0.15-0.2 s of CPU each)."""
    broken = {"packages": ["no_such_package"], "entry_points": ["no_such_module:main"]}
    with pytest.raises(SelfTestFailed, match="does not import"):
        check(broken)
    assert check(broken, imports=False) == []
    with pytest.raises(SelfTestFailed, match="does not satisfy >=99"):
        check({"dependencies": [{"name": "segno", "spec": ">=99", "version": "99.0"}]}, imports=False)
    wrong_python = {"bytecode": {"magic": "00000000", "tag": "cpython-20"}}
    with pytest.raises(SelfTestFailed, match="bytecode for cpython-20"):
        check(wrong_python, imports=False)
