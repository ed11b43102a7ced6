"""The simulator's line faults (sim.devices.pty) and what the drivers make of them: pulled cables, noise, silence."""

from __future__ import annotations

import os
import select
import socket
import threading
import time

import pytest
import serial

from drivers.card_reader import CardReader
from flows.ports import CancelToken
from pos_errors import DeviceGone
from sim.devices.pty import FaultInjector, LineFaults, PtyPort, sleep_until
from sim.devices.reader import ReaderSim
from tests.drivers.conftest import FakeApplet

DATA = bytes(range(256)) * 64  # 16 KiB


def test_faults_repeat_exactly_from_the_seed() -> None:
    faults = LineFaults(seed=11, error_rate=0.01, drop_rate=0.005, dup_rate=0.005)
    first, second = FaultInjector(faults, "reader:out"), FaultInjector(faults, "reader:out")
    assert first.apply(DATA) == second.apply(DATA)
    assert FaultInjector(faults, "pinpad:out").apply(DATA) != FaultInjector(faults, "reader:out").apply(DATA)


def test_fault_counts_follow_the_rates() -> None:
    injector = FaultInjector(LineFaults(seed=1, error_rate=0.01, drop_rate=0.01, dup_rate=0.01), "x")
    out = injector.apply(DATA)
    for count in (injector.errors, injector.drops, injector.dups):
        assert 100 < count < 230  # 16384 bytes at 1 %: ~164, far from 0 and from every byte
    assert len(out) == len(DATA) - injector.drops + injector.dups


def test_a_clean_profile_changes_nothing() -> None:
    injector = FaultInjector(LineFaults(seed=5), "x")
    assert injector.apply(DATA) == DATA and not LineFaults().active


def test_unknown_fault_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="error_rat"):
        LineFaults.from_mapping({"error_rat": 0.1})
    assert LineFaults.from_mapping({"seed": "3", "error_rate": "1e-3"}) == LineFaults(seed=3, error_rate=1e-3)


def test_paced_and_silent_writes_take_their_time() -> None:
    with PtyPort(baud=9600) as port, serial.Serial(port.path, timeout=1) as terminal:
        started = time.monotonic()
        port.write(b"x" * 96)  # 96 bytes * 10 bits at 9600 baud = 0.1 s
        assert time.monotonic() - started >= 0.095
        assert terminal.read(96) == b"x" * 96
        port.silence(0.3)
        started = time.monotonic()
        port.write(b"y")
        assert time.monotonic() - started >= 0.29 and terminal.read(1) == b"y"


def test_paced_reads_take_the_line_time_of_the_terminals_bytes() -> None:
    with PtyPort(baud=9600) as port, serial.Serial(port.path, timeout=1) as terminal:
        terminal.write(b"z" * 96)  # the terminal's side of the pty has no baud rate: the simulator adds it
        started = time.monotonic()
        assert port.read(1.0) == b"z" * 96
        assert time.monotonic() - started >= 0.095  # 96 bytes at 9600 baud: never sooner than the wire


def test_sleep_until_never_wakes_early() -> None:
    for delay in (0.0, 0.0005, 0.003):
        deadline = time.monotonic() + delay
        sleep_until(deadline)
        assert time.monotonic() >= deadline
    sleep_until(time.monotonic() - 1.0)  # a passed deadline returns at once


def test_unplug_fails_the_open_port_and_replug_comes_back_at_the_same_path() -> None:
    with PtyPort() as port:
        path = port.path
        terminal = serial.Serial(path, timeout=0.2)
        port.unplug()
        assert not os.path.exists(path) and not port.plugged
        with pytest.raises(serial.SerialException):
            terminal.read(1)  # EIO: the other end is gone
        terminal.close()
        with pytest.raises(serial.SerialException):
            serial.Serial(path)
        port.write(b"lost")  # writing to a pulled cable goes nowhere, quietly
        port.replug()
        with serial.Serial(path, timeout=1) as again:
            port.write(b"hello")
            assert again.read(5) == b"hello"
            again.write(b"back")
            assert port.read(1.0) == b"back"


def test_reader_cable_pulled_mid_wait_then_plugged_back() -> None:
    sim = ReaderSim()
    reader = CardReader(sim.start(), ack_timeout_s=0.1, retries=2)
    try:
        reader.open()
        sim.pull()
        with pytest.raises(DeviceGone):
            reader.wait_for_card(5.0, CancelToken())
        assert not reader.card_present()
        with pytest.raises(DeviceGone):
            reader.info()  # still away: the reopen fails cleanly
        sim.insert(FakeApplet())  # a card put in while the reader is unplugged...
        sim.plug()
        assert reader.wait_for_card(2.0, CancelToken())  # ...is seen after the reopen
        reader.power_on()
        assert reader.transmit(bytes.fromhex("00A4040002A000"))[-2:] == b"\x90\x00"
    finally:
        reader.close()
        sim.stop()


def test_reader_on_a_noisy_line_answers_every_apdu_right() -> None:
    faults = LineFaults(seed=3, error_rate=3e-3, drop_rate=5e-4, dup_rate=5e-4)
    sim = ReaderSim(faults=faults, ack_timeout_s=0.05, retries=8)
    applet = FakeApplet()
    sim.insert(applet)
    reader = CardReader(sim.start(), ack_timeout_s=0.05, retries=8)  # ~60-byte frames: 21 % damaged, 9 tries
    try:
        reader.open()
        reader.power_on()
        for n in range(60):
            apdu = bytes.fromhex("00B2010C") + bytes([40]) + bytes([n]) * 40
            assert reader.transmit(apdu) == bytes([n]) * 40 + bytes([len(applet.apdus)]) + b"\x90\x00"
        damage = sim.port.out_faults.errors + sim.port.in_faults.errors + sim.port.in_faults.drops
        assert damage > 5 and sim.stats.bad_frames + reader._link._core.stats.bad_frames > 0
    finally:
        reader.close()
        sim.stop()


def test_spy_url_traces_frames_with_the_pan_masked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pan_bcd, pan_text = bytes.fromhex("6212345678901234"), b"6212345678901234"
    trace = tmp_path / "trace.txt"
    sim = ReaderSim()
    sim.insert(FakeApplet())
    reader = CardReader(f"spy://{sim.start()}?file={trace}")
    try:
        reader.open()
        reader.power_on()
        record = bytes.fromhex("70 12 5A 08") + pan_bcd + bytes.fromhex("5F 24 03 30 12 31")
        assert pan_bcd in reader.transmit(bytes.fromhex("00 B2 01 0C") + bytes([len(record)]) + record)
        sim.swipe(b";" + pan_text + b"=3012220?")
        time.sleep(0.3)
    finally:
        reader.close()
        sim.stop()
    text = trace.read_text()
    assert "CMD 12 (implied, v4) len 23: 00 B2 01 0C 12 … 12 31" in text  # v4: TRANSMIT's CMD implied (STX4)
    assert "answer (OK and 90 00 implied, v4) len 22" in text  # v2: CMD and echo implied by the ACK; v3: STATUS
    assert "CMD 42" in text and "ACK v2 SEQ" in text  # OK as well; v4: and SW 90 00
    raw = text.replace(" ", "").lower()
    assert pan_bcd.hex() not in raw and pan_text.decode() not in text and "12345678" not in raw


def _tcp_bridge(pty_path: str) -> tuple[int, threading.Event]:
    """A serial-device server (as a Moxa/Lantronix box would be): one TCP client <-> the device's pty."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        tty = os.open(pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        conn.setblocking(False)
        try:
            while not stop.is_set():
                ready, _, _ = select.select([conn, tty], [], [], 0.05)
                if conn in ready:
                    data = conn.recv(4096)
                    if not data:
                        return
                    os.write(tty, data)
                if tty in ready:
                    conn.sendall(os.read(tty, 4096))
        finally:
            os.close(tty)
            conn.close()
            server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], stop


def test_reader_over_a_socket_url() -> None:
    sim = ReaderSim()
    port, stop = _tcp_bridge(sim.start())
    reader = CardReader(f"socket://127.0.0.1:{port}")
    try:
        reader.open()
        assert reader.info() == ReaderSim.INFO
        sim.insert(FakeApplet())
        assert reader.wait_for_card(2.0, CancelToken())
        reader.power_on()
        assert reader.transmit(bytes.fromhex("00A4040002A000"))[-2:] == b"\x90\x00"
    finally:
        reader.close()
        stop.set()
        sim.stop()
