"""Card reader: ATR parsing, codecs, the driver against the simulated reader in memory and on a pty."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import card_reader as card_reader_module
from drivers.card_reader import CardReader
from drivers.card_reader_codec import (
    CardInserted,
    CardRemovedEvent,
    CardSwiped,
    ReaderCmd,
    ReaderInfo,
    ReaderState,
    ReaderStatus,
    decode_info,
    decode_response,
    decode_state,
    decode_swipe,
    encode_info,
    encode_state,
    encode_swipe,
    parse_atr,
)
from drivers.link.frames import encode_v2
from flows.ports import CancelToken, CardReaderPort
from pos_errors import Cancelled, CardRemoved, DeviceError, DeviceFault, DeviceGone, DeviceTimeout, RemoteProtocolError
from sim.devices.reader import ReaderSim
from tests.drivers.conftest import T0_ATR, T1_ATR, EveryNth, FakeApplet, Wire

SELECT_PSE = bytes.fromhex("00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00")

# --- ATR (ISO/IEC 7816-3 §8) --------------------------------------------------------------------------------


@pytest.mark.parametrize(("atr", "protocols", "historical", "convention"), [
    ("3B 02 14 50",                            (0,),   "14 50",                "direct"),
    ("3F 00",                                  (0,),   "",                     "inverse"),
    ("3B 80 80 01 01",                         (0, 1), "",                     "direct"),
    ("3B 81 81 31 FE 45 01 8B",                (1,),   "01",                   "direct"),
    ("3B 65 00 00 20 63 CB 6B 00",             (0,),   "20 63 CB 6B 00",       "direct"),
    ("3B 8A 80 01 00 31 C1 73 C8 40 00 00 90 00 90", (0, 1), "00 31 C1 73 C8 40 00 00 90 00", "direct"),
    ("3B 80 80 0F 0F",                         (0,),   "",                     "direct"),  # T=15 only
])
def test_parse_atr(atr: str, protocols: tuple[int, ...], historical: str, convention: str) -> None:
    parsed = parse_atr(bytes.fromhex(atr))
    assert (parsed.protocols, parsed.historical, parsed.convention) == (
        protocols, bytes.fromhex(historical), convention)
    assert parsed.protocol == protocols[0]


@pytest.mark.parametrize(("atr", "offset"), [
    ("3C 00",             0),   # TS neither 3B nor 3F
    ("3B",                0),   # no T0
    ("3B 02 14",          3),   # one historical byte missing
    ("3B 80",             2),   # TD1 announced, absent
    ("3B 80 80 01 02",    4),   # TCK wrong
    ("3B 80 80 01",       4),   # TCK missing (T=1 offered)
    ("3B 02 14 50 00",    4),   # a byte too many (T=0 only: no TCK)
])
def test_parse_atr_rejects(atr: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_atr(bytes.fromhex(atr))
    assert info.value.offset == offset


@given(st.binary(max_size=40))
def test_parse_atr_random_bytes_raise_only_our_error(raw: bytes) -> None:
    try:
        parse_atr(raw)
    except RemoteProtocolError:
        pass


# --- payload codecs -----------------------------------------------------------------------------------------


def test_payload_vectors() -> None:
    info = ReaderInfo(model="SIM-RDR-100", firmware="1.4.2", serial="RDR0001")
    assert encode_info(info).hex(" ").upper() == (
        "0B 53 49 4D 2D 52 44 52 2D 31 30 30 05 31 2E 34 2E 32 07 52 44 52 30 30 30 31")
    assert encode_state(ReaderState(card_present=True, powered=False)) == b"\x01"
    assert encode_state(ReaderState(card_present=True, powered=True)) == b"\x03"


@given(model=st.text(st.characters(max_codepoint=127), max_size=20), fw=st.text(max_size=0),
       present=st.booleans(), powered=st.booleans(), t1=st.binary(max_size=79), t2=st.binary(max_size=40))
def test_payload_round_trips(model: str, fw: str, present: bool, powered: bool, t1: bytes, t2: bytes) -> None:
    info = ReaderInfo(model=model, firmware=fw, serial="S1")
    assert decode_info(encode_info(info)) == info
    state = ReaderState(card_present=present, powered=powered)
    assert decode_state(encode_state(state)) == state
    assert decode_swipe(encode_swipe(CardSwiped(track1=t1, track2=t2))) == CardSwiped(t1, t2)


@given(st.binary(max_size=30))
def test_payload_decoders_raise_only_our_error(raw: bytes) -> None:
    for decode in (decode_info, decode_state, decode_swipe, decode_response):
        try:
            decode(raw)
        except RemoteProtocolError:
            pass


def test_swipe_event_keeps_tracks_out_of_repr() -> None:
    swipe = CardSwiped(track1=b"B6212345678901234^TEST/CARD^2712", track2=b"6212345678901234=2712")
    assert "6212" not in repr(swipe)


# --- driver side against the simulated reader, in memory ----------------------------------------------------


@pytest.fixture
def sim() -> Iterator[ReaderSim]:
    reader = ReaderSim()
    yield reader
    reader.stop()


def test_in_memory_pair_command_set(sim: ReaderSim) -> None:
    """The terminal's link core and codecs against the reader's link core and command handler."""
    wire = Wire(chunk=1)
    wire.on_device_frame = lambda f: wire.device.send(
        f.cmd | 0x80, bytes([f.seq]) + (sim.handle(f.cmd, f.data) or b""), wire.now)

    def call(cmd: ReaderCmd, data: bytes = b"") -> tuple[int, bytes]:
        seq = wire.terminal.send(cmd, data, wire.now)
        wire.run()
        answer = wire.received("terminal")[-1]
        assert (answer.cmd, answer.data[0]) == (cmd | 0x80, seq)  # correlated by CMD|0x80 and echoed SEQ
        return decode_response(answer.data[1:])

    assert decode_info(call(ReaderCmd.GET_INFO)[1]) == ReaderSim.INFO
    assert call(ReaderCmd.POWER_ON)[0] == ReaderStatus.NO_CARD
    sim.insert(FakeApplet(T0_ATR))
    assert call(ReaderCmd.POWER_ON) == (ReaderStatus.OK, T0_ATR)
    assert decode_state(call(ReaderCmd.GET_STATUS)[1]) == ReaderState(card_present=True, powered=True)
    status, rapdu = call(ReaderCmd.TRANSMIT, SELECT_PSE)
    assert (status, rapdu[-2:]) == (ReaderStatus.OK, b"\x90\x00")
    assert call(0x3F)[0] == ReaderStatus.UNKNOWN_COMMAND  # type: ignore[arg-type]


# --- through a real pty with the real pyserial shell --------------------------------------------------------


@pytest.fixture
def started() -> Iterator[tuple[ReaderSim, CardReader]]:
    sim = ReaderSim()
    reader = CardReader(sim.start(), response_timeout_s=2.0)
    reader.open()
    yield sim, reader
    reader.close()
    sim.stop()


def test_reader_is_a_card_reader_port() -> None:
    reader: CardReaderPort = CardReader("loop://")
    assert callable(reader.wait_for_card)


def test_full_card_session_over_pty(started: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = started
    seen: list[object] = []
    reader.add_listener(seen.append)
    assert reader.info() == ReaderSim.INFO
    assert not reader.card_present()
    applet = FakeApplet(T1_ATR)
    sim.insert(applet)
    assert reader.wait_for_card(2.0, CancelToken())
    assert reader.power_on() == T1_ATR
    assert reader.atr is not None and reader.atr.protocols == (0, 1)
    assert reader.transmit(SELECT_PSE) == bytes.fromhex("6F 04 84 02 A0 00 90 00")
    assert reader.transmit(bytes.fromhex("80 CA 9F 36 00")) == b"\x02\x90\x00"
    assert applet.apdus == [SELECT_PSE, bytes.fromhex("80 CA 9F 36 00")]  # each APDU reached the card once
    sim.remove()
    assert reader.wait_for_removal(2.0)
    with pytest.raises(CardRemoved) as caught:
        reader.transmit(SELECT_PSE)
    assert caught.value.fault is DeviceFault.CARD_REMOVED
    assert seen == [CardInserted(), CardRemovedEvent()]


def test_card_swapped_after_power_on_counts_as_removed(started: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = started
    sim.insert(FakeApplet())
    assert reader.wait_for_card(2.0, CancelToken())
    reader.power_on()
    sim.insert(FakeApplet())  # out and in again: not the card the kernel was talking to
    _until(lambda: reader._insertions == 2)
    with pytest.raises(CardRemoved) as caught:
        reader.transmit(SELECT_PSE)
    assert caught.value.fault is DeviceFault.CARD_REMOVED


def test_device_says_no_card(started: tuple[ReaderSim, CardReader]) -> None:
    _, reader = started
    with pytest.raises(CardRemoved) as caught:
        reader.power_on()
    assert caught.value.fault is DeviceFault.CARD_REMOVED  # the reader's NO_CARD status, by code


def test_wait_for_card_timeout_and_cancel(started: tuple[ReaderSim, CardReader]) -> None:
    _, reader = started
    assert reader.wait_for_card(0.1, CancelToken()) is False
    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    with pytest.raises(Cancelled):
        reader.wait_for_card(5.0, token)


def test_a_waiter_sleeps_until_an_event_or_the_cancel_token_wakes_it(started: tuple[ReaderSim, CardReader],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 item 3: no 50 ms polling while the customer finds the card; an insertion (a reader event) or the
    cancel token (``on_cancel``) wakes the waiter at once. The heartbeat, the only timed look, is made 10 minutes."""
    sim, reader = started
    monkeypatch.setattr(card_reader_module, "HEARTBEAT_S", 600.0)
    outcomes: list[object] = []
    token = CancelToken()

    def wait() -> None:
        try:
            outcomes.append(reader.wait_for_card(600.0, token))
        except Cancelled:
            outcomes.append("cancelled")

    for wake in (lambda: sim.insert(FakeApplet()), token.cancel):
        if outcomes:  # the second round: the slot empty again, then CANCEL
            sim.remove()
            assert reader.wait_for_removal(5.0)
        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        threading.Timer(0.2, wake).start()
        waiter.join(timeout=30)  # not a timing target: without a wake-up the wait lasts 10 minutes
        assert not waiter.is_alive()
    assert outcomes == [True, "cancelled"]


def test_swipe_reaches_listener(started: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = started
    seen: list[object] = []
    reader.add_listener(seen.append)
    sim.swipe(track2=b"6212345678901234=2712")
    _until(lambda: bool(seen))
    assert seen == [CardSwiped(track1=b"", track2=b"6212345678901234=2712")]


def test_corrupting_line_still_delivers_every_frame_once() -> None:
    out, back = EveryNth(3), EveryNth(4, offset=1)
    sim = ReaderSim(corrupt=out, ack_timeout_s=0.05)
    sim.corrupt_in = back  # bytes from the terminal are damaged too
    reader = CardReader(sim.start(), ack_timeout_s=0.05, response_timeout_s=3.0)
    try:
        reader.open()
        seen: list[object] = []
        reader.add_listener(seen.append)
        applet = FakeApplet()
        sim.insert(applet)
        assert reader.wait_for_card(3.0, CancelToken())
        reader.power_on()
        for i in range(25):
            apdu = bytes([0x80, 0xCA, 0x00, 0x00, 1, i])
            assert reader.transmit(apdu) == bytes([i, len(applet.apdus)]) + b"\x90\x00"
        assert len(applet.apdus) == 25  # not one APDU delivered twice to the card
        sim.remove()
        assert reader.wait_for_removal(3.0)
        assert seen == [CardInserted(), CardRemovedEvent()]
        assert out.flipped > 5 and back.flipped > 5
        assert sim.stats.retransmissions > 0 and reader._link._core.stats.retransmissions > 0
    finally:
        reader.close()
        sim.stop()


def test_long_answer_on_a_slow_line_is_sent_once() -> None:
    """At 9600 baud a 258-byte R-APDU takes longer than the ack timeout; the line time is allowed for."""
    sim = ReaderSim(baud=9600)
    reader = CardReader(sim.start(), baud=9600)
    try:
        reader.open()
        sim.insert(FakeApplet())
        assert reader.wait_for_card(2.0, CancelToken())
        reader.power_on()
        rapdu = reader.transmit(bytes([0x80, 0xCA, 0x00, 0x00, 255]) + bytes(255))
        assert len(rapdu) == 258 and rapdu[-2:] == b"\x90\x00"
        _until(lambda: sim.core.idle)  # the pty delivers at once, then the sim sleeps for the line time
        assert sim.stats.retransmissions == 0
    finally:
        reader.close()
        sim.stop()


def test_silent_reader_times_out_after_the_retries() -> None:
    sim = ReaderSim()
    reader = CardReader(sim.start(), ack_timeout_s=0.1, retries=2)
    try:
        reader.open()
        _until(lambda: sim.core.idle)  # the ACK of the last answer has arrived
        sim.unplug()
        with pytest.raises(DeviceTimeout) as caught:
            reader.info()
        assert caught.value.fault is DeviceFault.NO_ANSWER
        assert sim.ignored_bytes == 3 * len(encode_v2(0, ReaderCmd.GET_INFO))  # first try + 2 retries (v2)
        sim.replug()
        assert reader.info() == ReaderSim.INFO
    finally:
        reader.close()
        sim.stop()


def test_reader_that_stops_answering_while_waiting_for_a_card() -> None:
    sim = ReaderSim()
    reader = CardReader(sim.start(), ack_timeout_s=0.1, retries=1)
    try:
        reader.open()
        sim.unplug()
        sim.insert(FakeApplet())  # a dead reader does not report it
        started = time.monotonic()
        with pytest.raises(DeviceTimeout):
            reader.wait_for_card(30.0, CancelToken())
        assert time.monotonic() - started < 3.0  # the heartbeat noticed; nobody waited 30 s
    finally:
        reader.close()
        sim.stop()


def test_replug_reannounces_a_card_still_in(started: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = started
    sim.insert(FakeApplet())
    assert reader.wait_for_card(2.0, CancelToken())
    sim.unplug()
    sim.replug()  # powered up again: SYN, then CARD_INSERTED
    _until(lambda: reader._insertions == 2)
    assert reader.card_present() and reader.status() == ReaderState(card_present=True, powered=False)


def test_close_and_reopen(started: tuple[ReaderSim, CardReader]) -> None:
    _, reader = started
    assert reader.info() == ReaderSim.INFO
    reader.close()
    reader.open()  # a fresh link core starts at SEQ 0 again; SYN keeps it from looking like a duplicate
    assert reader.info() == ReaderSim.INFO


def test_vanished_port_is_device_gone() -> None:
    sim = ReaderSim()
    reader = CardReader(sim.start())
    try:
        reader.open()
        sim.stop()
        with pytest.raises(DeviceGone) as caught:
            reader.info()
        assert caught.value.fault is DeviceFault.PORT
        with pytest.raises(DeviceGone) as caught:
            reader.wait_for_card(1.0, CancelToken())
        assert caught.value.fault is DeviceFault.PORT
    finally:
        reader.close()


def test_second_open_of_the_same_port_is_refused(started: tuple[ReaderSim, CardReader]) -> None:
    sim, _ = started
    with pytest.raises(DeviceGone):
        CardReader(sim.port.path).open()  # exclusive: another process holds the reader


def test_open_without_device() -> None:
    with pytest.raises(DeviceError):
        CardReader("/dev/does-not-exist").open()


def _until(condition: object, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)
