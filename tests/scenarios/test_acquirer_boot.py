"""Boot against a real (simulated) acquirer over mutual TLS: the sign-on happens before the first sale, and a
refused link is named on the home screen in the cashier's languages — never a stack trace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sim.backends.http_tls import LoopbackCa
from sim.runner.world import SimWorld
from terminal.diagnostics import run_checks


def _login(world: SimWorld) -> str:
    world.wait_for("login", 20)
    assert world.terminal is not None
    for key in "01E1111E":
        world.terminal.press("ENTER" if key == "E" else key)
    return world.wait_for("home", 20).text()


def _home_text_with(world: SimWorld, *needles: str, timeout: float = 10.0) -> str:
    """The home screen once it shows every needle (the self-test runs after the login screen, so its warnings
    follow a moment later); the last text seen otherwise."""
    deadline = time.monotonic() + timeout
    text = world.screen.text()
    while time.monotonic() < deadline and not all(n in text for n in needles):
        time.sleep(0.05)
        text = world.screen.text()
    return text


@pytest.mark.scenario
def test_boot_signs_on_before_the_first_sale_and_shutdown_signs_off(tmp_path: Path) -> None:
    world = SimWorld(workdir=tmp_path).start()
    try:
        _login(world)
        deadline = time.monotonic() + 10
        while len(world.acquirer.wire_log) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        text = world.screen.text()
        assert world.acquirer.wire_log[:2] == ["0800", "0810"]
        assert world.host_security is not None and world.host_security.keys_of("SIM00001") is not None
        assert "certificate" not in text and "签到" not in text  # no link warning on a good link
        [host] = [c for c in run_checks(world.services) if c.name == "dev.host"]
        assert host.ok and host.text("en") == "Bank host: OK (signed on)", host.text("en")
    finally:
        world.stop()
    assert world.acquirer.wire_log[-2:] == ["0800", "0810"], "signed off (签退) at shutdown"
    assert world.host_security.keys_of("SIM00001") is None


@pytest.mark.scenario
@pytest.mark.parametrize(("fault", "english", "chinese"), [
    ("expired", "the bank's certificate has expired", "银行证书已过期"),
    ("unknown_ca", "the bank's certificate is not from the trusted CA", "银行证书不受信任"),
    ("wrong_host", "the bank's certificate names another host", "银行证书与主机名不符"),
])
def test_refused_link_is_named_on_the_home_screen(tmp_path: Path, fault: str, english: str, chinese: str) -> None:
    world = SimWorld(workdir=tmp_path)
    assert world.host_security is not None
    world.host_security.tls_fault = fault
    world.start()
    try:
        _login(world)
        text = _home_text_with(world, english, chinese)
        assert english in text and chinese in text, text
        assert "Traceback" not in text and "SSL" not in text
        assert world.acquirer.wire_log == [], "nothing reached the host"
    finally:
        world.stop()


@pytest.mark.scenario
def test_wrong_check_value_at_boot_is_named(tmp_path: Path) -> None:
    world = SimWorld(workdir=tmp_path)
    assert world.host_security is not None
    world.host_security.bad_kcv = True
    world.start()
    try:
        _login(world)
        text = _home_text_with(world, "sign-on keys failed their check value")
        assert "sign-on keys failed their check value" in text and "签到密钥校验值错误" in text, text
    finally:
        world.stop()


@pytest.mark.scenario
def test_terminal_certificate_the_bank_does_not_know_is_named(tmp_path: Path) -> None:
    rogue = LoopbackCa.create(tmp_path / "rogue", "rogue")  # a certificate the acquirer's CA never issued
    cert, key = rogue.issue("terminal", "SIM00001", client=True)
    world = SimWorld(workdir=tmp_path / "world", overrides={"host": {"client_cert": cert, "client_key": key}})
    world.start()
    try:
        _login(world)
        text = _home_text_with(world, "the bank refused this terminal's certificate", "银行拒绝本终端证书")
        assert "the bank refused this terminal's certificate" in text and "银行拒绝本终端证书" in text, text
        assert world.acquirer.wire_log == [] and world.acquirer.tls_refusals
    finally:
        world.stop()
