"""``pos-sim --serve``: the carrier is HTTPS with a printed CA, refuses an unsigned request and accepts a signed one
made with the printed credentials (what a technician points a real terminal at)."""

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

from drivers.carrier import CarrierClient, read_app_secret
from terminal.config import load_settings


@pytest.mark.scenario
def test_serve_prints_an_https_carrier_that_refuses_unsigned_requests(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None and proc.stdin is not None
        carrier = json.loads(proc.stdout.readline())["endpoints"]["carrier"]
        url = urlsplit(carrier["url"])
        assert url.scheme == "https" and os.path.exists(carrier["ca_file"])
        assert stat.S_IMODE(os.stat(carrier["app_secret_file"]).st_mode) == 0o600
        conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=5,
                                           context=ssl.create_default_context(cafile=carrier["ca_file"]))
        conn.request("GET", "/v1/sims/89860424000000000017")
        answer = conn.getresponse()
        assert (answer.status, json.loads(answer.read())["error"]) == (401, "unsigned")
        conn.close()
        settings = load_settings(str(tmp_path / "terminal.toml")).carrier
        assert (settings.url, settings.ca_file, settings.insecure_plaintext) == (carrier["url"], carrier["ca_file"],
                                                                                 False)
        client = CarrierClient(settings.url, app_id=carrier["app_id"],
                               app_secret=read_app_secret(carrier["app_secret_file"]), ca_file=carrier["ca_file"])
        assert client.lookup_sim("89860424000000000017") is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
