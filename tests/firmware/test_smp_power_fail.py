"""Power cuts at every flash erase and write of an SMP upload (clean and torn): the device always boots a whole
signed image — the running one, or the new one only once it was completely written and verified — the running
slot is never touched, and the upload done again after the reboot completes."""

from __future__ import annotations

import shutil

import pytest
from smp.image_management import ImageUploadWriteRequest, ImageUploadWriteResponse

from firmware_image.boot import decide
from firmware_image.errors import PowerCut
from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image
from firmware_image.slots import set_pending
from firmware_image.smp_image import ImageGroup
from firmware_image.smp_server import SmpServer
from tests.firmware.conftest import DEVICE

CHUNK = 700


def _upload(flash: SimFlash, key, image: bytes) -> None:
    server = SmpServer(ImageGroup(flash, [key], DEVICE, 0), DEVICE)
    off, sequence = 0, 0
    while off < len(image):
        first = {"len": len(image), "image": 0} if off == 0 else {}
        sequence = (sequence + 1) % 256
        answer = server.handle(ImageUploadWriteRequest(off=off, data=image[off:off + CHUNK], sequence=sequence,
                                                       **first).BYTES)
        assert answer is not None
        off = ImageUploadWriteResponse.loads(answer).off


@pytest.fixture
def device(tmp_path, key):
    base = tmp_path / "base.bin"
    v1 = make_image(bytes(range(256)) * 20, version=Version(1), key=key, security_counter=1, device_class=DEVICE)
    v2 = make_image(bytes(range(255, -1, -1)) * 24, version=Version(1, 1), key=key, security_counter=1,
                    device_class=DEVICE)
    old = make_image(b"older build" * 500, version=Version(0, 9), key=key, security_counter=1, device_class=DEVICE)
    with SimFlash.create(base, slot_sectors=12, sector_size=1024) as flash:
        flash.write(flash.geometry.slot_base(1), old + b"\xff" * (-len(old) % 8))
        set_pending(flash, 1, permanent=True)  # the previous build, confirmed: the upload must erase over it
        flash.write(0, v1 + b"\xff" * (-len(v1) % 8))
        set_pending(flash, 0, permanent=True)
        assert decide(flash, [key], DEVICE).slot == 0
    with SimFlash(shutil.copy(base, tmp_path / "count.bin"), sector_size=1024) as flash:
        before = flash.ops
        _upload(flash, key, v2)
        operations = flash.ops - before
    return base, v1, v2, operations


@pytest.mark.parametrize("torn", [False, True], ids=["clean", "torn"])
def test_every_cut_point_of_an_smp_upload(tmp_path, key, device, torn):
    base, v1, v2, operations = device
    assert operations >= 20, operations  # trailer, sector erases, writes, the pending mark
    for cut in range(1, operations + 1):
        work = shutil.copy(base, tmp_path / "work.bin")
        with SimFlash(work, sector_size=1024, cut_at=cut, torn=torn) as flash, pytest.raises(PowerCut):
            _upload(flash, key, v2)
        with SimFlash(work, sector_size=1024) as flash:
            assert flash.read(0, len(v1)) == v1, cut  # the running slot was never written
            booted = decide(flash, [key], DEVICE)
            assert (booted.slot, str(booted.info.version) if booted.info else None) in (
                (0, "1.0.0+0"), (1, "1.1.0+0")), (cut, booted.messages)
            if booted.slot == 1:  # only a complete, verified image may be tried
                assert flash.read(flash.geometry.slot_base(1), len(v2)) == v2
                continue
            _upload(flash, key, v2)  # the technician runs the upload again after the reboot
            again = decide(flash, [key], DEVICE)
            assert (again.slot, again.trial) == (1, True), (cut, again.messages)
