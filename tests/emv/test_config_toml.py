"""EMV configuration from the terminal's TOML: every key reaches the kernel; a bad one is named at boot."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from emv.capk import LIVE_CAPKS, TEST_CAPKS
from emv.config import terminal_config
from pos_errors import ConfigError
from terminal.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "terminal.example.toml"
IDS = {"terminal_id": "T0000001", "merchant_id": "898440154110001", "ifd_serial": "T0000001"}
VISA_92 = TEST_CAPKS[(bytes.fromhex("A000000003"), 0x92)]


def test_the_example_config_loads_and_builds_the_kernel_config():
    settings = load_settings(EXAMPLE)
    from terminal.wiring import emv_config
    config = emv_config(settings)
    assert config.aids[0].app_versions == (bytes.fromhex("0030"), bytes.fromhex("0020"))
    assert config.capabilities == bytes.fromhex("E0F8C8") and settings.terminal.profile == "production"
    assert (VISA_92.rid, 0x92) not in config.capks and all(not c.test for c in config.capks.values())
    assert set(config.capks) == {k for k, c in LIVE_CAPKS.items() if not c.expired(dt.date.today())}


def test_every_key_reaches_the_kernel():
    text = f"""
terminal_type = "22"
capabilities = "E0B0C8"
country_code = "0344"
currency_code = "0344"
include_test_capks = false
revoked = ["A000000003/92/000001"]
exception_file = ["6212345678901232"]

[[aids]]
aid = "A0000000031010"
label = "Visa"
tac_online = "FFFFFFFFFF"
floor_limit_minor = 5000
threshold_minor = 1000
target_percent = 10
max_target_percent = 50
default_ddol = "9F37049F0206"
app_versions = ["0096"]
partial_selection = false

[[capks]]
rid = "A000000003"
index = "92"
modulus = "{VISA_92.modulus.hex()}"
checksum = "429C954A3859CEF91295F663C963E582ED6EB253"
"""
    config = terminal_config(tomllib.loads(text), **IDS, profile="test")
    aid = config.aids[0]
    assert (aid.tac_online, aid.floor_limit_minor, aid.threshold_minor, aid.target_percent,
            aid.max_target_percent, aid.default_ddol, aid.app_versions, aid.partial_selection) == (
        b"\xff" * 5, 5000, 1000, 10, 50, bytes.fromhex("9F37049F0206"), (bytes.fromhex("0096"),), False)
    assert list(config.capks) == [*LIVE_CAPKS, (VISA_92.rid, 0x92)]
    assert config.revoked == {(VISA_92.rid, 0x92, b"\x00\x00\x01")}
    assert "6212345678901232" in config.exception_file and len(config.exception_file) == 1
    assert "6212345678901232" not in repr(config) and config.country_code == b"\x03\x44"


@pytest.mark.parametrize(("emv", "named"), [
    ({"capabilities": "E0F8"}, "emv.capabilities"),
    ({"aids": [{"aid": "A0000000031010", "tac_online": "DC40"}]}, "emv.aids[0].tac_online"),
    ({"aids": [{"aid": "A0000000031010", "tac_denial": "zz"}]}, "emv.aids[0].tac_denial"),
    ({"aids": [{"label": "no aid"}]}, "emv.aids[0].aid"),
    ({"aids": [{"aid": "A0000000031010", "colour": "red"}]}, "emv.aids[0]: unknown key colour"),
    ({"aids": [{"aid": "A0000000031010", "target_percent": 50, "max_target_percent": 10,
                "floor_limit_minor": 100}]}, "target_percent"),
    ({"aids": []}, "emv.aids"),
    ({"capks": [{"rid": "A000000003", "index": "92", "modulus": "99" * 176, "checksum": "00" * 20}]},
     "emv.capks[0]: CAPK A000000003/92: the checksum"),
    ({"revoked": ["A000000003-92"]}, "emv.revoked[0]"),
    ({"terminal_type": "XX"}, "emv.terminal_type"),
])
def test_bad_emv_config_is_refused_naming_the_key(emv, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_dict({"emv": emv})
