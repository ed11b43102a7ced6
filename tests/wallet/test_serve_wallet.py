"""``pos-sim --serve``: the wallet platform is HTTPS with a printed CA, refuses an unsigned request and accepts a
signed one made with the printed credentials (what a technician points a real terminal at)."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from drivers.carrier import read_app_secret
from drivers.wallet import WalletClient
from terminal.config import load_settings


@pytest.mark.scenario
def test_serve_prints_an_https_wallet_platform_that_refuses_unsigned_requests(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None and proc.stdin is not None
        wallet = json.loads(proc.stdout.readline())["endpoints"]["wallet"]
        url = urlsplit(wallet["url"])
        assert url.scheme == "https" and os.path.exists(wallet["ca_file"])
        assert stat.S_IMODE(os.stat(wallet["app_secret_file"]).st_mode) == 0o600
        conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=5,
                                           context=ssl.create_default_context(cafile=wallet["ca_file"]))
        conn.request("POST", "/v1/orders/X1/cancel", body=b"{}", headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        assert (answer.status, json.loads(answer.read())["error"]) == (401, "unsigned")
        conn.close()
        settings = load_settings(str(tmp_path / "terminal.toml")).wallet
        assert (settings.url, settings.ca_file, settings.app_id, settings.insecure_plaintext) == (
            wallet["url"], wallet["ca_file"], wallet["app_id"], False)
        client = WalletClient(settings.url, app_id=wallet["app_id"], ca_file=wallet["ca_file"],
                              app_secret=read_app_secret(wallet["app_secret_file"], "wallet.app_secret_file"))
        assert client.query("X1").status == "not_found"  # the unsigned cancel did not close the id
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
