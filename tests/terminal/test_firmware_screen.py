"""The Firmware screen's pieces: [firmware] config, who sees the menu item, reading slots, the revert pre-check
(agreeing with ``firmware_image.slots.revert``) and the view models in both languages.

The whole screen through the real world (keys, audit, a changed slot list) is scenarios/firmware_slots.toml."""

import re

import pytest

from firmware_image.errors import FirmwareError, FlashError
from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image
from firmware_image.keys import generate, load_key, public_pem
from firmware_image.slots import SlotState, confirm, mark_tried, revert, set_pending
from flows.messages import CATALOGUE
from pos_errors import ConfigError
from sim.runner.world import DEMO_DEVICE_CLASS, demo_flash
from terminal.config import FirmwareSection, Settings, load_settings
from terminal.firmware_screen import FirmwareKeyError, read_slots, render_firmware, revert_problem
from terminal.machine import State
from terminal.roles import Action, Role, allowed, home_menu, menu_entry
from terminal.views import Session
from terminal.views_office import render

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(("firmware", "message"), [
    ({"flash": 7}, "firmware.flash must be str"),
    ({"device_class": "pos 1"}, "firmware.device_class must be"),
    ({"device_class": ""}, "firmware.device_class must be"),
    ({"flash": " flash.bin"}, "firmware.flash must be a file path"),
    ({"public_key": "k.pub"}, "firmware.public_key is set but firmware.flash is not"),
    ({"slots": 2}, "unknown key firmware.slots"),
])
def test_bad_firmware_config_names_the_key(firmware, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_dict({"firmware": firmware})


def test_firmware_config_is_optional_and_in_the_example():
    assert Settings.from_dict({}).firmware == FirmwareSection("", "", "iotsim-pos-1")
    assert load_settings("config/terminal.example.toml").firmware == FirmwareSection()
    good = Settings.from_dict({"firmware": {"flash": "dev/flash.bin", "public_key": "k.pub", "device_class": "a-1"}})
    assert good.firmware == FirmwareSection("dev/flash.bin", "k.pub", "a-1")


def test_supervisor_and_technician_see_firmware_on_a_free_key_flashing_stays_technical():
    assert {r for r in Role if allowed(r.value, Action.FIRMWARE)} == {Role.SUPERVISOR, Role.TECHNICIAN}
    assert {r for r in Role if allowed(r.value, Action.FLASH)} == {Role.TECHNICIAN}

    def usable(role):
        return {key: action for key, action, _ in home_menu(role) if allowed(role, action)}
    assert usable("supervisor")["7"] is Action.FIRMWARE and usable("supervisor")["6"] is Action.AUDIT
    assert usable("technician")["6"] is Action.FIRMWARE and usable("technician")["7"] is Action.DIAGNOSTICS
    assert Action.FIRMWARE not in usable("cashier").values()
    for role in Role:  # one item per key on every role's menu
        keys = [key for key, _, _ in home_menu(role.value)]
        assert len(keys) == len(set(keys)), role
    # a cashier pressing those keys is refused for the first item on the key
    assert menu_entry("cashier", "6")[1] is Action.AUDIT and menu_entry("cashier", "7")[1] is Action.DIAGNOSTICS
    assert menu_entry("cashier", "5")[1] is Action.USERS and menu_entry("supervisor", "9") is None


def _flash_with(tmp_path, counters, key):
    """Slot 0 confirmed 1.0.0, slot 1 a 1.1.0 on trial, with the given security counters."""
    path = tmp_path / "flash.bin"
    with SimFlash.create(path, slot_sectors=4, sector_size=1024) as flash:
        for slot, (version, counter) in enumerate(zip(("1.0.0", "1.1.0"), counters, strict=True)):
            image = make_image(b"app %d" % slot * 40, version=Version.parse(version), key=key,
                               security_counter=counter, device_class=DEMO_DEVICE_CLASS)
            flash.write(flash.geometry.slot_base(slot), image + b"\xff" * (-len(image) % 8))
            set_pending(flash, slot, permanent=slot == 0)
        mark_tried(flash, 1)
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(key))
    return FirmwareSection(str(path), str(pub), DEMO_DEVICE_CLASS)


def test_demo_flash_has_both_slots_signed_with_its_key(tmp_path):
    flash, pub = demo_flash(tmp_path)
    slots, counter = read_slots(FirmwareSection(str(flash), str(pub), DEMO_DEVICE_CLASS))
    assert [(s.slot, s.version, s.state, s.running, s.problem) for s in slots] == [
        (0, "1.0.0+0", SlotState.CONFIRMED, False, None), (1, "1.1.0+0", SlotState.TRIAL, True, None)]
    assert counter == 0
    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(generate("ed25519")))
    foreign, _ = read_slots(FirmwareSection(str(flash), str(other), DEMO_DEVICE_CLASS))
    assert all(s.problem for s in foreign)  # signed by a key this terminal does not trust: said per slot


def test_revert_precheck_agrees_with_the_slot_api(tmp_path):
    key = generate("ed25519")
    (tmp_path / "a").mkdir()
    same = _flash_with(tmp_path / "a", (1, 1), key)
    assert revert_problem(*read_slots(same)) is None  # 1.1.0 on trial: going back to 1.0.0 is fine
    assert confirm(same.flash) is True
    assert revert_problem(*read_slots(same)) is None  # same counter: still fine after confirming
    assert revert(same.flash) == 0
    assert revert_problem(*read_slots(same)) == "fw.err_no_fallback"
    with pytest.raises(FlashError):
        revert(same.flash)

    (tmp_path / "b").mkdir()
    higher = _flash_with(tmp_path / "b", (1, 2), key)
    keys = [load_key(higher.public_key)]
    assert confirm(higher.flash, keys, higher.device_class) is True  # verified: the counter rises to 2
    assert revert_problem(*read_slots(higher)) == "fw.err_rollback"
    with pytest.raises(FlashError, match="rollback counter"):
        revert(higher.flash)
    assert revert_problem([], 0) == "fw.err_nothing_running"

    (tmp_path / "c").mkdir()
    trusted = _flash_with(tmp_path / "c", (1, 1), key)
    stranger = tmp_path / "c" / "stranger.pub"
    stranger.write_bytes(public_pem(generate("ed25519")))
    untrusted = FirmwareSection(trusted.flash, str(stranger), DEMO_DEVICE_CLASS)
    # slots.revert would go ahead, but the launcher would refuse the image it goes back to: refused before asking
    assert revert_problem(*read_slots(untrusted)) == "fw.err_untrusted"
    assert revert_problem(*read_slots(trusted)) is None


def test_unreadable_key_or_flash_are_errors_the_screen_can_name(tmp_path):
    flash, _ = demo_flash(tmp_path)
    with pytest.raises(FirmwareKeyError):
        read_slots(FirmwareSection(str(flash), str(tmp_path / "missing.pub")))
    (tmp_path / "short.bin").write_bytes(b"\xff" * 100)
    for bad in (tmp_path / "missing.bin", tmp_path / "short.bin"):
        with pytest.raises((FirmwareError, OSError)):
            read_slots(FirmwareSection(str(bad)))


def test_every_slot_state_has_words_and_the_screen_speaks_one_language(tmp_path):
    assert all(f"fw.state.{state.value}" in CATALOGUE for state in SlotState)
    flash, pub = demo_flash(tmp_path)
    slots, counter = read_slots(FirmwareSection(str(flash), str(pub), DEMO_DEVICE_CLASS))
    for lang in ("en", "zh"):
        s = Session(lang=lang)
        s.office.firmware_configured, s.office.firmware, s.office.firmware_counter = True, slots, counter
        text = render_firmware(s).text() + "\n" + render(State.FIRMWARE_REVERT, s).text()
        assert bool(CJK.search(text)) == (lang == "zh"), text
        assert "1.0.0+0" in text and "1.1.0+0" in text
    assert render(State.FIRMWARE, Session(lang="en")).lines == ("No firmware slots configured",)
