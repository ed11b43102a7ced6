"""``pos-sim --serve``: the acquirer is mutual TLS with printed paths; plain TCP gets no ISO 8583 answer, a handshake
without a client certificate is refused, and the printed certificate, key and TMK sign on and sell."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.host import HostClient
from drivers.host import messages as m
from drivers.host.header import FrameHeader
from drivers.host.signon import build_sign_on
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from terminal.config import load_settings


def _read_all(conn: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := conn.recv(4096):
            received += chunk
    except OSError:
        pass
    return received


@pytest.mark.scenario
def test_serve_acquirer_is_mutual_tls_only(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "--serve", "--workdir", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert proc.stdout is not None and proc.stdin is not None
        acq = json.loads(proc.stdout.readline())["endpoints"]["acquirer"]
        assert acq["scheme"] == "tls" and acq["key_scheme"] == "master_session"
        for key in ("ca_file", "client_cert", "client_key", "tmk_file", "tmk_kbpk_file"):
            assert os.path.isfile(acq[key]), key
        for key in ("client_key", "tmk_file", "tmk_kbpk_file"):
            assert stat.S_IMODE(os.stat(acq[key]).st_mode) == 0o600, key
        address = (acq["host"], acq["port"])
        sign_on = m.frame(m.pack(build_sign_on(1, transmitted_at=dt.datetime.now(dt.UTC), terminal_id="SIM00001")))

        with socket.create_connection(address, timeout=3) as plain:  # plain TCP: no ISO 8583 answer
            plain.sendall(sign_on)
            assert b"0810" not in _read_all(plain)

        anonymous = ssl.create_default_context(cafile=acq["ca_file"])  # TLS without a client certificate
        with socket.create_connection(address, timeout=3) as raw, \
                anonymous.wrap_socket(raw, server_hostname=acq["server_name"]) as conn:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                conn.sendall(sign_on)
                if not conn.recv(4096):
                    raise ConnectionError("closed without an answer")

        settings = load_settings(str(tmp_path / "terminal.toml")).host  # the printed paths are the config's
        assert (settings.ca_file, settings.client_cert, settings.tmk_file) == (acq["ca_file"], acq["client_cert"],
                                                                               acq["tmk_file"])
        client = HostClient(acq["host"], acq["port"], terminal_id="SIM00001", merchant_id="898440154110001",
                            tls=client_context(acq["ca_file"], acq["client_cert"], acq["client_key"]),
                            server_name=acq["server_name"], tmk=load_tmk(acq["tmk_file"], acq["tmk_kbpk_file"]),
                            header=FrameHeader.from_config(acq["tpdu"], acq["app_header"]))
        client.sign_on()
        assert client.signed_on and client.echo()
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
