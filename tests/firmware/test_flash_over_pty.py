"""Acceptance: the update agent runs as its own process on a real pty (``os.openpty``), ``pos-fw flash`` downloads
a build of this tree into the inactive slot, and the boot launcher test-boots it. A good build confirms itself
after its self-test; a build whose self-test fails is reverted automatically at the next boot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_image.agent import AgentCore
from firmware_image.boot import decide
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.keys import load_key
from firmware_image.link import LoopLink
from firmware_image.slots import SlotState, describe, read_counter

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "iotsim-pos-1"
pytestmark = [pytest.mark.scenario, pytest.mark.slow]


def _py(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=ROOT)


def _pos_fw(*args: str) -> subprocess.CompletedProcess[str]:
    return _py("-m", "firmware_image.cli", *args)


@pytest.fixture
def device(tmp_path):
    """Keys, and a device running build 1.0.0 of this tree, confirmed (installed at the factory: in memory)."""
    key, pub, flash_path = tmp_path / "key.pem", tmp_path / "pub.pem", tmp_path / "flash.bin"
    assert _pos_fw("keygen", "-k", str(key)).returncode == 0
    pub.write_text(_pos_fw("getpub", "-k", str(key)).stdout)
    v1 = tmp_path / "v1.img"
    built = _pos_fw("build", "--key", str(key), "-v", "1.0.0", "--output", str(v1))
    assert built.returncode == 0, built.stderr
    slot_sectors = len(v1.read_bytes()) // 4096 + 8
    assert _pos_fw("slots", "--flash", str(flash_path), "--create", str(slot_sectors)).returncode == 0
    with SimFlash(flash_path) as flash:
        core = AgentCore(flash, [load_key(pub)], DEVICE)
        Flasher(LoopLink(core)).flash(v1.read_bytes(), permanent=True)
        assert decide(flash, [load_key(pub)], DEVICE).slot == 0
    return tmp_path, key, pub, flash_path


def _flash_over_pty(tmp_path: Path, key: Path, pub: Path, flash_path: Path, image: Path) -> str:
    agent = subprocess.Popen([sys.executable, "-m", "firmware_image.agent_shell", "--pty", "--flash", str(flash_path),  # noqa: S603
                              "--key", str(pub), "--device-class", DEVICE, "--idle-timeout", "60"],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert agent.stdout is not None
        line = agent.stdout.readline()
        assert line.startswith("PORT /dev/"), line
        port = line.split()[1]
        flashed = _pos_fw("flash", "--port", port, "--baud", "921600", str(image))
        assert flashed.returncode == 0, flashed.stdout + flashed.stderr
        assert agent.wait(timeout=30) == 0  # the agent ends on RESET, as the device reboots
        assert "agent: reset" in agent.stdout.read()
        return flashed.stdout
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def _boot(flash_path: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return _py("-m", "firmware_image.boot", "--flash", str(flash_path), "--key", str(pub), "--device-class", DEVICE,
               "--self-test-only")


def test_flash_a_new_build_over_a_pty_test_boot_it_and_it_confirms(device):
    tmp_path, key, pub, flash_path = device
    v2 = tmp_path / "v2.img"
    assert _pos_fw("build", "--key", str(key), "-v", "1.1.0+7", "--output", str(v2)).returncode == 0
    out = _flash_over_pty(tmp_path, key, pub, flash_path, v2)
    assert "slot 1: 1.1.0+7 pending" in out
    assert [(s.state, s.version) for s in describe(flash_path, [load_key(pub)], DEVICE)] == [
        (SlotState.CONFIRMED, "1.0.0+0"), (SlotState.PENDING, "1.1.0+7")]
    first = _boot(flash_path, pub)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "test boot of 1.1.0+7" in first.stdout and "self-test passed: image 1.1.0+7 confirmed" in first.stdout
    second = _boot(flash_path, pub)
    assert "slot 1: boot 1.1.0+7" in second.stdout and "test boot" not in second.stdout
    slots = describe(flash_path, [load_key(pub)], DEVICE)
    assert [(s.state, s.running) for s in slots] == [(SlotState.CONFIRMED, False), (SlotState.CONFIRMED, True)]
    with SimFlash(flash_path) as flash:
        assert read_counter(flash) == (1 << 24) | (1 << 16)  # 1.1.0, imgtool's auto counter: raised on confirm

    again = _flash_over_pty(tmp_path, key, pub, flash_path, v2)  # same build again: almost nothing to send
    assert "slot 0: 1.1.0+7 pending" in again
    ratio = float(re.search(r"\(ratio ([0-9.]+)\)", again).group(1))
    assert ratio < 0.05


def test_a_build_that_fails_its_self_test_is_reverted_automatically(device):
    tmp_path, key, pub, flash_path = device
    bad = tmp_path / "bad.img"
    built = _pos_fw("build", "--key", str(key), "-v", "1.2.0", "--requires", "serial,no_such_platform_package",
                    "--output", str(bad))
    assert built.returncode == 0, built.stderr
    _flash_over_pty(tmp_path, key, pub, flash_path, bad)
    trial = _boot(flash_path, pub)
    assert "test boot of 1.2.0+0" in trial.stdout
    assert trial.returncode == 1 and "self-test FAILED" in trial.stderr and "no_such_platform_package" in trial.stderr
    after = _boot(flash_path, pub)
    assert "slot 1: trial boot was not confirmed: reverted" in after.stdout
    assert "slot 0: boot 1.0.0+0" in after.stdout and after.returncode == 0
    slots = describe(flash_path, [load_key(pub)], DEVICE)
    assert [(s.state, s.running) for s in slots] == [(SlotState.CONFIRMED, True), (SlotState.IDLE, False)]
    with SimFlash(flash_path) as flash:
        assert read_counter(flash) == 1 << 24  # still 1.0.0's: the unconfirmed 1.2.0 never raised it


def test_a_one_line_change_is_flashed_as_a_delta_over_a_pty_and_boots(device):
    """The running 1.0.0 plus one edited module: the host sends copies of what moved and the changed bytes only;
    the device assembles, checks hash and signature, and the build test-boots and confirms itself."""
    tmp_path, key, pub, flash_path = device
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "terminal", "drivers", "flows", "emv", "firmware_image", "pos_errors"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tree / name)
    module = tree / "flows" / "__init__.py"  # an early member: everything after it in the zipapp shifts
    # a line of code, not a comment: the image holds bytecode, which a comment does not change
    module.write_text(module.read_text(encoding="utf-8") + "ONE_MORE_LINE = 1\n", encoding="utf-8")
    v2 = tmp_path / "v2.img"
    built = _pos_fw("build", "--key", str(key), "-v", "1.0.1", "--root", str(tree), "--output", str(v2))
    assert built.returncode == 0, built.stderr
    out = _flash_over_pty(tmp_path, key, pub, flash_path, v2)
    assert "slot 1: 1.0.1+0 pending" in out
    ratio = float(re.search(r"\(ratio ([0-9.]+)\)", out).group(1))
    rebuilt = int(re.search(r"(\d+) rebuilt from the running image", out).group(1))
    assert ratio < 0.05 and rebuilt > 10, out
    first = _boot(flash_path, pub)
    assert "self-test passed: image 1.0.1+0 confirmed" in first.stdout, first.stdout + first.stderr
