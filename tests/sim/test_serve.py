"""``pos-sim --serve``: a real process, its JSON, its config file, the customer's commands on stdin."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.serve import to_toml
from terminal.config import Settings, load_settings


def test_to_toml_reads_back_as_the_same_config() -> None:
    config = {"terminal": {"id": "T1", "name": 'a "quoted" 名字', "rate": 1.5, "on": True, "n": 3},
              "users": [{"id": "01", "role": "cashier"}, {"id": "90", "role": "supervisor"}]}
    assert tomllib.loads(to_toml(config)) == config


@pytest.mark.scenario
def test_serve_prints_endpoints_writes_a_loadable_config_and_obeys_stdin(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None and proc.stdin is not None
        info = json.loads(proc.stdout.readline())
        config_path = Path(info["config"])
        assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
        settings: Settings = load_settings(str(config_path))
        acquirer = info["endpoints"]["acquirer"]
        assert (settings.host.address, settings.host.port) == (acquirer["host"], acquirer["port"])
        with socket.create_connection((acquirer["host"], acquirer["port"]), timeout=2):
            pass
        for name in ("reader", "pinpad", "printer", "scanner"):
            assert os.path.exists(info["devices"][name]), name
        assert {u["role"] for u in info["users"]} == {"cashier", "supervisor", "technician"}
        assert info["idle_timeout_s"] == {"acquirer": 60.0, "carrier": 30.0, "wallet": 30.0, "wechatpay": 30.0,
                                          "alipay": 30.0}
        proc.stdin.write("insert no-such-card\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("cannot insert")
        assert "quickpass-debit" in info["tap_cards"]
        proc.stdin.write("tap no-such-card\ntap quickpass-debit\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("cannot tap")
        assert proc.stdout.readline().strip() == "ok"
        proc.stdin.write("insert unionpay-debit\nreceipt\nquit\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok"
        assert proc.stdout.readline().strip() == "no receipt yet"
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.scenario
def test_serve_stops_cleanly_when_its_terminal_window_closes(tmp_path: Path) -> None:
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None
        reader = json.loads(proc.stdout.readline())["devices"]["reader"]
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=10) == 0  # stopped by its own handler (the default would be -SIGHUP)
        assert not os.path.exists(reader)  # the devices' pty links were taken down
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
