"""The card reader's full command set through a real pty: info, status, LED, buzzer, magstripe, contactless."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.card_reader import CardReader
from drivers.card_reader_codec import (
    CardSwiped,
    ContactlessCard,
    Led,
    ReaderCmd,
    ReaderState,
    decode_cl_collision,
    decode_swipe,
    decode_timed,
    encode_buzzer,
    encode_cl_poll,
    encode_field_off,
    encode_led,
    encode_swipe,
)
from drivers.link.frames import encode_data
from drivers.link.payload import encode_response
from flows.ports import CancelToken
from pos_errors import CardRemoved, DeviceError, DeviceFault, RemoteProtocolError
from sim.devices.reader import ReaderSim, air_us
from tests.drivers.conftest import T1_ATR, FakeApplet

# A made-up UnionPay-style test account; never a real card number.
TRACK2 = b";6212345678901234=30122201234567890?"
TRACK1 = b"%B6212345678901234^ZHANG/SAN^3012220123456789?"


@pytest.fixture
def pair() -> Iterator[tuple[ReaderSim, CardReader]]:
    sim = ReaderSim()
    reader = CardReader(sim.start())
    reader.open()
    yield sim, reader
    reader.close()
    sim.stop()


def test_info_and_status(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    info = reader.info()
    assert (info.model, info.firmware, info.serial) == ("SIM-RDR-100", "1.4.2", "RDR0001")
    assert reader.status() == ReaderState(card_present=False, powered=False)
    sim.insert(FakeApplet())
    assert reader.wait_for_card(2.0, CancelToken())
    assert reader.power_on() == T1_ATR and reader.atr is not None and reader.atr.protocols == (0, 1)
    assert reader.status() == ReaderState(card_present=True, powered=True)
    reader.power_off()
    assert reader.status() == ReaderState(card_present=True, powered=False)


def test_led_and_buzzer(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    reader.led(Led.GREEN | Led.BLUE)
    reader.led(Led.BLUE, on=False)
    reader.beep(150)
    assert sim.leds == Led.GREEN and sim.beeps == [150]
    with pytest.raises(ValueError):
        reader.beep(0)


def test_swipe_arrives_as_an_event_and_by_mag_read(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    seen: list[object] = []
    reader.add_listener(seen.append)
    assert reader.read_stripe() is None
    sim.swipe(TRACK2, TRACK1, b";0123?")
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    event = seen[0]
    assert isinstance(event, CardSwiped) and event.track2 == TRACK2 and event.track3 == b";0123?"
    read = reader.read_stripe()
    assert read == event and reader.read_stripe() is None  # read once, then forgotten
    stripe = read.stripe()
    assert (stripe.masked_pan, stripe.expiry_yymm, stripe.service_code, stripe.name) == (
        "621234******1234", "3012", "220", "ZHANG/SAN")
    assert "6212345678901234" not in repr(read) + repr(stripe)


def test_contactless_poll_activate_transmit_remove(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    assert reader.poll_contactless(100) is None
    card = FakeApplet(atr=bytes.fromhex("0578807002"))
    sim.tap(card, uid=bytes.fromhex("04112233"))
    assert reader.poll_contactless(100) == ContactlessCard("A", bytes.fromhex("04112233"))
    assert reader.activate_contactless() == bytes.fromhex("0578807002")
    assert reader.transmit(bytes.fromhex("00A404000E325041592E5359532E444446303100"))[-2:] == b"\x90\x00"
    assert len(card.apdus) == 1
    assert not reader.remove_contactless(timeout_s=0.3)  # still in the field
    sim.take_away()
    assert reader.remove_contactless(timeout_s=1.0)


def test_contactless_removal_is_not_missed_when_the_card_is_held_out_again_at_once(
        pair: tuple[ReaderSim, CardReader]) -> None:
    """The terminal asks CL_REMOVE every 0.1 s; a card taken away and presented again between two asks has left
    (the reader's removal procedure saw it go): it is a new presentation, activated afresh, not the old card."""
    sim, reader = pair
    card = FakeApplet(atr=bytes.fromhex("0578807002"))
    sim.tap(card)
    assert reader.poll_cards(100) == 1
    reader.activate_contactless()
    assert not reader.remove_contactless(timeout_s=0.0)  # asked once: BUSY, the removal procedure runs
    sim.take_away()
    sim.tap(card)  # back in the same instant
    assert reader.remove_contactless(timeout_s=1.0)
    with pytest.raises(CardRemoved):  # not the activated card still present: poll and activate again
        reader.transmit(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
    assert reader.poll_cards(100) == 1
    reader.activate_contactless()
    assert reader.transmit(bytes.fromhex("00A404000E325041592E5359532E444446303100"))[-2:] == b"\x90\x00"
    assert not reader.remove_contactless(timeout_s=0.3)  # this presentation is still in the field


@pytest.mark.parametrize("payload", [b"", b"\x05abc", b"\x00\x00", b"\x00\x01"])
def test_malformed_swipe_payload_is_a_remote_protocol_error(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_swipe(payload)


def test_swipe_codec_round_trip() -> None:
    swipe = CardSwiped(track1=TRACK1, track2=TRACK2, track3=b"")
    assert decode_swipe(encode_swipe(swipe)) == swipe


@pytest.mark.parametrize(("cmd", "data", "frame"), [
    (ReaderCmd.LED,      encode_led(Led.GREEN, True), "02 00 04 03 13 04 01 DA 1C"),
    (ReaderCmd.BUZZER,   encode_buzzer(150),          "02 00 04 03 14 00 96 60 16"),
    (ReaderCmd.MAG_READ, b"",                         "02 00 02 03 20 9B 91"),
    (ReaderCmd.CL_POLL,  encode_cl_poll(500),         "02 00 04 03 30 01 F4 45 C5"),
    (ReaderCmd.CL_FIELD_OFF, encode_field_off(100),   "02 00 04 03 33 00 64 AC 1D"),
])
def test_documented_command_frames(cmd: ReaderCmd, data: bytes, frame: str) -> None:
    assert encode_data(3, cmd, data).hex(" ").upper() == frame
    assert frame in (Path(__file__).parents[2] / "docs" / "protocols" / "card-reader.md").read_text(encoding="utf-8")


def test_collision_field_off_and_lights_through_the_pty(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    assert reader.poll_cards(50) == 0
    sim.tap(FakeApplet(atr=bytes.fromhex("0578807002")), also=FakeApplet(atr=bytes.fromhex("0578807002")))
    assert reader.poll_cards(50) == 2  # two cards answered: a collision, nothing activated
    sim.take_one_away()
    assert reader.poll_cards(50) == 1
    reader.activate_contactless()
    reader.field_off(100)
    assert sim.field_offs == [100]
    reader.indicate(0x07, 150)  # card read: blue + yellow + green and the success tone
    assert sim.leds == Led.BLUE | Led.YELLOW | Led.GREEN and sim.beeps == [150]
    reader.indicate(0x08)  # processing error: red only, the others go off
    assert sim.leds == Led.RED


def test_card_leaving_the_field_mid_exchange_is_card_removed(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    sim.tap(FakeApplet(atr=bytes.fromhex("0578807002")), leave_after=1)
    assert reader.poll_cards(50) == 1
    reader.activate_contactless()
    select = bytes.fromhex("00A404000E325041592E5359532E444446303100")
    assert reader.transmit(select)[-2:] == b"\x90\x00"
    with pytest.raises(CardRemoved):
        reader.transmit(select)


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x00"])
def test_a_collision_of_fewer_than_two_cards_is_malformed(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_cl_collision(payload)


def test_timed_transmit_reports_the_modelled_air_time(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    card = FakeApplet(atr=bytes.fromhex("0578807002"))
    card.processing_us, card.relay_delay_us = 1000, 250  # type: ignore[attr-defined]
    sim.tap(card)
    assert reader.poll_cards(50) == 1
    reader.activate_contactless()
    apdu = bytes.fromhex("80EA000004A1B2C3D400")
    rapdu, elapsed = reader.transmit_timed(apdu)
    assert elapsed == air_us(len(apdu)) + 1000 + air_us(len(rapdu)) + 250
    sim.take_away()
    with pytest.raises(CardRemoved):
        reader.transmit_timed(apdu)


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x01", b"\x00\x00\x00\x01\x90"])
def test_a_timed_answer_without_its_status_word_is_malformed(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_timed(payload)


def test_a_garbled_poll_answer_is_a_device_error_not_a_crash(pair: tuple[ReaderSim, CardReader]) -> None:
    sim, reader = pair
    sim.tap(FakeApplet(atr=bytes.fromhex("0578807002")), uid=b"")
    sim._PERIPHERALS = {**sim._PERIPHERALS,  # type: ignore[misc]
                        ReaderCmd.CL_POLL: lambda self, data: encode_response(0, b"\x05AB")}
    with pytest.raises(DeviceError) as caught:
        reader.poll_cards(50)
    assert caught.value.fault is DeviceFault.GARBLED
