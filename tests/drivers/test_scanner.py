"""Scanner line core: codes fed whole, split, byte at a time, with garbage; trigger commands and timeouts;
then the pyserial shell against the simulated scanner through a real pty."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanner import Scanner
from drivers.scanner_codec import MAX_CODE, TRIGGER, UNTRIGGER, CodeRead, LineRejected, ScannerCore, ScanTimedOut
from flows.ports import CancelToken
from pos_errors import Cancelled, ConfigError, DeviceGone
from sim.devices.scanner import ScannerSim

WECHAT = "134567890123456789"
CPM = "hQVDUFYwMWEaTwegAAADMwEBUAhVbmlvblBheZ82AgAB" * 20  # 880 characters of base64


def _feed(core: ScannerCore, chunks: list[bytes], now: float = 1.0) -> list[object]:
    for chunk in chunks:
        core.receive_data(chunk, now)
    return list(iter(core.next_event, None))


def _split_ways(data: bytes) -> list[list[bytes]]:
    return [[data], [data[: len(data) // 2], data[len(data) // 2:]], [bytes([b]) for b in data]]


@pytest.mark.parametrize("wire, codes, rejected", [
    (WECHAT.encode() + b"\r\n",                        [WECHAT], 0),
    (WECHAT.encode() + b"\r",                          [WECHAT], 0),
    (WECHAT.encode() + b"\n",                          [WECHAT], 0),
    (CPM.encode() + b"\r\n",                           [CPM], 0),
    (b"\x00\xff\x13garbage\r\n" + WECHAT.encode() + b"\r\n", [WECHAT], 1),
    (b"\r\n\r\n" + WECHAT.encode() + b"\r\n\r\n",      [WECHAT], 0),
    (b"12\x0034\r\n",                                  [], 1),
    (b"A" * (MAX_CODE + 1) + b"\r\n",                  [], 1),
    (b"A" * (MAX_CODE * 3) + b"\r\n",                  [], 1),
    (b"A" * MAX_CODE + b"\r\n",                        ["A" * MAX_CODE], 0),
])
def test_lines_whole_split_and_byte_at_a_time(wire: bytes, codes: list[str], rejected: int) -> None:
    for chunks in _split_ways(wire):
        core = ScannerCore("continuous")
        core.start_scan(0.0, 30)
        events = _feed(core, chunks)
        assert [e.text for e in events if isinstance(e, CodeRead)] == codes[:1]
        assert sum(isinstance(e, LineRejected) for e in events) == rejected


def test_only_one_code_per_scan_and_none_outside() -> None:
    core = ScannerCore("continuous")
    events = _feed(core, [b"111\r\n"])
    assert events == [LineRejected("code outside a scan", 3)]
    core.start_scan(0.0, 30)
    events = _feed(core, [b"222\r\n333\r\n"])
    assert isinstance(events[0], CodeRead) and events[0].text == "222"
    assert events[1] == LineRejected("code outside a scan", 3)


def test_triggered_mode_sends_trigger_and_untrigger() -> None:
    core = ScannerCore("triggered")
    core.start_scan(10.0, 5.0)
    assert core.data_to_send() == TRIGGER and core.get_timer() == 15.0
    _feed(core, [WECHAT.encode() + b"\r"])
    assert core.data_to_send() == UNTRIGGER and core.get_timer() is None


def test_trigger_timeout() -> None:
    core = ScannerCore("triggered")
    core.start_scan(10.0, 5.0)
    core.data_to_send()
    core.handle_timer(14.9)
    assert core.next_event() is None
    core.handle_timer(15.0)
    assert core.next_event() == ScanTimedOut() and core.data_to_send() == UNTRIGGER and not core.scanning


def test_stale_partial_line_is_dropped_then_next_code_reads() -> None:
    core = ScannerCore("continuous", stale_s=0.5)
    core.start_scan(0.0, 30)
    core.receive_data(b"13456789", 1.0)
    assert core.get_timer() == 1.5
    core.handle_timer(1.5)
    assert core.next_event() == LineRejected("partial line, no terminator", 8)
    assert _feed(core, [WECHAT.encode() + b"\r\n"], 2.0) == [CodeRead(WECHAT)]


def test_continuous_mode_sends_nothing_and_bad_mode_refused() -> None:
    core = ScannerCore("continuous")
    core.start_scan(0.0, 1)
    core.stop_scan()
    assert core.data_to_send() == b""
    with pytest.raises(ConfigError):
        ScannerCore("sometimes")  # type: ignore[arg-type]


def test_code_repr_hides_the_middle() -> None:
    assert "56789012" not in repr(CodeRead(WECHAT))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_raise_and_codes_are_printable(chunks: list[bytes]) -> None:
    core = ScannerCore("continuous")
    core.start_scan(0.0, 30)
    for event in _feed(core, chunks):
        if isinstance(event, CodeRead):
            assert event.text.isprintable() and 0 < len(event.text) <= MAX_CODE


# --- shell against the simulated scanner on a real pty ----------------------------------------------------------


@pytest.fixture(params=["triggered", "continuous"])
def pair(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    sim = ScannerSim(mode=request.param)
    path = sim.start()
    scanner = Scanner(path, mode=request.param)
    scanner.open()
    yield sim, scanner
    scanner.close()
    sim.stop()


def test_pty_scan_reads_a_shown_code_after_garbage(pair) -> None:  # type: ignore[no-untyped-def]
    sim, scanner = pair
    sim.noise(b"\x00\x7f junk")  # a partial line that never ends: dropped as stale
    threading.Timer(0.7, lambda: sim.show(CPM, byte_at_a_time=True)).start()
    assert scanner.scan(5.0, CancelToken()) == CPM
    assert scanner.rejected >= 1


def test_pty_scan_times_out_and_cancels(pair) -> None:  # type: ignore[no-untyped-def]
    sim, scanner = pair
    assert scanner.scan(0.3, CancelToken()) is None
    cancel = CancelToken()
    threading.Timer(0.2, cancel.cancel).start()
    with pytest.raises(Cancelled):
        scanner.scan(5.0, cancel)
    if sim.mode == "triggered":  # the untrigger crosses the pty after scan() returned
        deadline = time.monotonic() + 2
        while sim.triggered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.triggers == 2 and not sim.triggered


def test_a_waiting_scan_is_woken_by_close_and_an_already_cancelled_scan_never_waits(pair) -> None:  # type: ignore[no-untyped-def]
    """The scan blocks on its queue with no poll (issue 17 item 3): close() from another thread ends it with
    DeviceGone, and a token cancelled before the scan ends it at once (the code shown later is not taken)."""
    sim, scanner = pair
    cancelled = CancelToken()
    cancelled.cancel()
    threading.Timer(0.3, lambda: sim.show(CPM)).start()
    with pytest.raises(Cancelled):
        scanner.scan(60.0, cancelled)
    threading.Timer(0.2, scanner.close).start()
    with pytest.raises(DeviceGone):
        scanner.scan(60.0, CancelToken())


def test_an_idle_scanner_sleeps_in_its_read_and_still_wakes_for_a_scan_and_close() -> None:
    """Issue 17 item 3: no 50 ms polling while nobody scans (each poll re-tuned the port with a termios call); a scan
    armed from another thread wakes the reader (``cancel_read``) so its deadline ends it, and so does close()."""
    sim = ScannerSim(mode="triggered")
    scanner = Scanner(sim.start(), mode="triggered")
    scanner.open()
    try:
        deadline = time.monotonic() + 2
        while scanner._serial.timeout is not None and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        assert scanner._serial.timeout is None  # type: ignore[union-attr]  # blocking read: no timer, no poll
        assert scanner.scan(0.3, CancelToken()) is None  # the reader learnt the deadline although it slept
        assert sim.triggers == 1
        thread = scanner._thread
    finally:
        scanner.close()
        sim.stop()
    assert thread is not None and not thread.is_alive()
