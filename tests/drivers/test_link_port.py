"""The link shell's port waits (``drivers.link.port``) through a real pty: one select, a burst in one read, the
bells that wake a waiter, an empty tty told apart from a vanished one, and the fallback for URL ports."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import serial

from drivers.link.port import READER, REQUESTER, PolledPort, SelectPort, open_port


@pytest.fixture
def pty() -> Iterator[tuple[int, SelectPort]]:
    master, slave = os.openpty()
    port = open_port(serial.serial_for_url(os.ttyname(slave), baudrate=115200, timeout=0.05, write_timeout=1.0))
    assert isinstance(port, SelectPort)
    yield master, port
    port.close()
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_burst_is_one_read_and_an_empty_tty_reads_as_nothing(pty: tuple[int, SelectPort]) -> None:
    master, port = pty
    os.write(master, b"\x03\x00\x01\x01\xef\x8c" * 3)
    assert port.wait(READER, True, 1.0)
    time.sleep(0.02)  # all of it in the line discipline
    assert port.read_now() == b"\x03\x00\x01\x01\xef\x8c" * 3
    # pyserial sets VMIN 0: a tty with nothing waiting reads as zero bytes (another thread took them) - not gone
    assert port.read_now() == b""
    started = time.monotonic()
    assert not port.wait(READER, True, 0.05)  # times out: nothing came
    assert time.monotonic() - started >= 0.04


def test_each_bell_wakes_its_own_waiter_and_a_parked_wait_ignores_the_port(pty: tuple[int, SelectPort]) -> None:
    master, port = pty
    os.write(master, b"x")  # readable, but a parked waiter does not watch the port
    threading.Timer(0.05, port.ring, (REQUESTER,)).start()
    started = time.monotonic()
    assert not port.wait(REQUESTER, False, 5.0)  # woken by its bell, the port not watched
    assert 0.03 < time.monotonic() - started < 2.0
    port.ring(REQUESTER)
    assert not port.wait(READER, False, 0.05)  # the other bell does not ring this waiter
    assert not port.wait(REQUESTER, False, 5.0)  # a ring before the wait is kept for it
    assert port.wait(READER, True, 1.0) and port.read_now() == b"x"


def test_a_vanished_device_raises_and_close_is_safe_twice(pty: tuple[int, SelectPort]) -> None:
    master, port = pty
    port.write(b"hello")
    assert os.read(master, 16) == b"hello"
    os.close(master)  # the cable is pulled: the tty hangs up
    assert port.wait(READER, True, 1.0)
    with pytest.raises(serial.SerialException):
        port.read_now()
    with pytest.raises(serial.SerialException):
        port.write(b"more")
    port.close()
    port.close()  # a second close must not close descriptors opened since
    port.ring(READER)  # nor a late ring write to one


def test_url_ports_fall_back_to_pyserial_reads() -> None:
    port = open_port(serial.serial_for_url("loop://", timeout=0.05))
    assert isinstance(port, PolledPort)
    try:
        port.write(b"abc")
        assert port.read(0.5) == b"abc"
        assert port.read(0.01) == b""
    finally:
        port.close()
