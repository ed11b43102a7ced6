"""``pos-terminal`` as its own process: real config file, console keypad and display, simulated world outside."""

import subprocess
import sys
from pathlib import Path

from flows.ports import mask_pan
from sim.bench.suite import _Terminal, _toml, _topup
from sim.devices.cards import CATALOGUE
from sim.runner.world import SimWorld

ROOT = Path(__file__).resolve().parents[2]


def _check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=60, check=False)


def test_check_config_and_bad_config_messages(tmp_path):
    # the example names files of a real installation (/etc/pos/...): valid, but this machine could not start it
    example = _check_config(ROOT / "config/terminal.example.toml")
    assert example.returncode == 2 and "[host]" in example.stdout and "users: 01" in example.stdout
    assert "configuration error (device secret): security.device_secret_file /etc/pos/device-secret" in example.stderr
    assert "configuration error (acquirer link): host.ca_file: file /etc/pos/acquirer-ca.pem not found" \
        in example.stderr
    world = SimWorld(workdir=tmp_path)  # every file it names exists: the start checks pass, nothing is opened
    try:
        config = tmp_path / "terminal.toml"
        config.write_text(_toml(world.config()), encoding="utf-8")
        ok = _check_config(config)
    finally:
        world.stop()
    assert ok.returncode == 0, ok.stderr
    # the shipped live keys are current (Visa 09, Mastercard 06: 331231); only the simulator's retired E1 is listed
    assert ("CA keys past their expiry, not trusted: "
            "A000000333/E1 (241231), A000000003/E1 (241231), A000000004/E1 (241231)") in ok.stdout
    assert ok.stdout.splitlines()[-1] == ("start checks: all 8 passed (wallet channels, device secret, carrier, "
                                          "acquirer link, scanner, wallet platform, wallet merchant APIs, emv)")
    assert not (tmp_path / "journal.db").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('[host]\nport = "8583"\n')
    run = subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(bad)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 2 and "host.port must be int" in run.stderr


def test_a_top_up_through_the_pos_terminal_process(tmp_path):
    world = SimWorld(workdir=tmp_path)
    config = tmp_path / "terminal.toml"
    config.write_text(_toml(world.config()), encoding="utf-8")
    term = _Terminal(config)
    try:
        term.wait("login")
        term.keys("01 ENTER 1111 ENTER")
        term.wait("home")
        world.insert_card("visa-credit")
        world.pinpad.auto_pin = "1234"
        world.reader.reinsert_on_beep = True  # in before the sale: refused, so the customer re-inserts it
        _topup(term)
    finally:
        term.stop()
        world.stop()
    assert len(world.carrier.ledger) == 1 and world.carrier.ledger[0].amount_minor == 3000
    assert [e.response_code for e in world.acquirer.ledger] == ["00"]
    receipt = "\n".join(world.printer.receipts[-1])
    assert mask_pan(CATALOGUE["visa-credit"].pan) in receipt and "TOP-UP APPLIED" in receipt
