"""PIN pad: payload codecs, then the driver against the simulated pad on a real pty with real DUKPT."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import pinpad as pinpad_module
from drivers.pinpad import PinPad
from drivers.pinpad_codec import (
    EntryStatus,
    KeyStatus,
    PinPadCmd,
    decode_display,
    decode_key_status,
    decode_pin_request,
    decode_pin_result,
    encode_display,
    encode_key_status,
    encode_pin_request,
    encode_pin_result,
)
from emv.crypto.pin import decrypt_pin_block, derive_initial_key
from flows.ports import PadPrompt, PinEntry, PinPadPort
from pos_errors import DeviceError, DeviceGone, LocalProtocolError, RemoteProtocolError
from sim.devices.pinpad import PinPadSim

BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = bytes.fromhex("123456789012345600000000")
TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN = bytes.fromhex("FFFF9876543210E00000")
PAN = "6212345678901234"

# --- codecs -------------------------------------------------------------------------------------------------


def test_payload_vectors() -> None:
    assert encode_pin_request(PAN, 1250, 30).hex(" ").upper() == (
        "10 36 32 31 32 33 34 35 36 37 38 39 30 31 32 33 34 00 00 04 E2 00 00 75 30")
    assert encode_display(PadPrompt.AMOUNT, 1250, 156).hex(" ").upper() == "04 00 00 04 E2 00 9C"
    assert encode_pin_result(1, EntryStatus.TIMEOUT, 4, b"", b"").hex(" ") == "01 02 04 00 00"


@pytest.mark.parametrize("pan", [
    "", "12345678901", "62123456789012345678", "621234567890123X", "٦٢١٢٣٤٥٦٧٨٩٠١٢٣",  # Arabic-Indic digits
])
def test_pin_request_refuses_bad_pan_without_echoing_it(pan: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_pin_request(pan, 100, 30)
    assert pan == "" or pan not in str(info.value)


def test_display_carries_a_prompt_id_never_text() -> None:
    assert decode_display(encode_display(PadPrompt.THANK_YOU)) == (PadPrompt.THANK_YOU, 0, 156)
    with pytest.raises(LocalProtocolError):
        encode_display(PadPrompt.ENTER_PHONE)  # a numeric-entry prompt is not a display prompt
    with pytest.raises(RemoteProtocolError):
        decode_display(bytes([9]) + b"ENTER PIN" + bytes([0]))  # the old free-text DISPLAY


@given(pan=st.from_regex(r"\A[0-9]{12,19}\Z"), amount=st.integers(0, 2**32 - 1),
       ms=st.integers(1, 3_600_000), session=st.integers(0, 255), status=st.sampled_from([0, 1, 2, 3]),
       ksn=st.binary(min_size=1, max_size=12), block=st.binary(min_size=1, max_size=16),
       remaining=st.integers(0, 2**32 - 1))
def test_round_trips(pan: str, amount: int, ms: int, session: int, status: int, ksn: bytes, block: bytes,
                     remaining: int) -> None:
    assert decode_pin_request(encode_pin_request(pan, amount, ms / 1000)) == (pan, amount, ms / 1000)
    got_session, entry = decode_pin_result(encode_pin_result(session, status, 4, ksn, block))
    assert got_session == session and isinstance(entry, PinEntry)
    assert (entry.pin_block, entry.ksn) == (block, ksn)
    key = KeyStatus(scheme="tdes", ksn=ksn, remaining=remaining)
    assert decode_key_status(encode_key_status(key)) == key


@given(st.binary(max_size=40))
def test_decoders_raise_only_our_error(raw: bytes) -> None:
    for decode in (decode_display, decode_pin_request, decode_pin_result, decode_key_status):
        try:
            decode(raw)  # type: ignore[operator]
        except RemoteProtocolError:
            pass


def test_failed_entry_is_a_device_error_value() -> None:
    session, outcome = decode_pin_result(encode_pin_result(3, EntryStatus.FAILED, 4, b"", b""))
    assert session == 3 and isinstance(outcome, DeviceError)


# --- through a real pty -------------------------------------------------------------------------------------


@pytest.fixture
def pad() -> Iterator[tuple[PinPadSim, PinPad]]:
    sim = PinPadSim(scheme="aes", initial_key=derive_initial_key("aes", BDK, AES_KSN), initial_ksn=AES_KSN)
    driver = PinPad(sim.start(), response_timeout_s=2.0)
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()


def customer(sim: PinPadSim, keys: list[str], delay_s: float = 0.0) -> threading.Thread:
    """Types ``keys`` on the pad once it asks for a PIN (another thread, like a real person)."""

    def type_keys() -> None:
        _until(lambda: sim.awaiting_pin)
        time.sleep(delay_s)
        for key in keys:
            sim.press(key)

    thread = threading.Thread(target=type_keys, daemon=True)
    thread.start()
    return thread


def test_pinpad_is_a_pinpad_port() -> None:
    port: PinPadPort = PinPad("loop://")
    assert callable(port.request_online_pin)


def test_auto_pin_gives_a_block_the_host_can_decrypt(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(PAN, 1250, 5.0)
    assert entry.status == "entered" and entry.block_format == 4
    assert entry.pin_block is not None and len(entry.pin_block) == 16
    assert entry.ksn == bytes.fromhex("123456789012345600000001")
    assert decrypt_pin_block("aes", BDK, entry.ksn, entry.pin_block, PAN) == "1234"


def test_typed_pin_with_clear_and_asterisks(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    shown: list[tuple[str, str]] = []
    sim.add_listener(lambda _what: shown.append(sim.display))
    customer(sim, ["9", "9", "CLEAR", "4", "3", "2", "1", "0", "ENTER"])
    entry = driver.request_online_pin(PAN, 1250, 5.0)
    assert entry.status == "entered"
    assert decrypt_pin_block("aes", BDK, entry.ksn or b"", entry.pin_block or b"", PAN) == "43210"
    assert ("CNY 12.50", "PIN / 密码: **") in shown and ("CNY 12.50", "PIN / 密码: *****") in shown
    assert all("4321" not in line for pair in shown for line in pair)  # the display never shows digits
    assert not sim.awaiting_pin


@pytest.mark.parametrize(("keys", "status"), [
    (["1", "2", "CANCEL"], "cancelled"),
    (["ENTER"], "bypassed"),
    (["1", "2", "ENTER", "CANCEL"], "cancelled"),  # too short: ENTER is ignored
])
def test_customer_outcomes(pad: tuple[PinPadSim, PinPad], keys: list[str], status: str) -> None:
    sim, driver = pad
    customer(sim, keys)
    entry = driver.request_online_pin(PAN, 100, 5.0)
    assert entry == PinEntry(status=status)  # type: ignore[arg-type]


def test_pad_timeout(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    assert driver.request_online_pin(PAN, 100, 0.2).status == "timeout"
    assert sim.results == ["timeout"]


def test_abort_from_another_thread(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    threading.Timer(0.2, driver.abort).start()
    assert driver.request_online_pin(PAN, 100, 5.0).status == "cancelled"
    assert not sim.awaiting_pin  # the pad was told before request_online_pin returned
    sim.auto_pin = "1234"
    assert driver.request_online_pin(PAN, 100, 5.0).status == "entered"  # and it is free for the next one


def test_the_waiter_sleeps_until_the_result_or_abort_wakes_it(pad: tuple[PinPadSim, PinPad],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 item 3: no 50 ms polling while the customer keys; the pad's result and ``abort()`` wake the waiter
    (the port, which wakes nobody when it vanishes, is looked at every ``PORT_CHECK_S``: made 10 minutes here)."""
    sim, driver = pad
    monkeypatch.setattr(pinpad_module, "PORT_CHECK_S", 600.0)
    outcomes: list[str] = []

    def enter() -> None:
        outcomes.append(driver.request_online_pin(PAN, 100, 600.0).status)

    def abort_once_asked() -> None:
        threading.Thread(target=lambda: (_until(lambda: sim.awaiting_pin), driver.abort()), daemon=True).start()

    for wake in (lambda: customer(sim, ["1", "2", "3", "4", "ENTER"]), abort_once_asked):
        waiter = threading.Thread(target=enter, daemon=True)
        waiter.start()
        wake()
        waiter.join(timeout=30)  # not a timing target: without a wake-up the wait lasts 10 minutes
        assert not waiter.is_alive()
    assert outcomes == ["entered", "cancelled"]


def test_abort_with_nothing_pending_does_nothing(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    driver.abort()
    sim.auto_pin = "1234"
    assert driver.request_online_pin(PAN, 100, 5.0).status == "entered"


def test_stale_entry_on_the_pad_is_cleared(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    driver._link.request(PinPadCmd.GET_ONLINE_PIN, encode_pin_request(PAN, 1, 30), 1.0)  # abandoned
    assert sim.awaiting_pin
    sim.auto_pin = "5555"  # answers the next request, not the abandoned one
    assert driver.request_online_pin(PAN, 100, 5.0).status == "entered"
    assert sim.results == ["cancelled", "entered"]


def test_display_and_key_status(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    driver.display(PadPrompt.INSERT_CARD)
    assert sim.display == ("INSERT CARD", "请插卡")
    status = driver.key_status()
    assert status.scheme == "aes" and status.ksn == bytes.fromhex("123456789012345600000001")
    sim.auto_pin = "0000"
    driver.request_online_pin(PAN, 1, 5.0)
    assert driver.key_status().remaining == status.remaining - 1


def test_tdes_scheme_format_0() -> None:
    sim = PinPadSim(scheme="tdes", initial_key=derive_initial_key("tdes", TDES_BDK, TDES_KSN),
                    initial_ksn=TDES_KSN)
    sim.auto_pin = "123456"
    driver = PinPad(sim.start())
    try:
        entry = driver.request_online_pin(PAN, 500, 5.0)  # opens the port on first use
        assert (entry.status, entry.block_format, len(entry.pin_block or b"")) == ("entered", 0, 8)
        assert decrypt_pin_block("tdes", TDES_BDK, entry.ksn or b"", entry.pin_block or b"", PAN) == "123456"
    finally:
        driver.close()
        sim.stop()


def test_pad_vanishing_during_entry_is_device_gone(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    threading.Timer(0.2, sim.stop).start()
    with pytest.raises(DeviceGone):
        driver.request_online_pin(PAN, 100, 5.0)


def test_no_pan_or_pin_in_logs(pad: tuple[PinPadSim, PinPad], caplog: pytest.LogCaptureFixture) -> None:
    sim, driver = pad
    caplog.set_level(logging.DEBUG)
    customer(sim, ["8", "6", "4", "2", "ENTER"])
    entry = driver.request_online_pin(PAN, 100, 5.0)
    text = caplog.text + repr(entry) + repr(sim._entry)
    assert PAN not in text and "8642" not in text


def _until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)
