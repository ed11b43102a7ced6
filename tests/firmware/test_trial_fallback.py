"""While a new image is on trial (test-booted, not confirmed) the slot holding the confirmed image the device would
fall back to is never an upload target (MCUboot / Zephyr img_mgmt: a slot the next boot may revert to is "in use").

Through the real parts: the simulated device (boot launcher + update agent behind one pty that survives resets),
``pos-fw flash`` / ``pos-fw test`` / ``pos-fw confirm`` over that pty, and ``smpclient`` for the SMP path. Each
refusal leaves both slots byte for byte as they were; after a confirm the same upload goes through.
"""

from __future__ import annotations

import asyncio
import io
import threading
import zipfile

import pytest
from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error
from smpclient.requests.image_management import ImageStatesWrite
from smpclient.transport.serial import SMPSerialTransport

from firmware_image.agent import AgentCore
from firmware_image.cli import main
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.image import Version, make_image, parse_image
from firmware_image.link import LoopLink
from firmware_image.protocol import FINALIZE, FLAG_COPY, VERIFY, WRITE, Kind, SlipDecoder, encode_frame
from firmware_image.slots import SlotState, read_trailer, set_pending
from sim.devices.update_device import UpdateDevice

from .conftest import DEVICE, boot, new_flash

pytestmark = pytest.mark.scenario


def _app(tag: str) -> bytes:
    """A tiny application that starts and exits without confirming itself: its trial stays open. The same bytes
    whenever it is built (fixed zip times), so a test can name the fixture's image by its hash."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(zipfile.ZipInfo("__main__.py", (2026, 1, 1, 0, 0, 0)), f"print('{tag} up')\n")
        z.writestr(zipfile.ZipInfo("pad.bin", (2026, 1, 1, 0, 0, 0)), tag.encode() * 3000)
    return buffer.getvalue()


def _image(key, version: str) -> bytes:
    return make_image(_app(version), version=Version.parse(version), key=key, security_counter=1,
                      device_class=DEVICE)


def _slots(path) -> tuple[bytes, bytes]:
    with SimFlash(path) as flash:
        g = flash.geometry
        return flash.read(g.slot_base(0), g.slot_size), flash.read(g.slot_base(1), g.slot_size)


def _wait_boots(device: UpdateDevice, count: int) -> None:
    for _ in range(600):
        if len(device.boots) >= count:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"device booted {len(device.boots)} times")


@pytest.fixture
def on_trial(tmp_path, key):
    """A device whose slot 0 holds confirmed 1.0.0 and whose slot 1 runs 1.1.0 on trial (test-booted)."""
    path = tmp_path / "flash.bin"
    with SimFlash.create(path, slot_sectors=16, sector_size=4096) as flash:
        for slot, blob in ((0, _image(key, "1.0.0")), (1, _image(key, "1.1.0"))):
            flash.write(flash.geometry.slot_base(slot), blob + b"\xff" * (-len(blob) % 8))
            set_pending(flash, slot, permanent=slot == 0)
    device = UpdateDevice(path, [key], DEVICE, app_env={}).start()
    _wait_boots(device, 1)
    assert (device.boots[-1].slot, device.boots[-1].trial) == (1, True)
    yield device
    device.stop()


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pos_fw_flash_during_a_trial_is_refused_and_the_fallback_is_untouched(on_trial, key, tmp_path, capsys):
    before = _slots(on_trial.flash)
    new = tmp_path / "v1.2.img"
    new.write_bytes(_image(key, "1.2.0"))
    code, out, err = _run(capsys, "flash", "--port", on_trial.path, str(new))
    assert code == 1, out + err
    assert "slot 1 runs 1.1.0+0 on trial" in err and "confirm or revert the image on trial first" in err
    assert f"pos-fw confirm --port {on_trial.path}" in err and f"pos-fw revert --port {on_trial.path}" in err
    assert _slots(on_trial.flash) == before  # nothing written: not a sector, not a trailer

    code, out, err = _run(capsys, "test", "--port", on_trial.path)  # SMP: test the fallback slot again
    assert code == 1 and "confirm or revert the image on trial first" in err, out + err
    assert _slots(on_trial.flash) == before

    code, out, err = _run(capsys, "confirm", "--port", on_trial.path)
    assert code == 0 and "confirmed slot 1 (1.1.0)" in out, err
    code, out, err = _run(capsys, "flash", "--no-reset", "--port", on_trial.path, str(new))
    assert code == 0 and "slot 0: 1.2.0+0 pending" in out, err


def test_smp_upload_during_a_trial_is_refused_and_the_fallback_is_untouched(on_trial, key):
    before = _slots(on_trial.flash)
    fallback_hash = parse_image(_image(key, "1.0.0")).sha256

    async def run() -> None:
        client = SMPClient(SMPSerialTransport(), on_trial.path, timeout_s=10)
        await client.connect()
        with pytest.raises(SMPUploadError) as refused:
            _ = [off async for off in client.upload(_image(key, "1.2.0"))]
        assert refused.value.args[0].err.rc == IMG_MGMT_ERR.IMAGE_ALREADY_PENDING
        answer = await client.request(ImageStatesWrite(hash=fallback_hash))  # test (not confirm) the fallback
        assert error(answer) and answer.err.rc == IMG_MGMT_ERR.IMAGE_ALREADY_PENDING
        await client.disconnect()

    asyncio.run(run())
    assert _slots(on_trial.flash) == before


def test_local_pos_fw_test_never_demotes_the_fallback(tmp_path, key, capsys):
    path = tmp_path / "flash.bin"
    with SimFlash.create(path, slot_sectors=16, sector_size=4096) as flash:
        for slot, blob in ((0, _image(key, "1.0.0")), (1, _image(key, "1.1.0"))):
            flash.write(flash.geometry.slot_base(slot), blob + b"\xff" * (-len(blob) % 8))
            set_pending(flash, slot, permanent=slot == 0)
        assert boot(flash, key).trial
    before = _slots(path)
    code, out, err = _run(capsys, "test", "--flash", str(path))
    assert code == 1 and "confirm or revert the image on trial first" in err, out + err
    assert _slots(path) == before


def _answers(core: AgentCore, *frames: tuple[Kind, bytes]) -> list[tuple[Kind, bytes]]:
    core.receive_data(b"".join(encode_frame(k, p) for k, p in frames))
    decoder = SlipDecoder()
    decoder.feed(core.data_to_send())
    out = []
    while (frame := decoder.next_frame()) is not None:
        out.append((frame.kind, frame.payload))
    return out


def test_every_frame_that_would_change_the_fallback_is_refused_in_the_agent_core(tmp_path, key):
    """Frame by frame, so a host that skips HASHES (or a forged session) cannot reach the fallback either."""
    flash = new_flash(tmp_path / "f.bin", slot_sectors=16, sector_size=4096)
    v1 = _image(key, "1.0.0")
    Flasher(LoopLink(AgentCore(flash, [key], DEVICE))).flash(v1, permanent=True)
    assert boot(flash, key).slot == 0
    Flasher(LoopLink(AgentCore(flash, [key], DEVICE, running=0))).flash(_image(key, "1.1.0"))
    assert boot(flash, key).trial and read_trailer(flash, 1).state is SlotState.TRIAL
    g = flash.geometry
    before = flash.read(g.slot_base(0), g.slot_size), flash.read(g.slot_base(1), g.slot_size)
    core = AgentCore(flash, [key], DEVICE)  # it finds slot 1 running on trial: slot 0 would be its target
    assert core.running == 1 and core.target == 0
    answers = _answers(
        core,
        (Kind.HASHES, VERIFY.build(dict(length=4096))),
        (Kind.WRITE, WRITE.build(dict(offset=0, flags=0, raw_len=4096, data=b"\x00" * 4096))),
        (Kind.WRITE, WRITE.build(dict(offset=0, flags=FLAG_COPY, raw_len=4096, data=b""))),
        (Kind.FINALIZE, FINALIZE.build(dict(length=len(v1), permanent=1))),
    )
    assert [k for k, _ in answers] == [Kind.ERROR] * 4
    assert all(p[0] == 5 and b"confirm or revert the image on trial first" in p for _, p in answers)
    assert (flash.read(g.slot_base(0), g.slot_size), flash.read(g.slot_base(1), g.slot_size)) == before
    assert [k for k, _ in _answers(core, (Kind.SYNC, b"POSFW1"), (Kind.SLOTS, b""))] == [Kind.HELLO,
                                                                                           Kind.SLOT_LIST]
    flash.close()
