"""A/B slots, the launcher's test-boot / confirm / revert, the rollback counter, and the supervisor-menu API."""

from __future__ import annotations

import pytest

from firmware_image.agent import AgentCore
from firmware_image.errors import DeviceRefused, FlashError
from firmware_image.flash import SimFlash
from firmware_image.flasher import Flasher
from firmware_image.link import LoopLink
from firmware_image.slots import (
    SlotState,
    confirm,
    describe,
    raise_counter,
    read_counter,
    revert,
)

from .conftest import DEVICE, app_payload, boot, flash_in_memory, new_flash, signed


@pytest.fixture
def device(tmp_path, key):
    """A flash with image 1.0.0 (counter 1) confirmed in slot 0."""
    path = tmp_path / "flash.bin"
    flash = new_flash(path)
    flash_in_memory(flash, key, signed(key, app_payload(5000, 1), "1.0.0", 1))
    assert boot(flash, key).trial
    flash.close()
    assert confirm(path)
    return path


def _states(path, key):
    return [(s.state, s.version, s.running) for s in describe(path, [key], DEVICE)]


def test_new_image_test_boots_once_then_confirms(device, key):
    with SimFlash(device, sector_size=1024) as flash:
        assert boot(flash, key).slot == 0
        report = flash_in_memory(flash, key, signed(key, app_payload(5000, 2), "1.1.0", 2), running=0)
        assert report.target_slot == 1
    assert _states(device, key)[1][:2] == (SlotState.PENDING, "1.1.0+0")
    with SimFlash(device, sector_size=1024) as flash:
        first = boot(flash, key)
    assert (first.slot, first.trial) == (1, True)
    assert _states(device, key) == [(SlotState.CONFIRMED, "1.0.0+0", False), (SlotState.TRIAL, "1.1.0+0", True)]
    with SimFlash(device, sector_size=1024) as flash:
        assert read_counter(flash) == 1  # not raised before confirmation
    assert confirm(device)
    with SimFlash(device, sector_size=1024) as flash:
        assert read_counter(flash) == 1  # confirmed without keys: the launcher raises it from the verified image
        again = boot(flash, key)
        assert read_counter(flash) == 2
    assert (again.slot, again.trial) == (1, False)
    assert not confirm(device)  # nothing on trial any more


def test_unconfirmed_trial_reverts_at_next_boot(device, key):
    with SimFlash(device, sector_size=1024) as flash:
        flash_in_memory(flash, key, signed(key, app_payload(5000, 3), "2.0.0", 2), running=0)
        assert boot(flash, key).trial
        second = boot(flash, key)  # the trial crashed: no confirm
        assert (second.slot, second.trial) == (0, False)
        assert any("reverted" in m for m in second.messages)
        assert read_counter(flash) == 1
        assert boot(flash, key).slot == 0  # and it stays reverted


def test_supervisor_revert_goes_back_and_refuses_below_the_counter(device, key):
    with SimFlash(device, sector_size=1024) as flash:
        flash_in_memory(flash, key, signed(key, app_payload(5000, 4), "1.2.0", 1), running=0)
        boot(flash, key)
    confirm(device, [key], DEVICE)
    assert revert(device) == 0
    with SimFlash(device, sector_size=1024) as flash:
        assert boot(flash, key).slot == 0
        flash_in_memory(flash, key, signed(key, app_payload(5000, 5), "1.3.0", 3), running=0)
        boot(flash, key)
    confirm(device, [key], DEVICE)  # verified: counter is now 3; slot 0 holds counter 1
    with pytest.raises(FlashError, match="rollback counter"):
        revert(device)


def test_agent_refuses_downgrade_wrong_class_and_wrong_key(device, key, other_key):
    with SimFlash(device, sector_size=1024) as flash:
        flash_in_memory(flash, key, signed(key, app_payload(5000, 6), "1.1.0", 5), running=0)
        boot(flash, key)
        from firmware_image.slots import confirm_flash
        confirm_flash(flash)
        boot(flash, key)
        cases = {"downgrade": signed(key, app_payload(4000, 7), "1.2.0", 4),
                 "wrong-device-class": signed(key, app_payload(4000, 7), "1.2.0", 5, device_class="kiosk"),
                 "wrong-key": signed(other_key, app_payload(4000, 7), "1.2.0", 5)}
        for reason, image in cases.items():
            with pytest.raises(DeviceRefused, match=reason):
                Flasher(LoopLink(AgentCore(flash, [key], DEVICE, 1))).flash(image)
            assert boot(flash, key).slot == 1  # the running image is untouched


def test_counter_survives_a_full_sector_and_never_goes_down(tmp_path):
    flash = new_flash(tmp_path / "f.bin", slot_sectors=2, sector_size=1024)
    for value in range(1, 300):  # 128 records per 1 KiB sector: wraps into the other sector twice
        raise_counter(flash, value)
        assert read_counter(flash) == value
    raise_counter(flash, 5)
    assert read_counter(flash) == 299


def test_describe_on_an_empty_device(tmp_path, key):
    new_flash(tmp_path / "f.bin").close()
    assert [(s.slot, s.state, s.running) for s in describe(tmp_path / "f.bin", [key], DEVICE)] == [
        (0, SlotState.EMPTY, False), (1, SlotState.EMPTY, False)]
    with SimFlash(tmp_path / "f.bin", sector_size=1024) as flash:
        decision = boot(flash, key)
    assert not decision.bootable and "pos-fw flash" in decision.messages[-1]


def test_pos_fw_test_marks_the_idle_slot_for_one_more_trial(device, key, capsys):
    from firmware_image.cli import main
    with SimFlash(device, sector_size=1024) as flash:
        flash_in_memory(flash, key, signed(key, app_payload(5000, 8), "1.1.0", 1), running=0)
        boot(flash, key)
        boot(flash, key)  # not confirmed: reverted, slot 1 is idle
    assert _states(device, key)[1][0] is SlotState.IDLE
    assert main(["test", "--flash", str(device)]) == 0
    assert "slot 1 will be test-booted" in capsys.readouterr().out
    with SimFlash(device, sector_size=1024) as flash:
        decision = boot(flash, key)
    assert (decision.slot, decision.trial) == (1, True)
