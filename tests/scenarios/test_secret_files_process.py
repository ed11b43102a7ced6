"""``pos-terminal`` as its own process refuses to start on a key file that is not private, naming the setting, and
``--check-config`` names it too (security review items 3 and 4), on the configuration a simulated world writes
(whose key files pass)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.bench.suite import _toml
from sim.runner.world import SimWorld


def _start(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), *flags], input="",
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_pos_terminal_refuses_a_world_readable_tls_key_and_a_secret_below_the_journal(tmp_path: Path) -> None:
    world = SimWorld(workdir=tmp_path / "world")
    try:
        data = world.config()
        config = tmp_path / "terminal.toml"
        config.write_text(_toml(data), encoding="utf-8")
        assert _start(config, "--check-config").returncode == 0  # the world's own key files pass
        os.chmod(data["host"]["client_key"], 0o644)
        done = _start(config)
        assert done.returncode == 1, done.stderr
        assert "cannot start: host.client_key" in done.stderr and "has mode 0644: it must be 0600" in done.stderr
        checked = _start(config, "--check-config")
        assert checked.returncode == 2 and "(acquirer link): host.client_key" in checked.stderr
        os.chmod(data["host"]["client_key"], 0o600)
        below = Path(data["terminal"]["journal"]).parent / "keys" / "device.key"  # one folder below the journal's
        below.parent.mkdir()
        below.write_bytes(os.urandom(32))
        below.chmod(0o600)
        data["security"] = {"device_secret_file": str(below), "device_secret_env": ""}
        config.write_text(_toml(data), encoding="utf-8")
        checked = _start(config, "--check-config")  # the same check list start runs (terminal.wiring.START_CHECKS)
        assert checked.returncode == 2 and "(device secret): security.device_secret_file lies beside" in checked.stderr
    finally:
        world.stop()
