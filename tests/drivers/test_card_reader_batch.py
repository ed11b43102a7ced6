"""TRANSMIT_BATCH (docs/protocols/card-reader.md): the codec's vectors and properties, then the terminal's
driver against the simulated reader on a real pty — a whole EMV transaction batched and not, readers without
the command, forged and malformed answers, answers handed out only for their own commands, masked traces."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.card_reader import CardReader
from drivers.card_reader_batch import (
    MAX_BATCH,
    Prefetched,
    decode_batch,
    decode_batch_answer,
    encode_batch,
    encode_batch_answer,
)
from drivers.card_reader_codec import ReaderCmd, ReaderStatus, encode_response
from drivers.link.frames import encode_v2
from emv.actions import Finished, GoOnline, Outcome, RequestOnlinePin, SendApdu
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.kernel import Transaction
from flows.ports import CancelToken
from pos_errors import CardRemoved, DeviceError, DeviceFault, LocalProtocolError, RemoteProtocolError
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.reader import ReaderSim
from tests.drivers.conftest import FakeApplet

DOC = (Path(__file__).parents[2] / "docs" / "protocols" / "card-reader.md").read_text(encoding="utf-8")
RR1, RR2, RR3 = (bytes.fromhex(f"00 B2 0{n} 0C 00") for n in (1, 2, 3))
SELECT_PSE = bytes.fromhex("00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00")
CONFIG = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="898440154110001", capks=SIM_TRUST)


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


# --- the codec: vectors (also in the protocol document) -------------------------------------------------------


@pytest.mark.parametrize(("commands", "data"), [
    ([RR1, RR2],        "02 05 00 B2 01 0C 00 00 B2 02 0C 00"),
    ([SELECT_PSE, RR1, RR2],
     "03 14 00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00 05 00 B2 01 0C 00 00 B2 02 0C 00"),
])
def test_command_vectors(commands: list[bytes], data: str) -> None:
    assert _hex(encode_batch(commands)) == data
    assert decode_batch(bytes.fromhex(data)) == commands
    assert f"`{data}`" in DOC


@pytest.mark.parametrize(("rapdus", "payload"), [
    (["70 03 5F 20 00 90 00", "6A 83"],                 "02 05 70 03 5F 20 00 6A 83"),
    (["6F 00 90 00", "70 00 90 00", "70 01 00 90 00"],  "03 02 6F 00 02 70 00 70 01 00 90 00"),
    (["6A 82"],                                         "01 6A 82"),
    (["90 00", "90 00"],                                "02 00 90 00"),
])
def test_answer_vectors(rapdus: list[str], payload: str) -> None:
    answers = [bytes.fromhex(r) for r in rapdus]
    assert _hex(encode_batch_answer(answers)) == payload
    assert decode_batch_answer(bytes.fromhex(payload), len(answers) if answers[-1][-2:] == b"\x90\x00" else 3) \
        == answers
    assert f"`{payload}`" in DOC


def test_frame_vectors() -> None:
    """Whole v4 frames: the command carries CMD 15 (only TRANSMIT's CMD is implied); the answer is a v3/v4
    answer like any other (its trailing 90 00 implied when the last R-APDU ends in it)."""
    command = encode_v2(seq=0, cmd=ReaderCmd.TRANSMIT_BATCH, data=encode_batch([RR1, RR2]))
    answer = encode_v2(seq=1, cmd=None, data=bytes.fromhex("00 02 05 70 03 5F 20 00 6A 83"), ack=0, ok_implied=True)
    whole = encode_v2(seq=1, cmd=None, data=bytes.fromhex("00 02 02 6F 00 70 00 90 00"), ack=0, sw_implied=True)
    for frame in (command, answer, whole):
        assert f"`{_hex(frame)}`" in DOC
    assert _hex(command) == "03 00 0D 15 02 05 00 B2 01 0C 00 00 B2 02 0C 00 55 29"


@pytest.mark.parametrize(("payload", "sent"), [
    ("",                                 2),  # nothing at all
    ("00 6A 83",                         2),  # a count of 0
    ("04 00 00 00 90 00",                3),  # a count above MAX_BATCH
    ("03 00 00 90 00",                   2),  # more R-APDUs than commands
    ("01 6F 00 90 00",                   2),  # fewer, but the last is 90 00: the reader would have gone on
    ("02 10 70 00 6A 83",                2),  # a length past the end
    ("02 06 70 03 5F 20 00 6A 83",       2),  # a length one too long: the last R-APDU is 1 byte
    ("02 81",                            2),  # a two-byte length cut short
    ("02 81 01" + " 00" * 257 + " 90 00", 2),  # 257 data bytes: more than a short APDU can ask for
    ("01 90",                            1),  # a last R-APDU shorter than SW1 SW2
])
def test_malformed_answers_are_refused(payload: str, sent: int) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_batch_answer(bytes.fromhex(payload), sent)


@pytest.mark.parametrize("data", [
    "",                                    # nothing
    "01 00 B2 01 0C 00",                   # one command: a TRANSMIT
    "02 03 00 B2 01 00 B2 02 0C 00",       # a 3-byte C-APDU
    "02 05 00 B2 01 0C 00 00 B2",          # a last C-APDU of 2 bytes
    "05 00 B2 01 0C 00",                   # a count above MAX_BATCH
])
def test_malformed_batches_are_refused(data: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_batch(bytes.fromhex(data))


def test_encoders_refuse_what_the_protocol_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        encode_batch([RR1])  # one command is a TRANSMIT
    with pytest.raises(LocalProtocolError):
        encode_batch([RR1] * (MAX_BATCH + 1))
    with pytest.raises(LocalProtocolError):
        encode_batch_answer([bytes.fromhex("6A 83"), bytes.fromhex("90 00")])  # the reader stops at 6A83


_c_apdus = st.binary(min_size=4, max_size=261)
_ok = st.binary(max_size=256).map(lambda data: data + b"\x90\x00")
_last = st.binary(min_size=2, max_size=258)


@given(st.lists(_c_apdus, min_size=2, max_size=MAX_BATCH))
def test_batch_round_trips(commands: list[bytes]) -> None:
    assert decode_batch(encode_batch(commands)) == commands


@given(st.lists(_ok, max_size=MAX_BATCH - 1), _last, st.integers(0, MAX_BATCH))
def test_answer_round_trips(ok: list[bytes], last: bytes, extra: int) -> None:
    rapdus = [*ok, last]
    sent = len(rapdus) if last[-2:] == b"\x90\x00" else min(MAX_BATCH, len(rapdus) + extra)
    assert decode_batch_answer(encode_batch_answer(rapdus), sent) == rapdus


@given(st.binary(max_size=800), st.integers(1, MAX_BATCH))
def test_decoders_raise_only_our_error(raw: bytes, sent: int) -> None:
    for decode in (lambda: decode_batch(raw), lambda: decode_batch_answer(raw, sent)):
        try:
            decode()
        except RemoteProtocolError:
            pass


def test_prefetched_hands_out_only_the_next_command_byte_for_byte() -> None:
    kept = Prefetched()
    kept.keep([RR2, RR3], [b"\x70\x00\x90\x00", b"\x6a\x83"])
    assert kept.take(RR3) is None and len(kept) == 0  # out of order: everything dropped
    kept.keep([RR2, RR3], [b"\x70\x00\x90\x00", b"\x6a\x83"])
    assert kept.take(RR2[:-1] + b"\x01") is None and len(kept) == 0  # another Le: another command
    kept.keep([RR2, RR3], [b"\x70\x00\x90\x00", b"\x6a\x83"])
    assert (kept.take(RR2), kept.take(RR3), kept.take(RR3)) == (b"\x70\x00\x90\x00", b"\x6a\x83", None)


# --- the driver against the simulated reader, on a pty ----------------------------------------------------------


class CountingReader(ReaderSim):
    """The simulated reader, counting the commands it got by CMD (including ones it does not know)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.commands: list[int] = []

    def handle(self, cmd: int, data: bytes) -> bytes:
        self.commands.append(cmd)
        return super().handle(cmd, data)


class RecordingCard(CardApplet):
    def __init__(self) -> None:
        super().__init__(CATALOGUE["unionpay-debit"])
        self.received: list[bytes] = []

    def process(self, command_apdu: bytes) -> bytes:
        self.received.append(bytes(command_apdu))
        return super().process(command_apdu)


def _session(sim: ReaderSim, applet: object, url: str | None = None) -> CardReader:
    sim.insert(applet)  # type: ignore[arg-type]
    reader = CardReader(url or sim.start(), response_timeout_s=2.0)
    if url:
        sim.start()
    reader.open()
    assert reader.wait_for_card(2.0, CancelToken())
    reader.power_on()
    return reader


def _transaction(reader: CardReader) -> tuple[list[bytes], list[bytes], Finished]:
    kernel = Transaction(CONFIG, amount_minor=3000, when=dt.datetime(2026, 12, 1, 10, 0),
                         unpredictable_number=lambda: b"\x12\x34\x56\x78", sequence_counter=1)
    commands, answers = [], []
    action = kernel.start()
    while not isinstance(action, Finished):
        if isinstance(action, SendApdu):
            commands.append(action.apdu)
            answers.append(reader.transmit(action.apdu, then=action.then))
            action = kernel.on_response(answers[-1])
        elif isinstance(action, RequestOnlinePin):
            action = kernel.on_pin("bypassed")
        else:
            assert isinstance(action, GoOnline)
            action = kernel.on_online_result(None)
    return commands, answers, action


@pytest.fixture
def batching() -> Iterator[tuple[CountingReader, RecordingCard, CardReader]]:
    sim, card = CountingReader(), RecordingCard()
    reader = _session(sim, card)
    yield sim, card, reader
    reader.close()
    sim.stop()


def test_a_whole_transaction_batched_is_the_same_transaction_in_fewer_exchanges(
        batching: tuple[CountingReader, RecordingCard, CardReader]) -> None:
    sim, card, reader = batching
    commands, answers, done = _transaction(reader)
    single_sim, single_card = CountingReader(transmit_batch=False), RecordingCard()
    single = _session(single_sim, single_card)
    try:
        single_commands, single_answers, single_done = _transaction(single)
    finally:
        single.close()
        single_sim.stop()
    assert (commands, answers, done.code) == (single_commands, single_answers, single_done.code)
    assert done.outcome is not Outcome.TERMINATED
    assert card.received == single_card.received == commands  # every command reached the card once, in order
    assert sim.batches == 2  # SELECT PSE + the directory's two reads; the AFL's three READ RECORDs
    transmits = [c for c in sim.commands if c in (ReaderCmd.TRANSMIT, ReaderCmd.TRANSMIT_BATCH)]
    assert len(transmits) == len(commands) - 4 == 6
    # the reader without the command was asked once (UNKNOWN_COMMAND, nothing run), then got single TRANSMITs
    assert single_sim.commands.count(ReaderCmd.TRANSMIT_BATCH) == 1 and single_sim.batches == 0
    assert single_sim.commands.count(ReaderCmd.TRANSMIT) == len(commands)


@pytest.mark.parametrize("link_version", [1, 3])
def test_an_older_reader_gets_single_transmits(link_version: int) -> None:
    sim, card = CountingReader(link_version=link_version), RecordingCard()
    reader = _session(sim, card)
    try:
        commands, _, done = _transaction(reader)
        assert done.outcome is not Outcome.TERMINATED and card.received == commands
        commands2, _, _ = _transaction(reader)  # asked once a link session, not once a transaction
    finally:
        reader.close()
        sim.stop()
    assert sim.commands.count(ReaderCmd.TRANSMIT_BATCH) == 1 and sim.batches == 0
    assert sim.commands.count(ReaderCmd.TRANSMIT) == len(commands) + len(commands2)


def test_another_command_drops_the_answers_kept(batching: tuple[CountingReader, RecordingCard, CardReader]) -> None:
    sim, card, reader = batching
    assert reader.transmit(SELECT_PSE, then=(RR1, RR2))[-2:] == b"\x90\x00"
    assert len(card.received) == 3  # the card ran all three: FCI, the directory's record 1, 6A83
    other = bytes.fromhex("00 B2 01 14 00")  # READ RECORD SFI 2: not what was read ahead
    reader.transmit(other)
    reader.transmit(RR1)  # asked again: the card answers it again, the kept answer is gone
    assert card.received[3:] == [other, RR1]


def test_the_kept_answers_are_only_for_the_card_still_in(
        batching: tuple[CountingReader, RecordingCard, CardReader]) -> None:
    sim, card, reader = batching
    reader.transmit(SELECT_PSE, then=(RR1,))
    sim.remove()
    assert reader.wait_for_removal(2.0)
    with pytest.raises(CardRemoved):
        reader.transmit(RR1)  # answered before the card left, never handed out after


def test_a_status_other_than_90_00_stops_the_batch_and_get_response_follows() -> None:
    """T=0: SELECT answers 61 xx; the reader stops there, the kernel's GET RESPONSE goes on its own."""

    class T0Card(FakeApplet):
        def process(self, apdu: bytes) -> bytes:
            self.apdus.append(apdu)
            if apdu[1] == 0xA4:
                return bytes.fromhex("61 06")
            if apdu[1] == 0xC0:
                return bytes.fromhex("6F 04 84 02 A0 00 90 00")
            return bytes.fromhex("6A 83")

    sim, applet = CountingReader(), T0Card()
    reader = _session(sim, applet)
    try:
        assert reader.transmit(SELECT_PSE, then=(RR1, RR2)) == bytes.fromhex("61 06")
        get_response = bytes.fromhex("00 C0 00 00 06")
        assert reader.transmit(get_response, then=(RR1,)) == bytes.fromhex("6F 04 84 02 A0 00 90 00")
        assert reader.transmit(RR1) == bytes.fromhex("6A 83")
    finally:
        reader.close()
        sim.stop()
    assert applet.apdus == [SELECT_PSE, get_response, RR1]  # nothing ran after the 61 06
    assert sim.batches == 2


class ForgingReader(CountingReader):
    """Answers TRANSMIT_BATCH with the payload it is given, whatever the card said."""

    def __init__(self, payload: bytes, status: int = ReaderStatus.OK) -> None:
        super().__init__()
        self.payload, self.status = payload, status

    def _batch(self, data: bytes) -> bytes:
        return encode_response(self.status, self.payload)


@pytest.mark.parametrize("payload", [
    "03 02 6F 00 02 70 00 70 01 00 90 00",  # three R-APDUs for two commands (one never sent)
    "01 6F 00 90 00",                      # one R-APDU, 90 00, for two: the second silently dropped
    "02 40 6F 00 90 00",                   # a length that lies
    "",                                    # nothing at all
])
def test_a_forged_batch_answer_is_a_clear_device_error(payload: str) -> None:
    sim = ForgingReader(bytes.fromhex(payload))
    reader = _session(sim, FakeApplet())
    try:
        with pytest.raises(DeviceError) as caught:
            reader.transmit(SELECT_PSE, then=(RR1,))
        assert caught.value.fault is DeviceFault.GARBLED and "batch answer" in str(caught.value)
        assert len(reader._prefetched) == 0
    finally:
        reader.close()
        sim.stop()


def test_a_refused_batch_is_an_error_not_a_fall_back() -> None:
    sim = ForgingReader(b"", status=ReaderStatus.BAD_REQUEST)
    reader = _session(sim, FakeApplet())
    try:
        with pytest.raises(DeviceError) as caught:
            reader.transmit(SELECT_PSE, then=(RR1,))
        assert caught.value.fault is DeviceFault.OTHER and reader._batches is not False
    finally:
        reader.close()
        sim.stop()


def test_a_malformed_batch_runs_nothing_on_the_card() -> None:
    sim, applet = CountingReader(), FakeApplet()
    reader = _session(sim, applet)
    try:
        status, _ = reader._request(ReaderCmd.TRANSMIT_BATCH, bytes.fromhex("02 05 00 B2 01 0C 00 00 B2"))
    finally:
        reader.close()
        sim.stop()
    assert status == ReaderStatus.BAD_REQUEST and applet.apdus == []


def test_spy_trace_of_a_batch_keeps_the_pan_out(tmp_path: Path) -> None:
    pan = CATALOGUE["unionpay-debit"].pan
    trace = tmp_path / "trace.txt"
    sim, card = CountingReader(), RecordingCard()
    sim.insert(card)
    reader = CardReader(f"spy://{sim.start()}?file={trace}", response_timeout_s=2.0)
    try:
        reader.open()
        reader.power_on()
        _, answers, _ = _transaction(reader)
    finally:
        reader.close()
        sim.stop()
    text = trace.read_text()
    assert sim.batches == 2 and "CMD 15" in text
    assert any(bytes.fromhex(pan) in answer for answer in answers)  # the records did carry the PAN
    raw = text.replace(" ", "").lower()
    assert pan.lower() not in raw and pan[6:-4] not in raw and pan[6:-4] not in text


def test_a_command_a_batch_cannot_carry_goes_alone(batching: tuple[CountingReader, RecordingCard, CardReader]) -> None:
    sim, card, reader = batching
    reader.transmit(SELECT_PSE, then=(b"\x00\xb2",))  # a 2-byte "command" named next: no batch is sent
    assert sim.batches == 0 and sim.commands[-1] == ReaderCmd.TRANSMIT and card.received == [SELECT_PSE]


def test_a_reader_restarted_is_asked_again() -> None:
    """New firmware after a restart (the link's SYN: PeerReset) may know TRANSMIT_BATCH: the terminal asks again."""
    sim, card = CountingReader(transmit_batch=False), RecordingCard()
    reader = _session(sim, card)
    try:
        reader.transmit(SELECT_PSE, then=(RR1, RR2))
        assert reader._batches is False and sim.batches == 0
        sim.transmit_batch = True
        seen = reader.slot_mark()
        sim.replug()  # powers up again and re-announces the card still in
        deadline = time.monotonic() + 2.0
        while reader.slot_mark() == seen and time.monotonic() < deadline:
            time.sleep(0.01)
        reader.power_on()
        reader.transmit(SELECT_PSE, then=(RR1, RR2))
    finally:
        reader.close()
        sim.stop()
    assert sim.batches == 1 and reader._batches is True
