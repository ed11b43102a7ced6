"""Trust anchors and the terminal profile (issue 19 item 1): a production terminal trusts live CA keys only and
refuses to boot with a test CA key, a test PIN key or an ``insecure_plaintext`` setting, naming the setting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from emv.capk import LIVE_CAPKS, SHIPPED_CAPKS, TEST_CAPKS
from emv.tvr import TvrBit, bits_set
from pos_errors import ConfigError
from sim.backends.pki import SIM_CAPKS, capk_entries
from terminal.config import Settings, load_settings
from terminal.profile import pin_test_key_id
from terminal.wiring import emv_config
from tests.emv.test_oda_kernel import run

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "terminal.example.toml"
VISA_92 = TEST_CAPKS[(bytes.fromhex("A000000003"), 0x92)]


def test_example_config_is_production_and_trusts_live_keys_only():
    settings = load_settings(EXAMPLE)
    assert settings.terminal.profile == "production" and Settings().terminal.profile == "production"
    capks = emv_config(settings).capks
    assert not any(c.test for c in capks.values())
    # the live keys still valid today (Visa 09, Mastercard 06 until 2033); the expired 01 / 05 are not shipped
    assert set(capks) == {k for k, c in LIVE_CAPKS.items() if not c.expired(dt.date.today())}
    assert (bytes.fromhex("A000000004"), 0x05) not in capks


def test_shipped_table_labels_every_key_with_source_expiry_and_kind():
    live = {(k[0].hex().upper(), k[1]) for k, c in SHIPPED_CAPKS.items() if not c.test}
    assert live == {("A000000003", 0x09), ("A000000004", 0x06)}  # live keys per emv-utils / proxmark3
    assert {k[1] for k, c in SHIPPED_CAPKS.items() if c.test} == {0x92, 0x94, 0x95}
    for capk in SHIPPED_CAPKS.values():
        assert capk.source and capk.label and len(capk.expiry) == 6
    assert LIVE_CAPKS[(bytes.fromhex("A000000004"), 0x06)].expiry == "331231"  # EMVCo: 1984-bit keys end 2033
    assert all(c.test for c in SIM_CAPKS.values())


def test_a_forged_simulator_signed_card_fails_oda_on_a_production_terminal():
    """The review's attack: the simulator CA's private key is public, so a production terminal must not trust it."""
    production = emv_config(Settings.from_dict({}))
    tvr = bytes.fromhex(run("sda-good", production).finished.receipt["tvr"])
    assert "SDA_FAILED" in bits_set(TvrBit, tvr)
    test = emv_config(Settings.from_dict({"terminal": {"profile": "test"}, "emv": {"capks": capk_entries()}}))
    tvr = bytes.fromhex(run("sda-good", test).finished.receipt["tvr"])
    assert "SDA_FAILED" not in bits_set(TvrBit, tvr)


@pytest.mark.parametrize(("data", "named"), [
    ({"emv": {"include_test_capks": True}}, "emv.include_test_capks"),
    ({"emv": {"capks": capk_entries()}}, "emv.capks[0]"),  # the simulator CA, marked test
    ({"emv": {"capks": [{"rid": "A000000003", "index": "92", "modulus": VISA_92.modulus.hex()}]}},
     "emv.capks[0]"),  # a scheme test key not marked as one
    ({"carrier": {"insecure_plaintext": True}}, "carrier.insecure_plaintext"),
    ({"host": {"insecure_plaintext": True, "key_scheme": "none"}}, "host.insecure_plaintext"),
    ({"host": {"key_scheme": "none"}}, "host.key_scheme"),  # no MAC on the acquirer link: test benches only
    ({"terminal": {"profile": "staging"}}, "terminal.profile"),
])
def test_production_refuses_test_settings_naming_them(data, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_dict(data)
    if named != "terminal.profile":  # the same settings are fine on a test bench
        Settings.from_dict({**data, "terminal": {"profile": "test"}})


def test_insecure_plaintext_is_found_by_name_in_any_section():
    from terminal.config import _refuse_test_settings

    with pytest.raises(ConfigError, match="host.insecure_plaintext"):
        _refuse_test_settings({"host": {"insecure_plaintext": True}})
    with pytest.raises(ConfigError, match="wallet.alipay.insecure_plaintext"):
        _refuse_test_settings({"wallet": {"alipay": {"insecure_plaintext": True}}})
    _refuse_test_settings({"host": {"insecure_plaintext": False}, "carrier": {}})


@pytest.mark.parametrize(("ksn", "refused"), [
    ("123456789012345600000007", "1234567890123456"),  # X9.24-3 B.1 test key (the simulator's pad)
    ("FFFF9876543210E00003", "FFFF9876543210E0"),  # X9.24-1 A.4 test key, counter 3
    ("A1B2C3D4E5F6071800000001", None),  # any other key
])
def test_published_test_pin_keys_are_recognised(ksn, refused):
    assert pin_test_key_id("production", bytes.fromhex(ksn)) == refused
    assert pin_test_key_id("test", bytes.fromhex(ksn)) is None


def test_production_boot_refuses_a_pin_pad_with_a_test_key():
    from types import SimpleNamespace

    from drivers.pinpad_codec import KeyStatus
    from sim.runner.world import DEMO_KSN
    from terminal.handlers.boot import _test_pin_key

    pad = SimpleNamespace(key_status=lambda: KeyStatus("aes", DEMO_KSN, 1000))
    production = SimpleNamespace(pinpad=pad, settings=Settings.from_dict({}))
    assert _test_pin_key(production) == "1234567890123456"
    bench = SimpleNamespace(pinpad=pad, settings=Settings.from_dict({"terminal": {"profile": "test"}}))
    assert _test_pin_key(bench) is None


@pytest.mark.scenario
def test_a_production_terminal_with_the_simulators_test_pin_key_stays_out_of_service(tmp_path):
    """Through the real PIN pad pty: the simulator's pad holds the X9.24-3 test key, so a production terminal
    (live CA keys only, a device secret file) says so at boot and never reaches the login screen."""
    from sim.runner.scenario import Scenario, run_scenario

    secret = tmp_path / "secret" / "device.key"
    secret.parent.mkdir(mode=0o700)
    secret.write_bytes(bytes(range(32)))
    secret.chmod(0o600)
    world = {"terminal": {"profile": "production"}, "emv": {"capks": []},
             "security": {"device_secret_env": "", "device_secret_file": str(secret)}}
    steps = ({"wait": "out_of_service"}, {"expect_text": "PIN pad holds a TEST key (1234567890123456)"},
             {"expect_no_text": "Log in"})
    result = run_scenario(Scenario("production with a test PIN key", str(tmp_path / "x.toml"), world, steps))
    assert result.passed, result.message


def test_check_config_shows_exception_file_pans_masked(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "t.toml"
    config.write_text('[emv]\nexception_file = ["6212345678901232", "6212345678901240-01"]\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "(device secret)" in done.stderr, done.stderr  # no secret file: would not start
    assert "6212345678901232" not in done.stdout + done.stderr and "621234******1232" in done.stdout
    assert "6212345678901240" not in done.stdout and "621234******1240" in done.stdout


def test_check_config_refuses_an_unmaced_acquirer_link_outside_the_test_profile(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "t.toml"
    config.write_text('[host]\nkey_scheme = "none"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert 'host.key_scheme = "none"' in done.stderr and 'profile = "production" refuses it' in done.stderr
    config.write_text('[terminal]\nprofile = "test"\n[host]\nkey_scheme = "none"\ninsecure_plaintext = true\n',
                      encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert "refuses it" not in done.stderr and "acquirer messages carry no MAC" in done.stderr  # only a warning
    assert done.returncode == 2 and "(device secret)" in done.stderr  # this bare file lacks what start needs
    assert "'key_scheme': 'none'" in done.stdout
