"""``pos-fw`` fit for the field: pyserial URLs (socket://, spy://), slot commands over the device's port, confirm
of a never-booted image refused, --version everywhere, --json, keys 0600 and encrypted (imgtool reads them),
imgtool's getpub encodings, plain progress lines off a terminal, bad numbers refused with a message."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import select
import socket
import stat
import threading
import zipfile

import imgtool.keys
import pytest
from cryptography.hazmat.primitives import serialization
from serial import rfc2217

from emv.cli import main as emv_main
from firmware_image.agent_shell import maintenance_port, serve
from firmware_image.cli import main
from firmware_image.flash import SimFlash
from firmware_image.image import Version, make_image
from firmware_image.keys import PASSWORD_ENV, generate, load_key, public_der, save_private
from firmware_image.slots import SlotState, read_trailer, set_pending
from sim.cli import main as sim_main
from sim.devices.update_device import UpdateDevice
from terminal.cli import main as terminal_main
from tests.firmware.conftest import DEVICE


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _app() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("__main__.py", "print('up')\n")
        z.writestr("pad.bin", os.urandom(30000))
    return buffer.getvalue()


@pytest.fixture
def keyfile(tmp_path, capsys):
    path = tmp_path / "k.pem"
    assert _run(capsys, "keygen", "-k", str(path))[0] == 0
    return path


def _flash_file(tmp_path, key, *, pending: bytes | None = None):
    path = tmp_path / "flash.bin"
    v1 = make_image(_app(), version=Version(1), key=key, security_counter=1, device_class=DEVICE)
    with SimFlash.create(path, slot_sectors=16) as flash:
        for slot, blob in ((0, v1), (1, pending)):
            if blob is not None:
                flash.write(flash.geometry.slot_base(slot), blob + b"\xff" * (-len(blob) % 8))
                set_pending(flash, slot, permanent=slot == 0)
    return path


class _SocketLink:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.conn], [], [], timeout)
        return self.conn.recv(65536) if ready else b""

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)

    def set_baud(self, baud: int) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


def test_flash_and_slots_through_a_socket_url_with_plain_progress_lines(tmp_path, capsys, keyfile):
    key = load_key(keyfile)
    flash_path = _flash_file(tmp_path, key)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def device() -> None:  # a terminal whose maintenance port is behind a serial-to-TCP bridge
        for _ in range(2):
            conn, _ = server.accept()
            with SimFlash(flash_path) as flash:
                serve(_SocketLink(conn), maintenance_port(flash, [key], DEVICE), idle_timeout=1.0)
            conn.close()

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    image = tmp_path / "v2.img"
    image.write_bytes(make_image(_app(), version=Version(1, 1), key=key, security_counter=1, device_class=DEVICE))
    code, out, err = _run(capsys, "flash", "--port", f"socket://127.0.0.1:{port}", "--no-reset", str(image))
    assert code == 0, err
    assert "slot 1: 1.1.0+0 pending" in out
    assert "flash: 100%" in err and "\r" not in err  # not a terminal: plain lines, no bar
    code, out, err = _run(capsys, "slots", "--json", "--port", f"socket://127.0.0.1:{port}")
    assert code == 0, err
    assert [(r["slot"], r["state"]) for r in json.loads(out)] == [(0, "confirmed"), (1, "pending")]
    thread.join(timeout=10)
    server.close()


class _ModemLines:
    """The serial side pyserial's RFC 2217 server (``PortManager``) manages: settings kept, lines idle."""

    baudrate, bytesize, parity, stopbits = 115200, 8, "N", 1
    rtscts = xonxoff = break_condition = cts = dsr = ri = cd = False
    dtr = rts = True

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _Rfc2217Link(_SocketLink):
    """A terminal behind an RFC 2217 (telnet COM-port) server: pyserial's own server side filters the stream."""

    def __init__(self, conn: socket.socket) -> None:
        super().__init__(conn)
        telnet = type("Telnet", (), {"write": staticmethod(conn.sendall)})()  # control replies go out unescaped
        self.manager = rfc2217.PortManager(_ModemLines(), telnet)

    def read(self, timeout: float) -> bytes:
        return b"".join(self.manager.filter(super().read(timeout)))

    def write(self, data: bytes) -> None:
        self.conn.sendall(b"".join(self.manager.escape(data)))


def test_slots_through_an_rfc2217_url(tmp_path, capsys, keyfile):
    key = load_key(keyfile)
    flash_path = _flash_file(tmp_path, key)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def device() -> None:
        conn, _ = server.accept()
        with SimFlash(flash_path) as flash:
            serve(_Rfc2217Link(conn), maintenance_port(flash, [key], DEVICE), idle_timeout=5.0)
        conn.close()

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    code, out, err = _run(capsys, "slots", "--json", "--port", f"rfc2217://127.0.0.1:{port}")
    assert code == 0, err
    assert [(r["slot"], r["state"], r["version"]) for r in json.loads(out)] == [(0, "confirmed", "1.0.0+0"),
                                                                                 (1, "empty", None)]
    thread.join(timeout=10)
    server.close()


def test_slot_commands_over_the_port_and_confirm_before_the_test_boot_refused(tmp_path, capsys, keyfile):
    key = load_key(keyfile)
    v2 = make_image(_app(), version=Version(1, 1), key=key, security_counter=1, device_class=DEVICE)
    device = UpdateDevice(_flash_file(tmp_path, key), [key], DEVICE, app_env={}).start()
    try:
        image = tmp_path / "v2.img"
        image.write_bytes(v2)
        assert _run(capsys, "flash", "--no-reset", "--port", device.path, str(image))[0] == 0
        trace = tmp_path / "trace.txt"
        code, out, err = _run(capsys, "confirm", "--port", f"spy://{device.path}?file={trace}")
        assert code == 1 and "has never booted" in err and "Reset the device" in err, out + err
        assert trace.read_text()  # spy:// traced the exchange
        assert _run(capsys, "reset", "--port", device.path)[0] == 0
        for _ in range(100):
            if len(device.boots) >= 2:
                break
            threading.Event().wait(0.05)
        assert (device.boots[-1].slot, device.boots[-1].trial) == (1, True)
        code, out, err = _run(capsys, "confirm", "--port", device.path)
        assert code == 0 and "confirmed slot 1 (1.1.0)" in out, err
        code, out, err = _run(capsys, "confirm", "--port", device.path)
        assert code == 0 and "nothing on trial" in out
        code, out, err = _run(capsys, "revert", "--port", device.path)
        assert code == 0 and "slot 0 (1.0.0) will run after the next reset" in out, err
        code, out, err = _run(capsys, "test", "--port", device.path)
        assert code == 0 and "slot 0 (1.0.0) will be test-booted" in out, err
    finally:
        device.stop()
    with SimFlash(device.flash) as flash:
        assert read_trailer(flash, 0).state is SlotState.PENDING


def test_confirm_on_a_local_flash_whose_new_image_never_booted(tmp_path, capsys, keyfile):
    key = load_key(keyfile)
    v2 = make_image(_app(), version=Version(1, 1), key=key, security_counter=1, device_class=DEVICE)
    flash = _flash_file(tmp_path, key, pending=v2)
    code, _, err = _run(capsys, "confirm", "--flash", str(flash))
    assert code == 1 and "slot 1 (1.1.0+0) has never booted" in err
    with SimFlash(flash) as f:
        assert read_trailer(f, 1).state is SlotState.PENDING  # unchanged


@pytest.mark.parametrize(("entry", "prog"), [(main, "pos-fw"), (terminal_main, "pos-terminal"),
                                             (emv_main, "pos-emv"), (sim_main, "pos-sim")])
def test_version_on_every_command(entry, prog, capsys):
    with pytest.raises(SystemExit) as done:
        entry(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"{prog} {importlib.metadata.version('iotsim-pos')}\n"


def test_json_of_info_and_verify(tmp_path, capsys, keyfile):
    image = tmp_path / "a.img"
    key = load_key(keyfile)
    image.write_bytes(make_image(b"payload", version=Version(2, 3, 4, 5), key=key, security_counter=9,
                                 device_class=DEVICE))
    code, out, _ = _run(capsys, "info", "--json", str(image))
    info = json.loads(out)
    assert code == 0 and (info["version"], info["security_counter"], info["manifest"]) == ("2.3.4+5", 9, None)
    assert {"area": "protected", "type": "SEC_CNT", "length": 4} in info["tlvs"]
    code, out, _ = _run(capsys, "verify", "--json", "-k", str(keyfile), str(image))
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, _ = _run(capsys, "verify", "--json", "-k", str(keyfile), "--device-class", "kiosk", str(image))
    answer = json.loads(out)
    assert code == 1 and (answer["valid"], answer["reason"]) == (False, "wrong-device-class")


def test_keys_are_0600_and_encrypted_keys_read_both_ways_with_imgtool(tmp_path, capsys, monkeypatch, keyfile):
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    secret = tmp_path / "enc.pem"
    assert _run(capsys, "keygen", "-p", "-k", str(secret))[0] == 0
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in secret.read_bytes() and stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    ours = load_key(secret)
    theirs = imgtool.keys.load(str(secret), passwd=b"correct horse")
    assert theirs.get_public_bytes() == public_der(ours)
    made_by_imgtool = tmp_path / "imgtool.pem"
    imgtool.keys.Ed25519.generate().export_private(str(made_by_imgtool), passwd=b"correct horse")
    assert public_der(load_key(made_by_imgtool)) == imgtool.keys.load(str(made_by_imgtool),
                                                                       passwd=b"correct horse").get_public_bytes()
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    code, _, err = _run(capsys, "getpub", "-k", str(secret))
    assert code == 2 and "wrong passphrase?" in err


def test_getpub_raw_is_the_der_public_key_as_imgtool_emits_it(tmp_path, capsysbinary):
    keyfile = tmp_path / "raw.pem"
    save_private(generate("ecdsa-p256"), keyfile)
    assert main(["getpub", "-k", str(keyfile), "-e", "raw"]) == 0
    assert capsysbinary.readouterr().out == imgtool.keys.load(str(keyfile)).get_public_bytes()


def test_getpub_speaks_imgtools_encoding_names(tmp_path, capsys, keyfile):
    der = imgtool.keys.load(str(keyfile)).get_public_bytes()
    pem = _run(capsys, "getpub", "-k", str(keyfile), "-e", "pem")[1].encode()
    assert serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der
    c_src = _run(capsys, "getpub", "-k", str(keyfile), "-e", "lang-c")[1]
    assert f"_len = {len(der)};" in c_src and ", ".join(f"0x{b:02x}" for b in der[:8]) in c_src
    rust = _run(capsys, "getpub", "-k", str(keyfile), "-e", "lang-rust")[1]
    assert rust.startswith("static ED25519_PUB_KEY: &[u8] = &[")


@pytest.mark.parametrize("args", [
    ("slots", "--flash", "{tmp}/f.bin", "--create", "-5"),
    ("slots", "--flash", "{tmp}/f.bin", "--create", "999999999999"),
    ("slots", "--flash", "{tmp}/f.bin", "--create", "lots"),
    ("flash", "--port", "/dev/null", "--window", "0", "x.img"),
    ("flash", "--port", "/dev/null", "--block-size", "-4096", "x.img"),
    ("build", "-s", "-1", "--output", "{tmp}/x.img"),
    ("verify", "-k", "k.pem", "--min-counter", "4294967296", "x.img"),
])
def test_bad_numbers_are_refused_with_a_message(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as done:
        main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert done.value.code == 2 and ("out of range" in err or "not a whole number" in err), err
    assert "Traceback" not in err and not (tmp_path / "f.bin").exists()
