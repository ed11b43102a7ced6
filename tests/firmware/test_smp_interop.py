"""Interop: ``smpclient`` (a client nobody here wrote) drives the simulated device's SMP server through its pty.

The device is ``sim.devices.update_device``: the real boot launcher, the real agent (``MaintenancePort``) on a
real pty that stays across resets. Upload, state read, test, reset, confirm after the test boot; a new image
whose self-test fails is reverted; resume; and the refusals a technician meets, with SMP's error codes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from smp.error import MGMT_ERR
from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error, success
from smpclient.requests.image_management import ImageErase, ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, OSApplicationInfoRead, ResetWrite
from smpclient.transport.serial import SMPSerialTransport

from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image, parse_image
from firmware_image.payload import build_payload, runtime_dependencies
from firmware_image.slots import SlotState, read_counter, read_trailer, set_pending
from sim.devices.update_device import UpdateDevice
from sim.devices.update_device import main as update_device_main
from tests.firmware.conftest import ROOT

DEVICE = "iotsim-pos-test"
pytestmark = pytest.mark.scenario


def app(exit_code: int = 0, size: int = 0) -> bytes:
    """A tiny application zipapp: starts, does not confirm itself (the technician does, over SMP)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("__main__.py", f"import sys\nprint('app up')\nsys.exit({exit_code})\n")
        z.writestr("pad.bin", bytes(range(256)) * (size // 256))
    return buffer.getvalue()


def image(key, version: str, payload: bytes, counter: int = 1) -> bytes:
    return make_image(payload, version=Version.parse(version), key=key, security_counter=counter,
                      device_class=DEVICE)


@pytest.fixture
def device(tmp_path, key):
    """A device running 1.0.0 from slot 0, confirmed at the factory."""
    path = tmp_path / "flash.bin"
    with SimFlash.create(path, slot_sectors=24, sector_size=4096) as flash:
        v1 = image(key, "1.0.0", app(size=20000))
        flash.write(0, v1 + b"\xff" * (-len(v1) % 8))
        set_pending(flash, 0, permanent=True)
    dev = UpdateDevice(path, [key], DEVICE, app_env={}).start()
    yield dev
    dev.stop()


async def _client(device: UpdateDevice) -> SMPClient:
    client = SMPClient(SMPSerialTransport(), device.path, timeout_s=10)
    await client.connect()
    return client


def _states(response) -> list[tuple[int, str, bool, bool, bool]]:
    return [(s.slot, s.version, bool(s.active), bool(s.pending), bool(s.confirmed)) for s in response.images]


async def _upload(client: SMPClient, blob: bytes) -> list[int]:
    return [off async for off in client.upload(blob)]


def _wait_boots(device: UpdateDevice, count: int) -> None:
    for _ in range(600):
        if len(device.boots) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"device booted {len(device.boots)} times")


def test_upload_state_test_reset_then_confirm_after_the_test_boot(device, key):
    v2 = image(key, "1.1.0+3", app(size=60000), counter=2)
    _wait_boots(device, 1)

    async def before_reset() -> None:
        client = await _client(device)
        params = await client.request(MCUMgrParametersRead())
        assert success(params) and params.buf_size >= 1024
        echo = await client.request(EchoWrite(d="技术员 ok"))
        assert success(echo) and echo.r == "技术员 ok"
        offsets = await _upload(client, v2)
        assert offsets[-1] == len(v2) and len(offsets) > 10  # many chunks, each acknowledged by its offset
        states = await client.request(ImageStatesRead())
        assert _states(states) == [(0, "1.0.0", True, False, True), (1, "1.1.0.3", False, True, False)]
        assert states.images[1].hash == parse_image(v2).sha256  # the image's SHA-256 TLV, as smpmgr reads it
        tested = await client.request(ImageStatesWrite(hash=parse_image(v2).sha256))
        assert success(tested) and _states(tested)[1][3] is True
        assert success(await client.request(ResetWrite()))
        await client.disconnect()

    asyncio.run(before_reset())
    _wait_boots(device, 2)
    assert device.boots[-1].slot == 1 and device.boots[-1].trial  # test boot of the new image

    async def after_reset() -> None:
        client = await _client(device)
        states = await client.request(ImageStatesRead())
        assert _states(states) == [(0, "1.0.0", False, False, True), (1, "1.1.0.3", True, False, False)]
        confirmed = await client.request(ImageStatesWrite(confirm=True))
        assert success(confirmed)
        assert _states(confirmed) == [(0, "1.0.0", False, False, True), (1, "1.1.0.3", True, False, True)]
        await client.disconnect()

    asyncio.run(after_reset())
    with SimFlash(device.flash) as flash:
        assert read_trailer(flash, 1).state is SlotState.CONFIRMED
        assert read_counter(flash) == 2  # raised on confirm


@pytest.fixture
def big_device(tmp_path, key):
    """Slots large enough for a real build of this tree; the launcher runs each image's self-test only."""
    path = tmp_path / "flash.bin"
    with SimFlash.create(path, slot_sectors=768, sector_size=4096) as flash:
        v1 = image(key, "1.0.0", app(size=20000))
        flash.write(0, v1 + b"\xff" * (-len(v1) % 8))
        set_pending(flash, 0, permanent=True)
    dev = UpdateDevice(path, [key], DEVICE, app_env={"POS_FW_SELFTEST_ONLY": "1"}).start()
    yield dev
    dev.stop()


def test_a_new_build_that_fails_its_self_test_is_reverted(big_device, key):
    device = big_device
    needs_more = runtime_dependencies(ROOT) + [{"name": "no-such-runtime-lib", "spec": ">=1", "version": "1.0",
                                                 "import": "no_such_runtime_lib"}]
    bad = image(key, "1.2.0", build_payload(ROOT, version="1.2.0", dependencies=needs_more))
    _wait_boots(device, 1)

    async def upload_and_reset() -> None:
        client = await _client(device)
        await _upload(client, bad)
        assert _states(await client.request(ImageStatesRead()))[1] == (1, "1.2.0", False, True, False)
        assert success(await client.request(ResetWrite()))
        await client.disconnect()

    asyncio.run(upload_and_reset())
    _wait_boots(device, 3)  # the trial boot (self-test fails), the watchdog's reset, the reverting boot
    trial, after = device.boots[-2:]
    assert [(trial.slot, trial.trial), (after.slot, after.trial)] == [(1, True), (0, False)]
    assert any("self-test FAILED: dependency no-such-runtime-lib >=1 is not installed" in m for m in trial.messages)
    assert "slot 1: trial boot was not confirmed: reverted" in after.messages

    async def read() -> list:
        client = await _client(device)
        states = _states(await client.request(ImageStatesRead()))
        await client.disconnect()
        return states

    assert asyncio.run(read()) == [(0, "1.0.0", True, False, True), (1, "1.2.0", False, False, False)]


def test_an_interrupted_upload_resumes_where_it_stopped(device, key):
    v2 = image(key, "1.1.0", app(size=60000))
    _wait_boots(device, 1)

    async def run() -> tuple[list[int], list[int]]:
        client = await _client(device)
        first = []
        async for off in client.upload(v2):
            first.append(off)
            if off > len(v2) // 2:
                break  # the cable is pulled half way
        await client.disconnect()
        client = await _client(device)
        second = await _upload(client, v2)
        states = _states(await client.request(ImageStatesRead()))
        await client.disconnect()
        assert states[1] == (1, "1.1.0", False, True, False)
        return first, second

    first, second = asyncio.run(run())
    assert second[0] == first[-1]  # the device said where to go on: nothing sent twice
    with SimFlash(device.flash) as flash:
        assert flash.read(flash.geometry.slot_base(1), len(v2)) == v2


def test_refusals_carry_smp_error_codes_and_change_nothing(device, key, other_key):
    _wait_boots(device, 1)
    good = image(key, "1.1.0", app(size=5000))
    tampered = bytearray(good)
    tampered[200] ^= 1

    async def run() -> None:
        client = await _client(device)
        with pytest.raises(SMPUploadError) as refused:
            await _upload(client, bytes(tampered))
        assert refused.value.args[0].err.rc == IMG_MGMT_ERR.INVALID_HASH
        with pytest.raises(SMPUploadError) as refused:
            await _upload(client, image(other_key, "1.1.0", app()))
        assert refused.value.args[0].err.rc == IMG_MGMT_ERR.INVALID_TLV
        with pytest.raises(SMPUploadError) as refused:
            await _upload(client, make_image(app(), version=Version(2), key=key, security_counter=1,
                                             device_class="another-device"))
        assert refused.value.args[0].err.rc == IMG_MGMT_ERR.INVALID_FLASH_ADDRESS
        with pytest.raises(SMPUploadError) as refused:
            await _upload(client, image(key, "3.0.0", app(size=200_000)))
        assert refused.value.args[0].err.rc == IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE
        with pytest.raises(SMPUploadError) as refused:
            await _upload(client, b"\x00" * 100)
        assert refused.value.args[0].err.rc == IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC
        states = await client.request(ImageStatesRead())
        assert _states(states) == [(0, "1.0.0", True, False, True)]  # nothing refused became an image state
        running_hash = states.images[0].hash
        answer = await client.request(ImageStatesWrite(hash=running_hash))
        assert error(answer) and answer.err.rc == IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED
        answer = await client.request(ImageStatesWrite(hash=hashlib.sha256(b"x").digest()))
        assert error(answer) and answer.err.rc == IMG_MGMT_ERR.HASH_NOT_FOUND
        answer = await client.request(ImageErase(slot=0))
        assert error(answer) and answer.rc == MGMT_ERR.EBADSTATE
        answer = await client.request(ImageErase(slot=7))
        assert error(answer) and answer.err.rc == IMG_MGMT_ERR.INVALID_SLOT
        info = await client.request(OSApplicationInfoRead(format="sn"))
        assert success(info) and info.output == f"pos-fw-agent {DEVICE}"
        # an uploaded image can be erased again (the inactive slot only)
        await _upload(client, good)
        assert success(await client.request(ImageErase(slot=1)))
        assert _states(await client.request(ImageStatesRead())) == [(0, "1.0.0", True, False, True)]
        await client.disconnect()

    asyncio.run(run())
    with SimFlash(device.flash) as flash:
        assert read_trailer(flash, 0).state is SlotState.CONFIRMED and read_trailer(flash, 1).magic is False


def test_missing_flash_file_is_explained(tmp_path, capsys):
    missing = str(Path(tmp_path) / "none.bin")
    assert update_device_main(["--flash", missing, "--key", "k.pem", "--device-class", DEVICE]) == 2
    assert f"pos-fw slots --flash {missing} --create" in capsys.readouterr().err


def _smpmgr(port: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smpmgr", "--port", port, "--timeout", "10", *args],  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ, COLUMNS="200"))


@pytest.mark.slow
def test_smpmgr_state_read_and_upgrade_as_a_technician_types_them(device, key, tmp_path):
    _wait_boots(device, 1)
    listed = _smpmgr(device.path, "image", "state-read")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "slot=0" in listed.stdout and "version='1.0.0'" in listed.stdout and "active=True" in listed.stdout
    v2 = tmp_path / "v2.img"
    v2.write_bytes(image(key, "1.1.0", app(size=12000)))
    upgraded = _smpmgr(device.path, "upgrade", str(v2))
    assert upgraded.returncode == 0 and "Upgrade complete." in upgraded.stdout, upgraded.stdout + upgraded.stderr
    _wait_boots(device, 2)
    assert (device.boots[-1].slot, device.boots[-1].trial) == (1, True)  # uploaded, marked for test, reset
    listed = _smpmgr(device.path, "image", "state-read")
    assert "slot=1" in listed.stdout and "version='1.1.0'" in listed.stdout, listed.stdout
    confirmed = _smpmgr(device.path, "image", "state-write", "--confirm")
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    with SimFlash(device.flash) as flash:
        assert read_trailer(flash, 1).state is SlotState.CONFIRMED


def test_the_agent_alone_explains_a_missing_flash_file(tmp_path, capsys):
    from firmware_image.agent_shell import main as agent_main

    missing = str(tmp_path / "none.bin")
    assert agent_main(["--pty", "--flash", missing, "--key", "k.pem", "--device-class", DEVICE]) == 2
    err = capsys.readouterr().err
    assert f"pos-fw slots --flash {missing} --create" in err and "Traceback" not in err
