"""The pyserial shell: URLs (loop://, socket://, a pty), request/response correlation, events, vanishing."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from drivers.link import FrameReceived, LinkCore, PeerReset, SerialLink, encode_data
from pos_errors import DeviceGone, DeviceTimeout
from sim.devices.reader import LinkedDevice


class EchoDevice(LinkedDevice):
    """0x01 -> echo; 0x02 -> a stale answer (wrong SEQ), then the right one; 0x03 -> no answer at all."""

    name = "echo"

    def handle(self, cmd: int, data: bytes) -> bytes | None:
        if cmd == 0x02:
            self.core.send(0x82, bytes([0xEE]) + b"stale", time.monotonic())
        return None if cmd == 0x03 else b"echo:" + data


@pytest.fixture
def echo() -> Iterator[tuple[EchoDevice, SerialLink, list[object]]]:
    device = EchoDevice()
    events: list[object] = []
    link = SerialLink(device.start(), on_event=events.append)
    link.open()
    yield device, link, events
    link.close()
    device.stop()


def test_request_gets_its_own_response(echo: tuple[EchoDevice, SerialLink, list[object]]) -> None:
    _, link, _ = echo
    answer = link.request(0x01, b"abc", timeout_s=2.0)
    assert (answer.cmd, answer.data) == (0x81, b"echo:abc")  # the echoed SEQ byte is stripped


Echo = tuple[EchoDevice, SerialLink, list[object]]


def test_stale_response_is_not_taken_for_the_answer(echo: Echo) -> None:
    _, link, events = echo
    assert link.request(0x02, b"x", timeout_s=2.0).data == b"echo:x"
    assert not [e for e in events if isinstance(e, FrameReceived)]  # responses never reach on_event


def test_acked_but_unanswered_request_times_out(echo: tuple[EchoDevice, SerialLink, list[object]]) -> None:
    device, link, _ = echo
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no response"):
        link.request(0x03, b"", timeout_s=0.3)
    assert time.monotonic() - started >= 0.3
    assert device.stats.frames_received >= 1  # it did arrive: the link is fine, the device is mute
    assert link.request(0x01, b"", timeout_s=2.0).data == b"echo:"  # and the link still works


def test_unsolicited_event_and_device_restart_reach_on_event(
        echo: tuple[EchoDevice, SerialLink, list[object]]) -> None:
    device, _, events = echo
    device.send_event(0x40, b"hello")
    device.unplug()
    device.replug()  # a fresh device core: SYN
    deadline = time.monotonic() + 2
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == [FrameReceived(0x40, b"hello", 0), PeerReset()]


def test_listener_exception_does_not_kill_the_reader_thread() -> None:
    device = EchoDevice()
    link = SerialLink(device.start(), on_event=lambda event: 1 / 0)  # type: ignore[func-returns-value]
    try:
        link.open()
        device.send_event(0x40)
        time.sleep(0.1)
        assert link.request(0x01, b"still", timeout_s=2.0).data == b"echo:still"
    finally:
        link.close()
        device.stop()


def test_vanished_port(echo: tuple[EchoDevice, SerialLink, list[object]]) -> None:
    device, link, _ = echo
    device.stop()
    deadline = time.monotonic() + 2
    while link.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not link.is_open
    with pytest.raises(DeviceGone):
        link.request(0x01, b"", timeout_s=1.0)
    if not os.path.exists(link.url):  # a parallel process may since have been given the same /dev/pts number
        with pytest.raises(DeviceGone):
            link.open()  # the pty is gone for good


def test_bytes_from_before_open_are_discarded() -> None:
    """A frame written before the port was opened belongs to an earlier session: pyserial's open() flushes
    the input queue (the shell relies on it; this guards that)."""
    device = EchoDevice()
    events: list[object] = []
    link = SerialLink(device.start(), on_event=events.append)
    try:
        device.port.write(encode_data(7, 0x40, b"stale"))
        time.sleep(0.05)
        link.open()
        assert link.request(0x01, b"", timeout_s=2.0).data == b"echo:"
        assert not [e for e in events if isinstance(e, FrameReceived)]
    finally:
        link.close()
        device.stop()


def test_loop_url_hears_itself() -> None:
    """loop:// sends our bytes back: our SYN and our own frame arrive as events, our ACK completes it."""
    events: list[object] = []
    link = SerialLink("loop://", on_event=events.append)
    link.open()
    try:
        with pytest.raises(DeviceTimeout):
            link.request(0x01, b"hi", timeout_s=0.3)
    finally:
        link.close()
    assert events == [PeerReset(), FrameReceived(0x01, b"hi", 0)]


def test_socket_url() -> None:
    """The same shell over socket:// (a reader behind a serial-to-TCP bridge)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def device() -> None:
        conn, _ = server.accept()
        conn.settimeout(0.02)
        core = LinkCore(role="device")
        with conn:
            while not stop.is_set():
                try:
                    conn.sendall(core.data_to_send())
                    data = conn.recv(4096)
                except TimeoutError:
                    data = b""
                except (BrokenPipeError, ConnectionResetError):  # the terminal closed first: a retransmission
                    return  # of the unacknowledged answer found no one
                for event in core.pump(data, time.monotonic()):
                    if isinstance(event, FrameReceived):
                        core.send(event.cmd | 0x80, bytes([event.seq]) + b"tcp", time.monotonic())

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    link = SerialLink(f"socket://127.0.0.1:{port}")
    try:
        link.open()
        assert link.request(0x01, b"", timeout_s=2.0).data == b"tcp"
    finally:
        link.close()
        stop.set()
        thread.join(2)
        server.close()


def test_an_idle_link_blocks_on_the_port_and_a_request_runs_its_own_timer(echo: Echo) -> None:
    """No polling while nothing waits on time (a CPU cost in every top-up): the reader thread blocks until bytes
    come; a request's retransmissions are timed by the requesting thread, so the reader is not woken for them
    (nor the port re-tuned); close() wakes it for the end."""
    device, link, _ = echo
    assert link.request(0x01, b"a", timeout_s=2.0).data == b"echo:a"
    port, reads = link._serial, []
    assert port is not None
    read = port.read
    port.read = lambda timeout_s=None: reads.append(timeout_s) or read(timeout_s)  # type: ignore[method-assign]
    time.sleep(0.6)  # the last answer's delayed ACK goes out after 50 ms; then nothing is due
    assert len(reads) <= 3, f"{len(reads)} reads in 0.6 s idle: still polling"
    assert not reads or reads[-1] is None  # blocked until bytes come
    device.unplug()  # a silent device: only the retransmission timer the request starts can end the wait
    before = len(reads)
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="not answering"):
        link.request(0x01, b"b", timeout_s=5.0)
    assert time.monotonic() - started < 4.0  # failed by the link's retries (9 x 0.2 s), not the 5 s wait
    assert len(reads) == before, "the reader thread was woken for the request's retransmissions"
    thread = link._thread
    started = time.monotonic()
    link.close()
    assert thread is not None and not thread.is_alive() and time.monotonic() - started < 1.0
