"""Every payload decoder of the reader and PIN pad command sets, and the frame tracer, on arbitrary bytes:
a value or the project's own RemoteProtocolError, nothing else (Hypothesis)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import card_reader_codec as card_reader
from drivers import escpos
from drivers import pinpad_codec as pinpad
from drivers.link.trace import FrameTracer
from pos_errors import RemoteProtocolError

DECODERS: list[Callable[[bytes], object]] = [
    card_reader.decode_response, card_reader.decode_info, card_reader.decode_state, card_reader.decode_swipe,
    card_reader.decode_led, card_reader.decode_buzzer, card_reader.decode_cl_poll, card_reader.decode_cl_card,
    card_reader.parse_atr, pinpad.decode_display, pinpad.decode_pin_request, pinpad.decode_pin_result,
    pinpad.decode_key_status, pinpad.decode_key_load, pinpad.decode_key_loaded, pinpad.decode_numeric_request,
    pinpad.decode_numeric_result, escpos.decode_status,
]


@pytest.mark.parametrize("decode", DECODERS, ids=lambda f: f.__name__)
@given(payload=st.binary(max_size=64))
def test_decoders_raise_only_our_error(decode: Callable[[bytes], object], payload: bytes) -> None:
    try:
        decode(payload)
    except RemoteProtocolError:
        pass


@given(chunks=st.lists(st.binary(max_size=40), max_size=8))
def test_tracer_never_raises_and_never_shows_more_than_seven_data_bytes(chunks: list[bytes]) -> None:
    lines: list[str] = []
    tracer = FrameTracer(lines.append)
    for chunk in chunks:
        tracer.feed("D>T", chunk)
    for line in lines:
        shown = line.split(": ", 1)[1].replace("…", "").split() if ": " in line else []
        assert len(shown) <= 7
