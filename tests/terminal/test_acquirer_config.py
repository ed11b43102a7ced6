"""``[host]`` security keys: TLS files, TMK file, plaintext only when asked for (and then warned about)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pos_errors import ConfigError
from sim.backends.acquirer_security import AcquirerSecurity
from terminal.config import Settings
from terminal.wiring import _host_security


def _settings(**host: object) -> Settings:
    return Settings.from_dict({"host": host, "terminal": {"profile": "test"}})  # production refuses plaintext


@pytest.fixture
def sec(tmp_path: Path) -> AcquirerSecurity:
    return AcquirerSecurity.create(tmp_path, "T0000001")


def test_full_configuration_gives_tls_and_tmk(sec: AcquirerSecurity) -> None:
    made = _host_security(_settings(ca_file=sec.ca.ca_file, client_cert=sec.client_cert, client_key=sec.client_key,
                                    tmk_file=sec.tmk_file, tmk_kbpk_file=sec.tmk_kbpk_file,
                                    server_name="localhost"))
    assert made["tls"] is not None and made["server_name"] == "localhost" and len(made["tmk"]) == 16


def test_default_is_tls_so_missing_files_are_named() -> None:
    with pytest.raises(ConfigError, match="host.ca_file is required"):
        _host_security(_settings())


def test_missing_tmk_is_named(sec: AcquirerSecurity) -> None:
    with pytest.raises(ConfigError, match="host.tmk_file is not set"):
        _host_security(_settings(ca_file=sec.ca.ca_file, client_cert=sec.client_cert, client_key=sec.client_key))


def test_plaintext_only_when_asked_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="terminal.wiring"):
        made = _host_security(_settings(insecure_plaintext=True, key_scheme="none"))
    assert made["tls"] is None and made["tmk"] is None
    assert any("PLAIN TCP" in r.getMessage() for r in caplog.records)
    assert any("no MAC" in r.getMessage() for r in caplog.records)


def test_unknown_key_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="host.key_scheme"):
        _host_security(_settings(insecure_plaintext=True, key_scheme="dukpt-maybe"))


def test_tmk_file_with_garbage_is_refused(tmp_path: Path, sec: AcquirerSecurity) -> None:
    bad = tmp_path / "installed" / "tmk.hex"  # a folder of its own: not above the KBPK's (sec's key-loading/)
    bad.parent.mkdir()
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="host.tmk_kbpk_file is not set"):
        _host_security(_settings(insecure_plaintext=True, tmk_file=str(bad)))
    with pytest.raises(ConfigError, match="does not unwrap under host.tmk_kbpk_file"):
        _host_security(_settings(insecure_plaintext=True, tmk_file=str(bad), tmk_kbpk_file=sec.tmk_kbpk_file))


def test_clear_tmk_only_for_a_test_profile(tmp_path: Path, sec: AcquirerSecurity) -> None:
    clear = tmp_path / "tmk.hex"
    clear.write_text("0123456789ABCDEFFEDCBA9876543210\n")
    clear.chmod(0o600)
    host = {"ca_file": sec.ca.ca_file, "client_cert": sec.client_cert, "client_key": sec.client_key,
            "tmk_file": str(clear)}
    production = Settings.from_dict({"host": host, "terminal": {"profile": "production"}})
    with pytest.raises(ConfigError, match="holds a clear key: only a terminal with \\[terminal\\] profile"):
        _host_security(production)
    assert _host_security(_settings(**host))["tmk"] == bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.mark.parametrize(("host", "why"), [
    ({"pin_key": "pik", "key_scheme": "none", "insecure_plaintext": True}, "'pik' with host.key_scheme"),
    ({"pin_key": "clear", "insecure_plaintext": True, "key_scheme": "none"}, "not 'clear'"),
])
def test_pin_key_is_dukpt_or_pik_with_master_session(host: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        _host_security(_settings(**host))


def test_dukpt_scheme_needs_no_tmk_and_keeps_dukpt_pins() -> None:
    made = _host_security(_settings(insecure_plaintext=True, key_scheme="dukpt"))
    assert made["tmk"] is None
    with pytest.raises(ConfigError, match="'pik' with host.key_scheme = 'master_session'"):
        _host_security(_settings(insecure_plaintext=True, key_scheme="dukpt", pin_key="pik"))
